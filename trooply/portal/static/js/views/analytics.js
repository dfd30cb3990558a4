// Analytics: how search does for shoppers. Charts drawn here as inline SVG (no library, no CDN), each with the
// table of its numbers behind it for screen readers and for copying; the query and product tables below.
import { get } from "../api.js";
import { fmtInt, fmtPrice, h, replace } from "../dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const WINDOWS = [["7", "Last 7 days"], ["30", "Last 30 days"], ["90", "Last 90 days"]];
const QUERY_TABLES = [
  ["count", "Top searches", "The text queries shoppers send most."],
  ["no_results", "Searches with no results", "Worth a synonym, a product, or a rule."],
  ["no_clicks", "Searches nobody clicked", "Results shown, none followed: the ranking may miss what shoppers mean."],
];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

const pct = (value) => (value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`);
const day = (iso) => new Date(`${iso}Z`).toLocaleDateString("en", { month: "short", day: "numeric", timeZone: "UTC" });

function windowQuery(days) {
  const to = new Date();
  to.setUTCHours(24, 0, 0, 0); // through the end of today (UTC)
  const from = new Date(to.getTime() - days * 86400000);
  return { from: from.toISOString().slice(0, 10), to: to.toISOString().slice(0, 10) };
}

// A chart and the table of the same numbers; the SVG is hidden from assistive technology, the table is not.
function figure(id, title, description, chart, headers, rows) {
  return h("figure", { class: "card chart", "aria-labelledby": `${id}-title`, "data-testid": id },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: `${id}-title` }, title), h("p", {}, description))),
    chart,
    h("details", { class: "chart-data" },
      h("summary", {}, "Show the numbers"),
      h("table", { class: "table analytics-table", "data-testid": `${id}-table` },
        h("caption", { class: "visually-hidden" }, title),
        h("thead", {}, h("tr", {}, headers.map((text, i) => h("th", { class: i ? "num" : null, scope: "col" }, text)))),
        h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((text, i) => (i ? h("td", { class: "num" }, text) : h("th", { scope: "row" }, text)))))))));
}

// Bars (a count) with a line over them (a rate, 0..1), one point per interval.
function barsAndLine(points, barKey, lineKey, barLabel, lineLabel) {
  const width = 720, height = 220, left = 44, right = 44, top = 12, bottom = 28;
  const plotW = width - left - right, plotH = height - top - bottom;
  const maxBar = Math.max(1, ...points.map((p) => p[barKey]));
  const step = plotW / Math.max(1, points.length);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg", "aria-hidden": "true", focusable: "false" });
  for (const fraction of maxBar >= 2 ? [0, 0.5, 1] : [0, 1]) {
    const y = top + plotH * (1 - fraction);
    chart.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "chart-grid" }),
      svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "chart-axis" }, fmtInt(Math.round(maxBar * fraction))),
      svg("text", { x: width - right + 6, y: y + 4, class: "chart-axis" }, `${Math.round(fraction * 100)}%`));
  }
  const line = [];
  points.forEach((point, i) => {
    const barH = (point[barKey] / maxBar) * plotH;
    const x = left + i * step;
    if (barH > 0) chart.append(svg("rect", { x: x + step * 0.15, y: top + plotH - barH, width: Math.max(1, step * 0.7), height: barH, class: "chart-bar" }));
    if (point[lineKey] !== null && point[lineKey] !== undefined) line.push(`${x + step / 2},${top + plotH * (1 - point[lineKey])}`);
    if (points.length <= 14 || i % Math.ceil(points.length / 10) === 0) {
      chart.append(svg("text", { x: x + step / 2, y: height - 8, "text-anchor": "middle", class: "chart-axis" }, day(point.start)));
    }
  });
  if (line.length > 1) chart.append(svg("polyline", { points: line.join(" "), class: "chart-line" }));
  line.forEach((xy) => {
    const [cx, cy] = xy.split(",");
    chart.append(svg("circle", { cx, cy, r: 3, class: "chart-dot" }));
  });
  return h("div", {}, chart, h("p", { class: "legend small muted" },
    h("span", { class: "key bar-key" }), barLabel, " ", h("span", { class: "key line-key" }), lineLabel));
}

function horizontalBars(entries) {
  const width = 720, rowH = 28, left = 110;
  const max = Math.max(1, ...entries.map(([, value]) => value));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${Math.max(1, entries.length) * rowH + 8}`, class: "chart-svg", "aria-hidden": "true", focusable: "false" });
  entries.forEach(([label, value], i) => {
    const y = 4 + i * rowH;
    const w = ((width - left - 70) * value) / max;
    chart.append(svg("text", { x: left - 8, y: y + 18, "text-anchor": "end", class: "chart-axis" }, label),
      svg("rect", { x: left, y: y + 4, width: Math.max(1, w), height: rowH - 10, class: "chart-bar" }),
      svg("text", { x: left + w + 6, y: y + 18, class: "chart-axis" }, fmtInt(value)));
  });
  return chart;
}

function summary(totals) {
  const revenue = Object.entries(totals.revenue || {}).map(([currency, amount]) => fmtPrice(amount, currency)).join(" · ") || "—";
  const kpi = (label, value, testid) => h("section", { class: "card stat" },
    h("div", { class: "stat-label" }, label), h("div", { class: "stat-value", "data-testid": testid }, value));
  return h("div", { class: "stats analytics-kpis", "data-testid": "analytics-totals" },
    kpi("Searches", fmtInt(totals.searches), "kpi-searches"),
    kpi("No results", pct(totals.zero_result_rate), "kpi-zero"),
    kpi("Click-through", pct(totals.click_through_rate), "kpi-ctr"),
    kpi("Avg. click position", totals.average_click_position === null ? "—" : totals.average_click_position.toFixed(1), "kpi-position"),
    kpi("Add to cart", pct(totals.add_to_cart_rate), "kpi-cart"),
    kpi("Conversion", pct(totals.conversion_rate), "kpi-conversion"),
    kpi("Revenue", revenue, "kpi-revenue"));
}

function queryTable([sort, title, description], report) {
  const rows = report.queries;
  return h("section", { class: "card", "aria-labelledby": `q-${sort}-title`, "data-testid": `queries-${sort}` },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: `q-${sort}-title` }, title), h("p", {}, description))),
    rows.length
      ? h("div", { class: "table-scroll" }, h("table", { class: "table analytics-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Query"), h("th", { class: "num", scope: "col" }, "Searches"),
          h("th", { class: "num", scope: "col" }, "No results"), h("th", { class: "num", scope: "col" }, h("abbr", { title: "Click-through rate" }, "CTR")))),
        h("tbody", {}, rows.map((row) => h("tr", {}, h("th", { scope: "row" }, row.query), h("td", { class: "num" }, fmtInt(row.searches)),
          h("td", { class: "num" }, pct(row.zero_result_rate)), h("td", { class: "num" }, pct(row.click_through_rate)))))))
      : h("p", { class: "muted empty-note" }, "No text searches in this window."));
}

function productTable(report) {
  return h("section", { class: "card", "aria-labelledby": "products-title", "data-testid": "top-products" },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "products-title" }, "Most clicked products"), h("p", {}, "Followed from search results, with what was bought."))),
    report.products.length
      ? h("div", { class: "table-scroll" }, h("table", { class: "table analytics-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Product"), h("th", { class: "num", scope: "col" }, "Clicks"),
          h("th", { class: "num", scope: "col" }, "Add to cart"), h("th", { class: "num", scope: "col" }, "Purchases"))),
        h("tbody", {}, report.products.map((row) => h("tr", {}, h("th", { scope: "row" }, h("a", { href: `#/products/${encodeURIComponent(row.product_id)}` }, row.product_id)),
          h("td", { class: "num" }, fmtInt(row.clicks)), h("td", { class: "num" }, fmtInt(row.add_to_carts)), h("td", { class: "num" }, fmtInt(row.purchases)))))))
      : h("p", { class: "muted empty-note" }, "No clicks in this window."));
}

export async function render(root) {
  const body = h("div", { "aria-live": "polite" });
  const picker = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Window" },
    WINDOWS.map(([days, label], i) => h("label", {},
      h("input", { type: "radio", name: "analytics-window", value: days, checked: i === 0, "data-testid": `window-${days}` }),
      h("span", {}, label))));
  picker.addEventListener("change", (event) => load(Number(event.target.value)));

  async function load(days) {
    const span = windowQuery(days);
    const [overview, ...reports] = await Promise.all([
      get("/v1/analytics/overview", { ...span, interval: "day" }),
      ...QUERY_TABLES.map(([sort]) => get("/v1/analytics/queries", { ...span, sort, limit: 10 })),
      get("/v1/analytics/products", { ...span, sort: "clicks", limit: 10 }),
    ]);
    const products = reports.pop();
    const series = overview.series;
    const modes = Object.entries(overview.by_mode).map(([mode, m]) => [mode, m.searches]).sort((a, b) => b[1] - a[1]);
    replace(body,
      summary(overview.totals),
      h("div", { class: "grid-2" },
        figure("chart-searches", "Searches and click-through", "Searches per day (bars) and the share of them with a click (line).",
          barsAndLine(series, "searches", "click_through_rate", "Searches", "Click-through rate"),
          ["Day", "Searches", "Click-through"], series.map((p) => [day(p.start), fmtInt(p.searches), pct(p.click_through_rate)])),
        figure("chart-zero", "Searches with no results", "Per day: how many found nothing (bars) and their share (line).",
          barsAndLine(series, "zero_results", "zero_result_rate", "No results", "No-result rate"),
          ["Day", "No results", "No-result rate"], series.map((p) => [day(p.start), fmtInt(p.zero_results), pct(p.zero_result_rate)]))),
      figure("chart-modes", "Searches by mode", "Text, image, crop, voice, fusion, similar…",
        modes.length ? horizontalBars(modes) : h("p", { class: "muted empty-note" }, "No searches in this window."),
        ["Mode", "Searches", "Click-through", "Conversion"],
        Object.entries(overview.by_mode).map(([mode, m]) => [mode, fmtInt(m.searches), pct(m.click_through_rate), pct(m.conversion_rate)])),
      h("div", { class: "grid-2" }, QUERY_TABLES.map((table, i) => queryTable(table, reports[i])), productTable(products)));
  }

  replace(root,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Analytics"), h("p", {}, "How search does for your shoppers: from searches and the events your storefront sends. Times are UTC.")),
      picker),
    body);
  await load(7);
}
