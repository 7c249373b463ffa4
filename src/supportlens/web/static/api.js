// The dashboard reads only the public pipes, with the signed-in token, exactly as a user could.

const TOKEN_KEY = "supportlens.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// A token handed over in the URL fragment (`make run` prints such a link) is kept for the browser
// session and removed from the address bar, so it is not shared with the view's link.
export function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

function pipeUrl(pipe, format, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const suffix = query.toString();
  return `/v0/pipes/${pipe}.${format}${suffix ? `?${suffix}` : ""}`;
}

async function request(url, signal) {
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${token()}` }, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the server did not answer (is it running?)");
  }
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      const body = await response.json();
      message = body.error || body.detail || message;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message);
  }
  return response;
}

// A pipe's JSON answer: meta, data, rows, rows_before_limit_at_least, statistics.
export async function pipeAnswer(name, params = {}, signal = undefined) {
  const response = await request(pipeUrl(name, "json", params), signal);
  return response.json();
}

// The rows of a pipe's JSON answer.
export async function pipe(name, params = {}, signal = undefined) {
  return (await pipeAnswer(name, params, signal)).data;
}

// A pipe's CSV answer, saved as a file by the browser (the token stays in the header).
export async function downloadCsv(name, params, filename) {
  const response = await request(pipeUrl(name, "csv", params));
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
