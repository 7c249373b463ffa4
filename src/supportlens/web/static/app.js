// The SupportLens dashboard: every panel is one or two public pipe calls with the view's filters.
// Panels load independently (none waits for another) and each shows its own loading, empty and
// error state.

import {
  ApiError,
  downloadCsv,
  forgetToken,
  pipe,
  pipeAnswer,
  setToken,
  takeTokenFromFragment,
  token,
} from "./api.js";
import { chartLibraryLoaded, drawChart, dropChart } from "./charts.js";
import {
  dayEnd,
  formatUtc,
  localDate,
  pipeParams,
  previousWindow,
  readState,
  refreshSeconds,
  timezones,
  validTimezone,
  wallToUtc,
  windowDays,
  windowOf,
  writeState,
} from "./filters.js";
import { change, count, duration, element, percent } from "./format.js";

const DRILL_ROWS = 100;
const EXPORT_ROWS = 10_000;
const PRIORITIES = ["urgent", "high", "medium", "low"];
const TARGETS = {
  first_response: "First response",
  next_response: "Next response",
  resolution: "Resolution",
};
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

let state = readState();
let generation = null; // aborts the previous refresh's requests
let atRiskTimer = null;
let drillQuery = null;

// ---------------------------------------------------------------------------------------------
// Panels

function section(name) {
  return document.querySelector(`[data-panel="${name}"]`);
}

function message(text, kind = "empty") {
  return element("p", { class: `message ${kind}`, text });
}

// A table in a frame that scrolls sideways on narrow screens.
function scrollTable(className, caption, head, rows) {
  return element(
    "div",
    { class: "table-scroll" },
    element(
      "table",
      { class: className },
      caption ? element("caption", { class: "visually-hidden", text: caption }) : null,
      element("thead", {}, head),
      element("tbody", {}, ...rows),
    ),
  );
}

function headerRow(labels) {
  return element("tr", {}, ...labels.map((text) => element("th", { scope: "col", text })));
}

// Runs one panel: `draw(body, signal)` returns false when there is nothing to show.
async function runPanel(name, signal, draw) {
  const panel = section(name);
  const body = panel.querySelector(".body");
  panel.dataset.state = "loading";
  panel.setAttribute("aria-busy", "true");
  if (!body.querySelector(".chart, table, .tiles")) body.replaceChildren(message("Loading…", "loading"));
  try {
    const shown = await draw(body, signal);
    if (signal.aborted) return;
    if (shown === false) {
      dropChart(name);
      body.replaceChildren(message("No data for these filters."));
      panel.dataset.state = "empty";
    } else {
      panel.dataset.state = "ready";
    }
  } catch (error) {
    if (signal.aborted || error.name === "AbortError") return;
    dropChart(name);
    if (error instanceof ApiError && error.status === 401) signOut("Your token is no longer valid.");
    body.replaceChildren(message(`Could not load this panel: ${error.message}`, "error"));
    panel.dataset.state = "error";
  } finally {
    if (!signal.aborted) panel.removeAttribute("aria-busy");
  }
}

// Pipes that take long on big workspaces: asked after every other panel's calls, so that they do
// not hold the browser's few connections per server while quick panels wait.
const SLOW_PIPES = new Set(["sla_attainment", "sla_at_risk"]);

// One fetch per distinct call and refresh, shared by the panels that need it.
function makeFetcher(signal) {
  const answers = new Map();
  return (name, params) => {
    const key = `${name}?${JSON.stringify(params)}`;
    if (!answers.has(key)) {
      const call = () => pipe(name, params, signal);
      // The panels register their calls synchronously: a slow call starts once they all have.
      answers.set(
        key,
        SLOW_PIPES.has(name) ? new Promise((resolve) => setTimeout(resolve, 0)).then(call) : call(),
      );
    }
    return answers.get(key);
  };
}

function interval(window) {
  return windowDays(window) <= 92 ? "day" : "week";
}

function sum(rows, field) {
  return rows.reduce((total, row) => total + (row[field] || 0), 0);
}

const KPI_TILES = [
  // key, label, formatter, which direction is better
  ["created", "Tickets created", count, "neutral"],
  ["resolved", "Tickets resolved", count, "up"],
  ["backlog", "Open backlog", count, "down"],
  ["response", "Median first response", duration, "down"],
  ["resolution", "Median resolution", duration, "down"],
  ["sla", "SLA attainment", percent, "up"],
  ["csat", "CSAT", percent, "up"],
];

// Each figure of a window, as a promise per tile: the pipe calls behind them are shared.
function kpiFigures(fetchPipe, span) {
  const timed = pipeParams(state, span, { businessHours: true });
  const plain = pipeParams(state, span);
  const metrics = fetchPipe("ticket_metrics", timed);
  const metric = (field) => metrics.then((rows) => rows[0]?.[field] ?? null);
  const attainment = fetchPipe("sla_attainment", { ...plain, group_by: "target_type" }).then((rows) => {
    const achieved = sum(rows, "achieved");
    const completed = achieved + sum(rows, "breached");
    return completed ? (100 * achieved) / completed : null;
  });
  return {
    created: metric("total_tickets"),
    resolved: metric("resolved_tickets"),
    backlog: fetchPipe("backlog", plain).then((rows) =>
      rows.length ? rows[rows.length - 1].open_tickets : null,
    ),
    response: metric("median_first_response_time_minutes"),
    resolution: metric("median_resolution_time_minutes"),
    sla: attainment,
    csat: fetchPipe("csat", { ...plain, group_by: "none" }).then((rows) => rows[0]?.csat_pct ?? null),
  };
}

// The tiles are drawn at once and each is filled as soon as its own figures arrive.
async function kpis(body, signal, fetchPipe, window) {
  const now = kpiFigures(fetchPipe, window);
  const before = kpiFigures(fetchPipe, previousWindow(window));
  const hours = state.hours === "business" ? "business hours" : "calendar time";
  const list = element("ul", { class: "tiles" });
  body.replaceChildren(list);
  const filled = KPI_TILES.map(async ([key, label, show, better]) => {
    const value = element("strong", { class: "value", text: "…" });
    const delta = element("span", { class: "delta" });
    const timed = key === "response" || key === "resolution";
    const tile = element(
      "li",
      { class: "tile", "data-kpi": key, "aria-busy": "true" },
      element("span", { class: "label", text: timed ? `${label} (${hours})` : label }),
      value,
      delta,
    );
    list.append(tile);
    try {
      const current = await now[key];
      value.textContent = show(current);
      const previous = await before[key].catch(() => null);
      const moved = change(current, previous, better);
      delta.textContent = moved.text;
      delta.classList.add(moved.tone);
      tile.dataset.state = "ready";
    } catch (error) {
      if (signal.aborted) return;
      value.textContent = "unavailable";
      delta.textContent = error.message;
      delta.classList.add("bad");
      tile.dataset.state = "error";
    } finally {
      tile.removeAttribute("aria-busy");
    }
  });
  await Promise.all(filled);
  return true;
}

// The [start, end] instants of a trend period whose label is its local start ("YYYY-MM-DD ...").
function periodSpan(rows, index, window) {
  const start = (label) => {
    const [date, time = "00:00:00"] = label.split(" ");
    const [y, m, d] = date.split("-").map(Number);
    const [hh, mm, ss] = time.split(":").map(Number);
    return wallToUtc(y, m, d, hh, mm, ss, state.tz);
  };
  const from = Math.max(start(rows[index].time_period), window.start);
  const to = index + 1 < rows.length ? start(rows[index + 1].time_period) - 1000 : window.end;
  return { start: from, end: Math.min(to, window.end) };
}

async function volume(body, signal, fetchPipe, window) {
  const rows = await fetchPipe("time_trends", {
    ...pipeParams(state, window),
    time_interval: interval(window),
  });
  if (!rows.some((row) => row.ticket_count || row.resolved_tickets)) return false;
  drawChart("volume", body, {
    type: "bar",
    labels: rows.map((row) => row.time_period.slice(0, 10)),
    datasets: [
      { label: "Created", data: rows.map((row) => row.ticket_count) },
      { label: "Resolved (of those created)", data: rows.map((row) => row.resolved_tickets) },
    ],
    valueText: count,
    summary: `Tickets created and resolved per ${interval(window)}: ${count(sum(rows, "ticket_count"))} created.`,
    onPick: (index) => {
      const span = periodSpan(rows, index, window);
      openDrill(`Tickets created ${rows[index].time_period.slice(0, 10)}`, span, {});
    },
  });
  return true;
}

async function times(body, signal, fetchPipe, window) {
  const params = { ...pipeParams(state, window, { businessHours: true }), time_interval: interval(window) };
  const rows = await fetchPipe("time_trends", params);
  const series = [
    ["median_response_time_minutes", "Median first response"],
    ["p90_response_time_minutes", "p90 first response"],
    ["median_resolution_time_minutes", "Median resolution"],
    ["p90_resolution_time_minutes", "p90 resolution"],
  ];
  if (!rows.some((row) => series.some(([field]) => row[field] !== null && row[field] !== undefined)))
    return false;
  drawChart("times", body, {
    type: "line",
    labels: rows.map((row) => row.time_period.slice(0, 10)),
    datasets: series.map(([field, label], index) => ({
      label,
      data: rows.map((row) => (row[field] === undefined ? null : row[field] / 60)),
      borderDash: index % 2 ? [6, 4] : [],
      spanGaps: true,
      pointRadius: 2,
    })),
    options: {
      scales: {
        y: { title: { display: true, text: state.hours === "business" ? "business hours" : "hours" } },
      },
      plugins: {
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${duration(item.raw * 60)}` } },
      },
    },
    summary: "Median and 90th percentile of first response and resolution times per period, in hours.",
    valueText: (value) => (value === null || value === undefined ? "–" : duration(value * 60)),
    onPick: (index) => {
      const span = periodSpan(rows, index, window);
      openDrill(`Tickets created ${rows[index].time_period.slice(0, 10)}`, span, {});
    },
  });
  return true;
}

async function sla(body, signal, fetchPipe, window) {
  const rows = await fetchPipe("sla_attainment", { ...pipeParams(state, window), group_by: "priority" });
  const priorities = PRIORITIES.filter((priority) => rows.some((row) => row.group === priority));
  if (!priorities.length) return false;
  const types = Object.keys(TARGETS).filter((type) => rows.some((row) => row.target_type === type));
  const cell = (priority, type) => rows.find((row) => row.group === priority && row.target_type === type);
  drawChart("sla", body, {
    type: "bar",
    labels: priorities,
    datasets: types.map((type) => ({
      label: TARGETS[type],
      data: priorities.map((priority) => cell(priority, type)?.attainment_pct ?? null),
    })),
    options: {
      scales: { y: { min: 0, max: 100, title: { display: true, text: "% achieved of completed" } } },
      plugins: {
        tooltip: {
          callbacks: {
            afterLabel: (item) => {
              const row = cell(priorities[item.dataIndex], types[item.datasetIndex]);
              return row
                ? `${count(row.achieved)} achieved, ${count(row.breached)} breached, ${count(row.running)} running`
                : "";
            },
          },
        },
      },
    },
    valueText: percent,
    summary: `SLA attainment by priority for ${types.map((type) => TARGETS[type]).join(", ")}.`,
    onPick: (index) =>
      openDrill(`${priorities[index]} priority tickets`, window, { priority: priorities[index] }),
  });
  return true;
}

async function categories(body, signal, fetchPipe, window) {
  const params = pipeParams(state, window, { businessHours: true });
  const rows = (await fetchPipe("category_analysis", params)).filter((row) => row.ticket_count);
  if (!rows.length) return false;
  const name = (row) => row.category ?? "(none)";
  drawChart("categories", body, {
    type: "bar",
    labels: rows.map(name),
    datasets: [{ label: "Tickets", data: rows.map((row) => row.ticket_count) }],
    options: {
      indexAxis: "y",
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            afterLabel: (item) => {
              const row = rows[item.dataIndex];
              return `${percent(row.percentage_of_total)} of all · response ${duration(row.avg_response_time_minutes)} · resolution ${duration(row.avg_resolution_time_minutes)}`;
            },
          },
        },
      },
    },
    valueText: count,
    summary: `Tickets per category: ${rows.map((row) => `${name(row)} ${row.ticket_count}`).join(", ")}.`,
    onPick: (index) =>
      openDrill(`Category ${name(rows[index])}`, window, { category: rows[index].category ?? "" }),
  });
  return true;
}

const AGENT_COLUMNS = [
  ["agent_id", "Agent", (v) => v ?? "(unassigned)"],
  ["tickets_handled", "Tickets", count],
  ["resolved_tickets", "Resolved", count],
  ["resolution_rate", "Resolution rate", percent],
  ["avg_response_time_minutes", "Avg first response", duration],
  ["avg_resolution_time_minutes", "Avg resolution", duration],
  ["avg_satisfaction", "Avg satisfaction", (v) => (v === null ? "–" : v.toFixed(2))],
  ["response_sla_percentage", "Response SLA met", percent],
];
let agentSort = { field: "tickets_handled", descending: true };

async function agents(body, signal, fetchPipe, window) {
  const rows = (
    await fetchPipe("agent_performance", pipeParams(state, window, { businessHours: true }))
  ).filter((row) => row.tickets_handled);
  if (!rows.length) return false;
  const draw = () => {
    const { field, descending } = agentSort;
    const sorted = [...rows].sort((a, b) => {
      const x = a[field];
      const y = b[field];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * (descending ? -1 : 1);
    });
    const head = element(
      "tr",
      {},
      ...AGENT_COLUMNS.map(([key, label]) =>
        element(
          "th",
          { scope: "col", "aria-sort": key === field ? (descending ? "descending" : "ascending") : "none" },
          element("button", {
            type: "button",
            class: "sort",
            text: `${label}${key === field ? (descending ? " ▼" : " ▲") : ""}`,
            onclick: () => {
              agentSort = { field: key, descending: key === field ? !descending : key !== "agent_id" };
              draw();
              body.querySelector(`th[aria-sort]:not([aria-sort="none"]) button`)?.focus();
            },
          }),
        ),
      ),
    );
    const lines = sorted.map((row) =>
      element(
        "tr",
        {
          tabindex: "0",
          class: "pick",
          "data-agent": row.agent_id ?? "",
          onclick: () =>
            openDrill(`Agent ${row.agent_id ?? "(unassigned)"}`, window, { agent: row.agent_id ?? "" }),
          onkeydown: (event) => {
            if (event.key === "Enter" || event.key === " ") {
              event.preventDefault();
              event.currentTarget.click();
            }
          },
        },
        ...AGENT_COLUMNS.map(([key, , show]) =>
          element(
            key === "agent_id" ? "th" : "td",
            key === "agent_id" ? { scope: "row", text: show(row[key]) } : { text: show(row[key]) },
          ),
        ),
      ),
    );
    body.replaceChildren(
      scrollTable("leaderboard", "Agents; select a column to sort, a row to list its tickets", head, lines),
    );
  };
  draw();
  return true;
}

async function heatmap(body, signal, fetchPipe, window) {
  const rows = await fetchPipe("arrivals", pipeParams(state, window));
  const peak = Math.max(0, ...rows.map((row) => row.tickets));
  if (!peak) return false;
  const cells = new Map(rows.map((row) => [`${row.weekday}:${row.hour}`, row.tickets]));
  const hours = Array.from({ length: 24 }, (_, hour) => hour);
  const table = scrollTable(
    "heatmap",
    `Tickets created per weekday and hour (${state.tz})`,
    element(
      "tr",
      {},
      element("td"),
      ...hours.map((hour) => element("th", { scope: "col", text: String(hour).padStart(2, "0") })),
    ),
    WEEKDAYS.map((day, index) =>
      element(
        "tr",
        {},
        element("th", { scope: "row", text: day }),
        ...hours.map((hour) => {
          const tickets = cells.get(`${index + 1}:${hour}`) ?? 0;
          const level = tickets / peak;
          const hh = String(hour).padStart(2, "0");
          const when = `${day} ${hh}:00`;
          const selection = { created_weekday: index + 1, created_hour: hour };
          return element(
            "td",
            {
              title: `${when}: ${count(tickets)} tickets`,
              style: `background: hsl(205 80% ${96 - level * 66}%); color: ${level > 0.55 ? "#fff" : "#1f2933"}`,
            },
            tickets
              ? element("button", {
                  type: "button",
                  text: count(tickets),
                  "aria-label": `${when}: ${count(tickets)} tickets; list them`,
                  "data-weekday": index + 1,
                  "data-hour": hour,
                  onclick: () =>
                    openDrill(`Tickets created ${when}–${hh}:59 (${state.tz})`, window, {}, selection),
                })
              : null,
          );
        }),
      ),
    ),
  );
  body.replaceChildren(
    table,
    element("p", {
      class: "hint",
      text: `Local time in ${state.tz}; darker is busier (peak ${count(peak)}); select a cell to list its tickets.`,
    }),
  );
  return true;
}

// field, label, and the ages (in days, at least and less than) of the backlog's buckets
const AGE_BUCKETS = [
  ["age_under_1d", "< 1 day", 0, 1],
  ["age_1_3d", "1–3 days", 1, 3],
  ["age_3_7d", "3–7 days", 3, 7],
  ["age_7_30d", "7–30 days", 7, 30],
  ["age_over_30d", "> 30 days", 30, null],
];

async function backlog(body, signal, fetchPipe, window) {
  const rows = await fetchPipe("backlog", pipeParams(state, window));
  if (!rows.some((row) => row.open_tickets)) return false;
  drawChart("backlog", body, {
    type: "bar",
    labels: rows.map((row) => row.day),
    datasets: AGE_BUCKETS.map(([field, label]) => ({ label, data: rows.map((row) => row[field]) })),
    options: {
      scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: "open tickets" } } },
    },
    valueText: count,
    summary: `Open tickets at the end of each day; last day ${count(rows[rows.length - 1].open_tickets)}.`,
    pickValues: true,
    // The tickets open at the end of the day (of the bucket's age): created before the window too.
    onPick: (index, bucket) => {
      const { day } = rows[index];
      const open = { open_at: new Date(dayEnd(day, state.tz)).toISOString() };
      if (bucket === undefined) return openDrill(`Open at the end of ${day}`, null, {}, open);
      const [, label, age_min_days, age_max_days] = AGE_BUCKETS[bucket];
      const aged = { ...open, age_min_days, age_max_days };
      return openDrill(`Open at the end of ${day}, ${label} old`, null, {}, aged);
    },
  });
  return true;
}

async function status(body, signal, fetchPipe, window) {
  const params = { ...pipeParams(state, window, { businessHours: true }), group_by: "category" };
  const order = ["new", "open", "pending", "on_hold", "solved", "closed"];
  const rank = (row) =>
    order.includes(row.status_category) ? order.indexOf(row.status_category) : order.length;
  const rows = (await fetchPipe("time_in_status", params))
    .filter((row) => row.tickets)
    .sort((a, b) => rank(a) - rank(b));
  if (!rows.length) return false;
  const label = (row) => row.status_category ?? row.status;
  drawChart("status", body, {
    type: "bar",
    labels: rows.map(label),
    datasets: [
      { label: "Median", data: rows.map((row) => row.median_minutes / 60) },
      { label: "p90", data: rows.map((row) => row.p90_minutes / 60) },
    ],
    options: {
      scales: {
        y: { title: { display: true, text: state.hours === "business" ? "business hours" : "hours" } },
      },
      plugins: {
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${duration(item.raw * 60)}` } },
      },
    },
    valueText: (value) => (value === null || value === undefined ? "–" : duration(value * 60)),
    summary: `Time spent per status category (median and p90): ${rows.map((row) => `${label(row)} ${duration(row.median_minutes)}`).join(", ")}.`,
    onPick: (index) => {
      const category = rows[index].status_category;
      openDrill(`Tickets that spent time in ${category}`, window, {}, { in_status_category: category });
    },
  });
  return true;
}

// The at-risk view lists the first targets (soonest due) and says how many there are in all.
const AT_RISK_SHOWN = 500;

async function atRisk(body, signal, window) {
  const answer = await pipeAnswer(
    "sla_at_risk",
    { ...pipeParams(state, window), limit: AT_RISK_SHOWN },
    signal,
  );
  const shown = answer.data;
  const total = answer.rows_before_limit_at_least ?? shown.length;
  document.getElementById("at-risk-updated").textContent =
    `updated ${new Date().toLocaleTimeString()}, refreshes every ${refreshSeconds(state)} s`;
  if (!shown.length) return false;
  const columns = ["Ticket", "Target", "Priority", "Agent", "Due", "Remaining", "State"];
  body.replaceChildren(
    element("p", {
      class: "hint",
      text: `${count(total)} targets${total > shown.length ? `, the first ${shown.length} shown` : ""}: soonest due first.`,
    }),
    scrollTable(
      "at-risk",
      null,
      headerRow(columns),
      shown.map((row) =>
        element(
          "tr",
          { class: row.breached ? "breached" : "risk" },
          element("th", { scope: "row", text: row.ticket_id }),
          element("td", {
            text: `${TARGETS[row.target_type] ?? row.target_type}${row.instance ? ` #${row.instance + 1}` : ""}`,
          }),
          element("td", { text: row.priority ?? "–" }),
          element("td", { text: row.agent_id ?? "(unassigned)" }),
          element("td", { text: `${row.due_at} UTC` }),
          element("td", {
            text:
              row.remaining_minutes < 0
                ? `${duration(-row.remaining_minutes)} overdue`
                : duration(row.remaining_minutes),
          }),
          element(
            "td",
            {},
            element("span", {
              class: `badge ${row.breached ? "breached" : "risk"}`,
              text: row.breached ? "Breached" : "At risk",
            }),
          ),
        ),
      ),
    ),
  );
  return true;
}

const OVERVIEW = { kpis, volume, times, sla, categories, agents, heatmap, backlog, status };

function refresh() {
  generation?.abort();
  generation = new AbortController();
  const { signal } = generation;
  const fetchPipe = makeFetcher(signal);
  const window = windowOf(state);
  document.getElementById("window-label").textContent =
    `${formatUtc(window.start).slice(0, 16)} – ${formatUtc(window.end).slice(0, 16)} UTC`;
  clearInterval(atRiskTimer);
  if (state.view === "at-risk") {
    runPanel("at-risk", signal, (body) => atRisk(body, signal, window));
    atRiskTimer = setInterval(
      () => runPanel("at-risk", signal, (body) => atRisk(body, signal, windowOf(state))),
      refreshSeconds(state) * 1000,
    );
    return;
  }
  for (const [name, draw] of Object.entries(OVERVIEW)) {
    runPanel(name, signal, (body) => draw(body, signal, fetchPipe, window));
  }
}

// ---------------------------------------------------------------------------------------------
// Drill-down: the tickets behind a bar, point, cell or row, from ticket_details.

// The view's filters (`extra` overriding some) for tickets created in `span` (null: whenever).
function drillParams(span, extra) {
  const filters = { ...state, ...extra };
  return {
    created_after: span ? formatUtc(span.start) : undefined,
    created_before: span ? formatUtc(span.end) : undefined,
    category: filters.category,
    priority: filters.priority,
    agent_id: filters.agent,
    channel: filters.channel,
    timezone: state.tz,
  };
}

const DRILL_COLUMNS = [
  ["ticket_id", "Ticket"],
  ["created_at", "Created (UTC)"],
  ["status", "Status"],
  ["priority", "Priority"],
  ["category", "Category"],
  ["agent_id", "Agent"],
  ["channel", "Channel"],
  ["response_time_minutes", "First response"],
  ["resolution_time_minutes", "Resolution"],
];

// Lists the tickets of `drillParams(span, extra)` and `selection`, ticket_details' drill-down
// parameters (open at a day end, created in a weekday and hour, time in a status category).
async function openDrill(title, span, extra, selection = {}) {
  const dialog = document.getElementById("drill");
  const body = dialog.querySelector(".body");
  drillQuery = { ...drillParams(span, extra), ...selection };
  delete dialog.dataset.rows;
  document.getElementById("drill-title").textContent = title;
  document.getElementById("drill-summary").textContent = "Loading…";
  body.replaceChildren();
  if (!dialog.open) dialog.showModal();
  try {
    const answer = await pipeAnswer("ticket_details", { ...drillQuery, limit: DRILL_ROWS });
    const total = answer.rows_before_limit_at_least ?? answer.data.length;
    document.getElementById("drill-summary").textContent = answer.data.length
      ? `${count(total)} tickets${total > answer.data.length ? `, the newest ${answer.data.length} shown` : ""} (calendar time). Export lists up to ${count(EXPORT_ROWS)}.`
      : "No tickets match.";
    dialog.dataset.rows = String(answer.data.length);
    if (!answer.data.length) return;
    body.replaceChildren(
      scrollTable(
        "drill",
        null,
        headerRow(DRILL_COLUMNS.map(([, text]) => text)),
        answer.data.map((row) =>
          element(
            "tr",
            {},
            ...DRILL_COLUMNS.map(([field]) => {
              const value = row[field];
              const text = field.endsWith("_minutes") ? duration(value) : (value ?? "–");
              return element("td", { "data-field": field, text: String(text) });
            }),
          ),
        ),
      ),
    );
  } catch (error) {
    document.getElementById("drill-summary").textContent = `Could not list the tickets: ${error.message}`;
  }
}

async function exportDrill() {
  if (!drillQuery) return;
  const button = document.getElementById("drill-export");
  button.disabled = true;
  try {
    await downloadCsv("ticket_details", { ...drillQuery, limit: EXPORT_ROWS }, "tickets.csv");
  } catch (error) {
    document.getElementById("drill-summary").textContent = `Export failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Filters, views and sign-in

function setOptions(select, values, current) {
  const wanted = new Set(values.filter((value) => value !== null && value !== undefined && value !== ""));
  if (current) wanted.add(current);
  const first = select.options[0];
  select.replaceChildren(
    first,
    ...[...wanted].sort().map((value) => element("option", { value, text: value })),
  );
  select.value = current || "";
}

async function loadFilterOptions() {
  const year = { start: Date.now() - 365 * 86_400_000, end: Date.now() };
  const span = { start_date: formatUtc(year.start), end_date: formatUtc(year.end) };
  const form = document.getElementById("filters");
  const lists = [
    ["category", pipe("category_analysis", span), (rows) => rows.map((row) => row.category)],
    ["agent", pipe("agent_performance", span), (rows) => rows.map((row) => row.agent_id)],
    ["channel", pipe("csat", { ...span, group_by: "channel" }), (rows) => rows.map((row) => row.group)],
  ];
  await Promise.all(
    lists.map(async ([name, answer, values]) => {
      try {
        setOptions(form.elements[name], values(await answer), state[name]);
      } catch {
        setOptions(form.elements[name], [], state[name]); // the panels report the failure
      }
    }),
  );
}

function showFilters() {
  const form = document.getElementById("filters");
  for (const name of ["period", "start", "end", "category", "priority", "agent", "channel", "hours", "tz"]) {
    if (form.elements[name].value !== undefined) form.elements[name].value = state[name] || "";
  }
  if (state.period !== "custom") {
    const window = windowOf(state);
    form.elements.start.value = localDate(window.start, state.tz);
    form.elements.end.value = localDate(window.end, state.tz);
  }
  form.classList.toggle("is-custom", state.period === "custom");
  for (const link of document.querySelectorAll("[data-view-link]")) {
    const current = link.dataset.viewLink === state.view;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const view of document.querySelectorAll("[data-view]")) view.hidden = view.dataset.view !== state.view;
}

function onFilterChange(event) {
  const form = document.getElementById("filters");
  const field = event.target.name;
  if (field === "tz" && !validTimezone(form.elements.tz.value)) {
    form.elements.tz.setCustomValidity("Unknown timezone: pick one from the list (e.g. Europe/Berlin)");
    form.elements.tz.reportValidity();
    return;
  }
  form.elements.tz.setCustomValidity("");
  const next = { ...state };
  for (const name of ["period", "category", "priority", "agent", "channel", "hours", "tz"])
    next[name] = form.elements[name].value;
  if (field === "start" || field === "end") next.period = "custom";
  if (next.period === "custom") {
    next.start = form.elements.start.value;
    next.end = form.elements.end.value;
    if (!next.start || !next.end || next.start > next.end) {
      form.elements.end.setCustomValidity("The end date must be on or after the start date");
      form.elements.end.reportValidity();
      return;
    }
    form.elements.end.setCustomValidity("");
  }
  state = next;
  writeState(state);
  showFilters();
  refresh();
}

function switchView(event) {
  event.preventDefault();
  state = { ...state, view: event.currentTarget.dataset.viewLink };
  writeState(state);
  showFilters();
  refresh();
}

function signOut(reason = "") {
  forgetToken();
  generation?.abort();
  clearInterval(atRiskTimer);
  document.getElementById("main").hidden = true;
  document.getElementById("filters").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("sign-in").hidden = false;
  document.getElementById("sign-in-error").textContent = reason;
  document.getElementById("token-input").focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("token-input");
  setToken(input.value.trim());
  try {
    await pipe("ticket_metrics", {});
    input.value = "";
    start();
  } catch (error) {
    forgetToken();
    document.getElementById("sign-in-error").textContent =
      error instanceof ApiError && (error.status === 401 || error.status === 403)
        ? "This token is not valid for reading this workspace's pipes."
        : `Could not sign in: ${error.message}`;
  }
}

function start() {
  document.getElementById("sign-in").hidden = true;
  document.getElementById("filters").hidden = false;
  document.getElementById("main").hidden = false;
  document.getElementById("sign-out").hidden = false;
  showFilters();
  writeState(state);
  refresh();
  loadFilterOptions();
}

function boot() {
  takeTokenFromFragment();
  const banner = document.getElementById("banner");
  if (!chartLibraryLoaded()) {
    banner.textContent = "The chart library is not installed (run `make install`): charts cannot be drawn.";
    banner.hidden = false;
  }
  document
    .getElementById("timezones")
    .append(...timezones().map((zone) => element("option", { value: zone })));
  document.getElementById("filters").addEventListener("change", onFilterChange);
  document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
  document.getElementById("sign-in").addEventListener("submit", signIn);
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  const drill = document.getElementById("drill");
  document.getElementById("drill-close").addEventListener("click", () => drill.close());
  drill.addEventListener("close", () => delete drill.dataset.rows); // Escape closes it too
  document.getElementById("drill-export").addEventListener("click", exportDrill);
  for (const link of document.querySelectorAll("[data-view-link]"))
    link.addEventListener("click", switchView);
  if (token()) start();
  else signOut();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
