// Match Analysis: why one result ranked where it did, from its `_match_breakdown` and `explanation`, shown as the
// API returned them — each signal's value, its weight, its contribution (value × weight) to the score, the gates,
// the profile and its confidence, and the one-line explanation verbatim.
import { get, productPath } from "../api.js";
import { openDialog } from "../dialog.js";
import { fmtPrice, fmtScore, h, productImage } from "../dom.js";

const SIGNALS = {
  clip: ["Similarity", "CLIP cosine between the query and the product, mapped to 0–1"],
  colour: ["Colour", "how much of the product is the colour asked for: the colour words typed, or the query picture's colours"],
  aspect: ["Shape", "how close the product's aspect ratio is to the query image's"],
  category: ["Category", "1 when the product's family is the query's, 0 when it is another"],
  popularity: ["Popularity", "clicks, add-to-carts and purchases from feedback; 0.5 is average"],
  rules: ["Merchant rules", "0.5 when no rule matches; above is boosted, below is buried"],
  keywords: ["Keywords", "how well the product's words (title, brand, description, attributes, codes) match the query's: its BM25 score relative to the best candidate's, times the share of the query's words it holds; 1 for an exact id or code"],
};

const GATES = {
  "category:passed": "Category gate passed: the families agree, or one of them is unsure.",
  "category:inactive": "Category gate inactive: the query's product type was not confident enough to gate on.",
  "category:near_duplicate": "Kept despite another product type: a near-duplicate of the query (cosine ≥ 0.95).",
  "category:relaxed": "Another product type, shown only because the gate would have emptied the page.",
  "category:dropped": "Dropped by the category gate.",
  "category:exact_identifier": "Never gated: the query is exactly this product's id or product code.",
};

// How the search chose its profile (the envelope's `profile_source`).
const PROFILE_SOURCES = {
  request: "named in the request",
  query: "named by a word of the query",
  product: "the family of the product searched from",
  model: "guessed from the query by the model",
};

export function openMatchAnalysis(hit, envelope, position) {
  const breakdown = hit._match_breakdown;
  const meta = hit.metadata || {};
  const title = meta.title || hit.id;
  const body = [];

  body.push(h("div", { class: "grid-3" },
    h("div", {}, h("h3", {}, "Score"), h("div", { class: "score-big", "data-testid": "match-score" }, fmtScore(hit.similarity_score, 4)), h("div", { class: "muted small" }, `rank ${position + 1} of ${envelope.results.length}`)),
    h("div", {}, h("h3", {}, "Profile"),
      h("div", { class: "row", style: { marginTop: "6px" } }, h("span", { class: "badge badge-accent plain", "data-testid": "match-profile" }, envelope.profile || "none")),
      h("div", { class: "muted small", style: { marginTop: "4px" }, "data-testid": "match-profile-confidence" },
        typeof envelope.profile_confidence === "number" ? `confidence ${envelope.profile_confidence.toFixed(2)}${PROFILE_SOURCES[envelope.profile_source] ? ` (${PROFILE_SOURCES[envelope.profile_source]})` : ""}` : "")),
    h("div", {}, h("h3", {}, "Query"), h("div", { style: { marginTop: "6px" } }, h("span", { class: "badge plain" }, envelope.mode)),
      h("div", { class: "muted small mono", style: { marginTop: "4px" } }, envelope.search_id))));

  body.push(h("section", { "aria-labelledby": "explanation-title" },
    h("h3", { id: "explanation-title" }, "Explanation"),
    h("blockquote", { class: "explanation", style: { marginTop: "8px" }, "data-testid": "match-explanation" }, hit.explanation ?? "No explanation: the search was run with explain off.")));

  if (breakdown) {
    const names = Object.keys(breakdown.weights);
    const rows = names.map((name) => {
      const value = breakdown.signals[name];
      const weight = breakdown.weights[name];
      return { name, value, weight, contribution: typeof value === "number" ? value * weight : 0 };
    });
    body.push(composition(rows), signalTable(rows), matchedTerms(breakdown, envelope), gateList(breakdown.gates));
    if ("colour" in breakdown.weights) body.push(productColours(hit.id));
  } else {
    body.push(h("p", { class: "muted" }, "No breakdown: the search was run with explain off."));
  }

  const subtitle = [hit.id, meta.category, meta.price !== undefined ? fmtPrice(meta.price, meta.currency) : null].filter(Boolean).join(" · ");
  return openDialog({
    title: `Match Analysis — ${title}`, subtitle, testid: "match-analysis", wide: true,
    media: productImage(meta.image_url, title, ""),
    body,
  });
}

// The product's main colours as people name them, with their shares (loaded from its stored signals).
function productColours(id) {
  const list = h("div", { class: "swatches", "data-testid": "match-colours" }, h("span", { class: "muted" }, "Loading…"));
  get(`${productPath(id)}/signals`).then((signals) => {
    const colours = signals.image?.colour_swatch ?? [];
    list.replaceChildren(...(colours.length
      ? colours.map((c) => h("div", { class: "swatch", title: `${c.name} (${c.family})` }, h("i", { style: { background: c.hex } }),
        h("div", {}, h("b", {}, c.name), h("small", {}, `${c.family} · ${Math.round(c.share * 100)}%`))))
      : [h("span", { class: "muted" }, signals.image?.colour_stale ? "Stored before colour names: not recomputed yet" : "No colour found")]));
  }).catch(() => list.replaceChildren(h("span", { class: "muted" }, "The product's colours could not be loaded.")));
  return h("section", { "aria-labelledby": "colours-title" }, h("h3", { id: "colours-title" }, "Product colours"), list);
}

const colourOf = (name) => `sig-${SIGNALS[name] ? name : "other"}`;

function composition(rows) {
  const total = rows.reduce((sum, row) => sum + row.contribution, 0);
  const segments = rows.map((row) => h("div", {
    class: colourOf(row.name), style: { width: `${row.contribution * 100}%` }, title: `${row.name}: ${row.contribution.toFixed(4)}`,
  }));
  const legend = rows.map((row) => h("span", {}, h("i", { class: colourOf(row.name) }), `${row.name} ${row.contribution.toFixed(3)}`));
  return h("section", { "aria-labelledby": "composition-title" },
    h("h3", { id: "composition-title" }, "How the score is made"),
    h("div", { class: "stacked", style: { marginTop: "10px" }, role: "img", "aria-label": `Contributions adding up to ${total.toFixed(4)}` }, segments),
    h("div", { class: "legend" }, legend));
}

function signalTable(rows) {
  const most = Math.max(...rows.map((row) => row.contribution), 0.0001);
  const total = rows.reduce((sum, row) => sum + row.contribution, 0);
  const weights = rows.reduce((sum, row) => sum + row.weight, 0);
  const head = h("tr", {}, h("th", {}, "Signal"), h("th", { class: "num" }, "Value"), h("th", { class: "num" }, "Weight"),
    h("th", { class: "num" }, "Contribution"), h("th", {}, h("span", { class: "sr-only" }, "Contribution chart")));
  const body = rows.map((row) => {
    const [label, help] = SIGNALS[row.name] || [row.name, ""];
    const bar = h("div", { class: "bar", role: "img", "aria-label": `${row.name} contributes ${row.contribution.toFixed(4)}` },
      h("div", { class: colourOf(row.name), style: { width: `${(row.contribution / most) * 100}%` } }));
    return h("tr", { "data-signal": row.name, "data-value": String(row.value), "data-weight": String(row.weight) },
      h("td", {}, h("div", {}, h("b", {}, label), " ", h("code", { class: "faint" }, row.name)), h("div", { class: "faint small" }, help)),
      h("td", { class: "num mono" }, fmtScore(row.value, 4)),
      h("td", { class: "num mono" }, fmtScore(row.weight, 4)),
      h("td", { class: "num mono" }, row.contribution.toFixed(4)),
      h("td", {}, bar));
  });
  const foot = h("tr", {}, h("td", {}, h("b", {}, "Score")), h("td", {}), h("td", { class: "num mono" }, weights.toFixed(4)),
    h("td", { class: "num mono" }, h("b", {}, total.toFixed(4))), h("td", {}));
  return h("section", { "aria-labelledby": "signals-title" },
    h("h3", { id: "signals-title" }, "Signals"),
    h("div", { class: "table-wrap", style: { marginTop: "8px" } },
      h("table", { class: "table signal-table", "data-testid": "match-signals" }, h("thead", {}, head), h("tbody", {}, body), h("tfoot", {}, foot))),
    h("p", { class: "faint small", style: { marginTop: "8px" } },
      "Contribution = value × weight; they add up to the score. Signals with nothing to say for this query (no colour word, "
      + "no feedback yet, no rules) are left out and their weight is shared by the others."));
}

// Text, voice and fusion searches that weigh words: the query's words this product holds, as typed.
function matchedTerms(breakdown, envelope) {
  if (!Array.isArray(breakdown.matched_terms)) return null;
  const weight = typeof envelope.keyword_weight === "number" ? ` (keyword weight ${envelope.keyword_weight.toFixed(2)})` : "";
  const terms = breakdown.matched_terms.length
    ? breakdown.matched_terms.map((term) => h("span", { class: "badge plain" }, term))
    : h("span", { class: "muted" }, "None of the query's words are in this product.");
  return h("section", { "aria-labelledby": "terms-title" },
    h("h3", { id: "terms-title" }, `Matched words${weight}`),
    h("div", { class: "row", style: { marginTop: "8px", gap: "6px" }, "data-testid": "match-terms" }, terms));
}

function gateList(gates) {
  const items = gates.length
    ? gates.map((gate) => h("div", { class: "gate" }, h("code", {}, gate), h("span", { class: "muted" }, GATES[gate] || "")))
    : h("span", { class: "muted" }, "No gate applied.");
  return h("section", { "aria-labelledby": "gates-title" },
    h("h3", { id: "gates-title" }, "Gates"),
    h("div", { class: "gates", style: { marginTop: "8px" }, "data-testid": "match-gates" }, items));
}
