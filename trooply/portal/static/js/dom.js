// Small DOM helpers. Everything the API returns is merchant or shopper data: it is only ever set as text
// (textContent, attributes), never parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  append(el, children); // first, so that a <select>'s value can name one of its options
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "style") Object.assign(el.style, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value" && "value" in el) el.value = value;
    else if (name === "checked" || name === "disabled" || name === "selected" || name === "multiple") el[name] = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

// Line icons, 24x24 stroke paths.
const ICONS = {
  catalog: "M4 6h16M4 12h16M4 18h10",
  import: "M12 3v12m0 0l-4-4m4 4l4-4M5 21h14",
  search: "M11 18a7 7 0 1 1 0-14 7 7 0 0 1 0 14zm10 3l-5.2-5.2",
  rules: "M4 7h10M18 7h2M4 17h4M12 17h8M14 4v6M8 14v6",
  usage: "M4 20V10M10 20V4M16 20v-7M22 20H2",
  analytics: "M3 3v18h18M7 15l4-4 3 3 5-6",
  keys: "M15 7a4 4 0 1 1-3.9 5H3v3h3v3h3v-3h2.1A4 4 0 0 1 15 7z",
  close: "M6 6l12 12M18 6L6 18",
  refresh: "M20 11a8 8 0 0 0-14.9-3.5M4 4v4h4M4 13a8 8 0 0 0 14.9 3.5M20 20v-4h-4",
  logout: "M15 4h4a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1h-4M10 17l5-5-5-5M15 12H3",
  upload: "M12 16V4m0 0l-4 4m4-4l4 4M4 20h16",
  mic: "M12 15a3 3 0 0 0 3-3V6a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm6-3a6 6 0 0 1-12 0m6 6v3",
  copy: "M9 9h10v10H9zM5 15V5h10",
  back: "M15 6l-6 6 6 6",
  image: "M4 5h16v14H4zM4 16l5-5 4 4 3-3 4 4M15 9.5a1.5 1.5 0 1 0 0-.01",
};

export function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "1.8");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name] || "");
  svg.append(path);
  return svg;
}

let uid = 0;
export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// A labelled form control: <div class="field"><label for>…</label>control<small hint></div>.
export function field(labelText, control, hint) {
  if (!control.id) control.id = nextId("field");
  const hintEl = hint ? h("small", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: control.id }, labelText), control, hintEl);
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast ${kind === "error" ? "error" : ""}` }, message);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 7000 : 4000);
}

const numberFormat = new Intl.NumberFormat("en");
export const fmtInt = (n) => (n === null || n === undefined ? "—" : numberFormat.format(n));

// The account's default currency (Usage page): prices sent without a currency of their own are shown in it.
let defaultCurrency = null;
export function setDefaultCurrency(code) {
  defaultCurrency = code || null;
}

export function fmtPrice(price, ownCurrency) {
  if (price === undefined || price === null) return "—";
  const currency = ownCurrency || defaultCurrency;
  if (currency && /^[A-Za-z]{3}$/.test(currency)) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() }).format(price);
    } catch {
      // an unknown ISO code: the plain number below
    }
  }
  return new Intl.NumberFormat("en", { maximumFractionDigits: 2 }).format(price) + (currency ? ` ${currency}` : "");
}

export function fmtDate(value) {
  if (!value) return "—";
  // The API's datetimes are UTC without an offset.
  const date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
  return date.toLocaleString("en", { dateStyle: "medium", timeStyle: "short" });
}

export const fmtScore = (value, digits = 3) => (typeof value === "number" ? value.toFixed(digits) : "—");

export function statusBadge(status) {
  return h("span", { class: `badge badge-${status}` }, status);
}

export function emptyState(title, text) {
  return h("div", { class: "empty" }, h("strong", {}, title), text ? h("span", {}, text) : null);
}

export function productImage(url, alt, className = "thumb") {
  const img = h("img", { class: className, alt: alt || "", loading: "lazy", decoding: "async", referrerpolicy: "no-referrer" });
  // An image that cannot load (the reason a product failed, often) shows a placeholder, not a broken icon.
  const missing = () => img.replaceWith(h("div", { class: `${className} image-missing`, role: alt ? "img" : null, "aria-label": alt || null, title: "The image could not be loaded" }, icon("image")));
  img.addEventListener("error", missing, { once: true });
  if (url) img.src = url;
  else queueMicrotask(missing);
  return img;
}

export function spinner(label = "Loading") {
  return h("span", { class: "spinner", role: "status", "aria-label": label });
}
