// The view's state (filters and view) lives in the URL's query string, so a view is a shareable link.

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const PRESETS = { "7d": 7, "30d": 30, "90d": 90, "180d": 180, "365d": 365 };
const FIELDS = [
  "view",
  "period",
  "start",
  "end",
  "category",
  "priority",
  "agent",
  "channel",
  "hours",
  "tz",
  "refresh",
];
const REFRESH_SECONDS = { default: 30, min: 5, max: 300 };

export function browserTimezone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function readState() {
  const query = new URLSearchParams(window.location.search);
  const state = Object.fromEntries(FIELDS.map((name) => [name, query.get(name) || ""]));
  state.view = state.view === "at-risk" ? "at-risk" : "overview";
  if (!(state.period in PRESETS) && state.period !== "custom") state.period = "30d";
  if (state.period === "custom" && !(isDate(state.start) && isDate(state.end) && state.start <= state.end)) {
    state.period = "30d";
  }
  state.hours = state.hours === "business" ? "business" : "calendar";
  state.tz = validTimezone(state.tz) ? state.tz : browserTimezone();
  // How often the at-risk view refreshes itself, in seconds.
  const refresh = Number.parseInt(state.refresh, 10);
  state.refresh = Number.isFinite(refresh)
    ? String(Math.min(REFRESH_SECONDS.max, Math.max(REFRESH_SECONDS.min, refresh)))
    : "";
  return state;
}

export function refreshSeconds(state) {
  return Number(state.refresh || REFRESH_SECONDS.default);
}

export function writeState(state) {
  const query = new URLSearchParams();
  for (const name of FIELDS) {
    const value = state[name];
    if (!value) continue;
    if ((name === "start" || name === "end") && state.period !== "custom") continue;
    query.set(name, value);
  }
  history.replaceState(null, "", `${window.location.pathname}?${query}`);
}

function isDate(value) {
  return /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(Date.parse(value));
}

export function validTimezone(name) {
  if (!name) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

// Milliseconds to add to UTC to get the wall time of `zone` at the instant `utcMs`.
function offsetMs(zone, utcMs) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(utcMs));
  const get = (type) => Number(parts.find((part) => part.type === type).value);
  const wall = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return wall - Math.floor(utcMs / 1000) * 1000;
}

// The instant of a wall-clock time in `zone` (the later offset's reading across a DST change).
export function wallToUtc(year, month, day, hour, minute, second, zone) {
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  const first = wall - offsetMs(zone, wall);
  return wall - offsetMs(zone, first);
}

export function formatUtc(ms) {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

// The local date (YYYY-MM-DD) of an instant in `zone`.
export function localDate(ms, zone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date(ms));
}

// The last instant (ms) of a local day (YYYY-MM-DD) in `zone`, where the backlog counts: the
// millisecond before the next day begins (at its midnight, or where a DST change skips midnight,
// at the change). Found by bisection around the wall-clock guess, which a skipped midnight throws.
export function dayEnd(day, zone) {
  const [y, m, d] = day.split("-").map(Number);
  const next = new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
  let before = wallToUtc(y, m, d + 1, 0, 0, 0, zone) - 3 * HOUR_MS; // still `day`
  let after = before + 6 * HOUR_MS; // already the next day
  while (after - before > 1) {
    const middle = Math.floor((before + after) / 2);
    if (localDate(middle, zone) >= next) after = middle;
    else before = middle;
  }
  return before;
}

// The filtered window [start, end] in epoch ms: a preset ends now; a custom range covers its
// days in the chosen timezone.
export function windowOf(state) {
  if (state.period === "custom") {
    const [sy, sm, sd] = state.start.split("-").map(Number);
    const [ey, em, ed] = state.end.split("-").map(Number);
    return {
      start: wallToUtc(sy, sm, sd, 0, 0, 0, state.tz),
      end: wallToUtc(ey, em, ed, 23, 59, 59, state.tz),
    };
  }
  const end = Math.floor(Date.now() / 60_000) * 60_000;
  return { start: end - PRESETS[state.period] * DAY_MS, end };
}

// The period of equal length just before `window`.
export function previousWindow(window) {
  const length = window.end - window.start;
  return { start: window.start - length - 1000, end: window.start - 1000 };
}

export function windowDays(window) {
  return (window.end - window.start) / DAY_MS;
}

// The parameters every aggregate pipe takes for the current filters and `window`.
export function pipeParams(state, window, { businessHours = false } = {}) {
  const params = {
    start_date: formatUtc(window.start),
    end_date: formatUtc(window.end),
    category: state.category,
    priority: state.priority,
    agent_id: state.agent,
    channel: state.channel,
    timezone: state.tz,
  };
  if (businessHours) params.business_hours = state.hours === "business" ? "true" : "false";
  return params;
}

export function timezones() {
  return typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : ["UTC"];
}
