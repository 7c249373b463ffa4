// Chart.js (installed from the npm registry by `make`, served from /static/vendor) with the
// dashboard's defaults: the Okabe-Ito palette, which stays distinct under color-blindness.

export const PALETTE = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#D55E00",
  "#56B4E9",
  "#CC79A7",
  "#F0E442",
  "#000000",
];

const charts = new Map();

export function chartLibraryLoaded() {
  return typeof window.Chart === "function";
}

function configureDefaults() {
  const { Chart } = window;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#1f2933";
  Chart.defaults.plugins.legend.labels.boxWidth = 12;
}

let configured = false;

// Draws a chart into `container` (replacing the panel's previous one). `onPick(index, datasetIndex)`
// is called when a bar or point is clicked, `onPick(index)` for a whole label from the data table
// (and with `pickValues`, `onPick(index, datasetIndex)` from each of its values); `summary` is read
// out by screen readers.
export function drawChart(
  name,
  container,
  { type, labels, datasets, options = {}, summary, onPick, pickValues = false, valueText },
) {
  if (!configured) {
    configureDefaults();
    configured = true;
  }
  charts.get(name)?.destroy();
  const frame = document.createElement("div");
  frame.className = "chart";
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", summary);
  frame.append(canvas);
  container.replaceChildren(frame);
  container.append(dataTable(labels, datasets, valueText, onPick, pickValues));
  const chart = new window.Chart(canvas, {
    type,
    data: {
      labels,
      datasets: datasets.map((dataset, index) => ({
        backgroundColor: PALETTE[index % PALETTE.length],
        borderColor: PALETTE[index % PALETTE.length],
        ...dataset,
      })),
    },
    options: {
      interaction: { mode: "nearest", intersect: true },
      onClick: (event, elements) => {
        if (onPick && elements.length) onPick(elements[0].index, elements[0].datasetIndex);
      },
      onHover: (event, elements) => {
        event.native.target.style.cursor = onPick && elements.length ? "pointer" : "default";
      },
      ...options,
    },
  });
  charts.set(name, chart);
  return chart;
}

function pickButton(text, onClick, label = undefined) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  button.textContent = text;
  if (label) button.setAttribute("aria-label", label);
  button.addEventListener("click", onClick);
  return button;
}

// The chart's numbers as a table under a disclosure: readable without the picture, and (with
// `onPick`) a button per row, and with `pickValues` per value, that drills down as a click on the
// chart would, from the keyboard.
function dataTable(
  labels,
  datasets,
  valueText = (value) => (value === null || value === undefined ? "–" : String(value)),
  onPick,
  pickValues,
) {
  const head = document.createElement("tr");
  for (const text of ["", ...datasets.map((dataset) => dataset.label), ...(onPick ? [""] : [])]) {
    const cell = document.createElement("th");
    cell.scope = "col";
    cell.textContent = text;
    head.append(cell);
  }
  const body = document.createElement("tbody");
  labels.forEach((label, index) => {
    const row = document.createElement("tr");
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = label;
    row.append(name);
    datasets.forEach((dataset, datasetIndex) => {
      const cell = document.createElement("td");
      const text = valueText(dataset.data[index]);
      if (onPick && pickValues && dataset.data[index]) {
        const described = `${label}, ${dataset.label}: ${text}; list the tickets`;
        cell.append(pickButton(text, () => onPick(index, datasetIndex), described));
      } else {
        cell.textContent = text;
      }
      row.append(cell);
    });
    if (onPick) {
      const cell = document.createElement("td");
      cell.append(pickButton("List tickets", () => onPick(index)));
      row.append(cell);
    }
    body.append(row);
  });
  const table = document.createElement("table");
  const thead = document.createElement("thead");
  thead.append(head);
  table.append(thead, body);
  const scroll = document.createElement("div");
  scroll.className = "table-scroll chart-table";
  scroll.append(table);
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "Data table";
  details.append(summary, scroll);
  return details;
}

export function dropChart(name) {
  charts.get(name)?.destroy();
  charts.delete(name);
}
