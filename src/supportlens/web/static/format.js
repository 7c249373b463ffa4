// Number and duration formatting shared by the panels.

const integer = new Intl.NumberFormat("en-US");
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

export function count(value) {
  return value === null || value === undefined ? "–" : integer.format(value);
}

export function percent(value) {
  return value === null || value === undefined ? "–" : `${decimal.format(value)}%`;
}

// A duration given in minutes, in the unit a person reads best.
export function duration(minutes) {
  if (minutes === null || minutes === undefined || Number.isNaN(minutes)) return "–";
  if (Math.abs(minutes) < 60) return `${decimal.format(minutes)} min`;
  if (Math.abs(minutes) < 48 * 60) return `${decimal.format(minutes / 60)} h`;
  return `${decimal.format(minutes / 1440)} d`;
}

// "▲ 12% vs previous" for a change between two figures; `better` says which direction is good.
export function change(current, previous, better) {
  if (current === null || current === undefined || previous === null || previous === undefined) {
    return { text: "no previous figure", tone: "neutral" };
  }
  if (previous === 0) {
    return current === 0 ? { text: "no change", tone: "neutral" } : { text: "new", tone: "neutral" };
  }
  const ratio = (current - previous) / Math.abs(previous);
  if (Math.abs(ratio) < 0.0005) return { text: "no change", tone: "neutral" };
  const up = ratio > 0;
  const good = better === "neutral" ? "neutral" : (better === "up") === up ? "good" : "bad";
  return { text: `${up ? "▲" : "▼"} ${decimal.format(Math.abs(ratio) * 100)}% vs previous`, tone: good };
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}
