// Search playground: every query mode the storefront has, with filters and overrides, and the results as a
// shopper would see them; a result opens its Match Analysis.
import { describeError, get, postForm, postJson } from "../api.js";
import { emptyState, field, fmtInt, fmtPrice, fmtScore, h, icon, nextId, productImage, replace, spinner } from "../dom.js";
import { cropper } from "../components/crop.js";
import { openMatchAnalysis } from "./match-analysis.js";
import { voiceInput } from "../components/voice.js";

const MODES = [
  ["text", "Text"], ["url", "Image URL"], ["image", "Upload"], ["crop", "Crop"], ["multi", "Multi-image"], ["fusion", "Fusion"], ["voice", "Voice"],
  ["similar", "Similar"],
];
// Fields the playground offers to group results by (any filterable field works: type it).
const GROUP_FIELDS = ["brand", "category", "attributes.group_id", "attributes.colour"];

export async function render(root, { args, profiles }) {
  const stats = await get("/v1/catalog/stats").catch(() => ({ categories: [] }));
  // #/search/url/<image URL> ("Search with this image") and #/search/similar/<product id> ("More like this")
  // open the playground with that search already run.
  const initialUrl = args[0] === "url" && args[1] ? args[1] : "";
  const initialProduct = args[0] === "similar" && args[1] ? args[1] : "";
  let mode = initialUrl ? "url" : initialProduct ? "similar" : "text";

  // ---- Mode inputs ----
  const textInput = h("input", { class: "input", type: "search", placeholder: "red leather sneaker under 100", "data-testid": "search-text-input", autocomplete: "off" });
  const urlInput = h("input", { class: "input", type: "url", placeholder: "https://shop.example.com/photo.jpg", value: initialUrl, "data-testid": "search-url-input" });
  const urlPreview = h("div", { class: "query-preview", "data-testid": "url-preview" });
  const uploadInput = h("input", { class: "input", type: "file", accept: "image/*", "data-testid": "search-file-input" });
  const uploadPreview = h("div");
  const crop = cropper();
  const multiFiles = h("input", { class: "input", type: "file", accept: "image/*", multiple: true, "data-testid": "search-multi-files" });
  const multiUrls = h("textarea", { class: "input", rows: "3", placeholder: "One image URL per line", "data-testid": "search-multi-urls" });
  const multiThumbs = h("div", { class: "thumbs" });
  const fusionUrl = h("input", { class: "input", type: "url", placeholder: "https://shop.example.com/dress.jpg" });
  const fusionFile = h("input", { class: "input", type: "file", accept: "image/*", "data-testid": "search-fusion-file" });
  const fusionText = h("input", { class: "input", type: "text", placeholder: "in navy", "data-testid": "search-fusion-text" });
  const weightOut = h("output", { class: "mono" }, "0.50");
  const fusionWeight = h("input", { type: "range", min: "0", max: "1", step: "0.05", value: "0.5", "data-testid": "search-fusion-weight" });
  fusionWeight.addEventListener("input", () => { weightOut.textContent = Number(fusionWeight.value).toFixed(2); });
  const voice = voiceInput();
  // Words against pictures in text, voice and fusion searches; by default the profile's own keyword_weight.
  const keywordOut = h("output", { class: "mono", "data-testid": "search-keyword-weight-value" }, "profile default");
  const keywordWeight = h("input", { type: "range", min: "0", max: "1", step: "0.05", value: "0.3", disabled: true, "data-testid": "search-keyword-weight" });
  const keywordDefault = h("input", { type: "checkbox", id: nextId("keywords-default"), checked: true, "data-testid": "search-keyword-default" });
  const showKeywordWeight = () => {
    keywordWeight.disabled = keywordDefault.checked;
    keywordOut.textContent = keywordDefault.checked ? "profile default" : Number(keywordWeight.value).toFixed(2);
  };
  keywordWeight.addEventListener("input", showKeywordWeight);
  keywordDefault.addEventListener("change", showKeywordWeight);
  const words = () => (keywordDefault.checked ? {} : { keyword_weight: Number(keywordWeight.value) });
  const similarInput = h("input", { class: "input", type: "text", placeholder: "sku-1", value: initialProduct, "data-testid": "search-similar-input", autocomplete: "off" });

  previewFile(uploadInput, uploadPreview);
  previewUrl(urlInput, urlPreview);
  multiFiles.addEventListener("change", () => replace(multiThumbs, [...multiFiles.files].map((file) => thumb(URL.createObjectURL(file)))));

  const panels = {
    text: h("div", {}, field("Query", textInput, "What a shopper types; colour words and categories count.")),
    url: h("div", { class: "stack" }, field("Image URL", urlInput, "Fetched by the server, like a shopper's pasted link."), urlPreview),
    image: h("div", { class: "stack" }, field("Image", uploadInput, "Processed in memory and discarded."), uploadPreview),
    crop: crop.element,
    multi: h("div", { class: "stack" }, field("Images (2 to 5 in all)", multiFiles), field("…or image URLs", multiUrls), multiThumbs),
    fusion: h("div", { class: "stack" }, field("Image", fusionFile), field("…or image URL", fusionUrl), field("Text", fusionText, "Steers the image: a colour, a material, a style."),
      h("div", { class: "field" }, h("label", { for: fusionWeight.id = nextId("weight") }, "Image weight ", weightOut), fusionWeight,
        h("div", { class: "weight-scale" }, h("span", {}, "text only"), h("span", {}, "image only")))),
    voice: voice.element,
    similar: h("div", {}, field("Product id", similarInput, "A product of your catalogue: more like it, itself left out. Or click “More like this” on a result.")),
  };

  // ---- Common options ----
  const categories = h("datalist", { id: nextId("categories") }, stats.categories.map((c) => h("option", { value: c.category })));
  const category = h("input", { class: "input", type: "text", list: categories.id, placeholder: "any", "data-testid": "filter-category" });
  const priceMin = h("input", { class: "input", type: "number", min: "0", step: "any", placeholder: "min", "data-testid": "filter-price-min" });
  const priceMax = h("input", { class: "input", type: "number", min: "0", step: "any", placeholder: "max", "data-testid": "filter-price-max" });
  const inStock = h("input", { type: "checkbox", id: nextId("stock"), "data-testid": "filter-in-stock" });
  const extra = h("textarea", { class: "input", rows: "2", placeholder: '{"attributes.colour": "red"}', "data-testid": "filter-extra" });
  const limit = h("input", { class: "input", type: "number", min: "1", max: "100", value: "12", "data-testid": "search-limit" });
  const threshold = h("input", { class: "input", type: "number", min: "0", max: "1", step: "0.05", value: "0", "data-testid": "search-threshold" });
  const groupFields = h("datalist", { id: nextId("group-fields") }, GROUP_FIELDS.map((name) => h("option", { value: name })));
  const groupBy = h("input", { class: "input", type: "text", list: groupFields.id, placeholder: "none", "data-testid": "search-group-by", autocomplete: "off" });
  const groupSize = h("input", { class: "input", type: "number", min: "1", max: "100", value: "1", "data-testid": "search-group-size" });
  const diversityOut = h("output", { class: "mono" }, "0.00");
  const diversity = h("input", { type: "range", min: "0", max: "1", step: "0.05", value: "0", "data-testid": "search-diversity" });
  diversity.addEventListener("input", () => { diversityOut.textContent = Number(diversity.value).toFixed(2); });
  const profile = h("select", { class: "input", "data-testid": "search-profile" },
    h("option", { value: "" }, "Auto (zero-shot)"), profiles.map((p) => h("option", { value: p.name }, p.name)));

  const submit = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "search-submit" }, icon("search"), "Search");
  const formError = h("p", { class: "form-error", role: "alert", "data-testid": "search-error" });
  const modePicker = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Query mode" },
    MODES.map(([value, label]) => h("label", {},
      h("input", { type: "radio", name: "mode", value, checked: value === mode, "data-testid": `mode-${value}`, onchange: () => { mode = value; showPanel(); } }),
      h("span", {}, label))));
  const panelBox = h("div");
  const showPanel = () => replace(panelBox, panels[mode]);
  showPanel();

  const form = h("form", { class: "card search-panel", "aria-label": "Search" },
    h("div", { class: "card-body" },
      modePicker, panelBox,
      h("hr", { class: "divider" }),
      h("h3", {}, "Filters"),
      h("div", { class: "form-grid" }, field("Category", category, "Comma-separate several"), categories,
        h("div", { class: "field" }, h("span", { class: "label", id: "price-label" }, "Price"),
          h("div", { class: "pair", role: "group", "aria-labelledby": "price-label" }, withLabel("Minimum price", priceMin), withLabel("Maximum price", priceMax)))),
      h("label", { class: "check", for: inStock.id }, inStock, "In stock only"),
      field("More filters (JSON)", extra, "Any filter the API takes: brand, attributes.NAME, …"),
      h("hr", { class: "divider" }),
      h("h3", {}, "Ranking"),
      h("div", { class: "form-grid" }, field("Limit", limit), field("Threshold", threshold)),
      field("Profile", profile, "Overrides zero-shot selection (confidence 1)"),
      h("div", { class: "field" }, h("label", { for: keywordWeight.id = nextId("keyword-weight") }, "Keyword weight ", keywordOut), keywordWeight,
        h("div", { class: "weight-scale" }, h("span", {}, "pictures only"), h("span", {}, "words only")),
        h("label", { class: "check", for: keywordDefault.id }, keywordDefault, "The profile's default (text, voice and fusion)")),
      h("div", { class: "form-grid" }, field("Group by", groupBy, "One result per value (variants)"), groupFields, field("Per group", groupSize)),
      h("div", { class: "field" }, h("label", { for: diversity.id = nextId("diversity") }, "Diversity ", diversityOut), diversity,
        h("div", { class: "weight-scale" }, h("span", {}, "most relevant"), h("span", {}, "most varied"))),
      formError,
      h("div", { class: "row" }, submit)));

  const results = h("section", { class: "card", "aria-label": "Results", "aria-live": "polite", "data-testid": "search-results" },
    emptyState("Run a search", "Results appear here as your shoppers would see them. Click one to see why it ranked there."));

  replace(root,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Search playground"), h("p", {}, "Query the live index the way your storefront does; every result explains its rank."))),
    h("div", { class: "search-layout" }, form, results));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    let request;
    try {
      request = buildRequest();
    } catch (problem) {
      formError.textContent = problem.message;
      return;
    }
    submit.disabled = true;
    replace(results, h("div", { class: "empty" }, spinner("Searching"), " Searching…"));
    try {
      const envelope = request.form ? await postForm(request.path, request.form) : await postJson(request.path, request.json);
      showResults(results, envelope, searchSimilar);
    } catch (error) {
      replace(results, emptyState("The search failed", describeError(error)));
      formError.textContent = describeError(error);
    } finally {
      submit.disabled = false;
    }
  });

  function options() {
    const filters = {};
    const names = category.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (names.length) filters.category = names.length === 1 ? names[0] : names;
    const price = {};
    if (priceMin.value !== "") price.gte = Number(priceMin.value);
    if (priceMax.value !== "") price.lte = Number(priceMax.value);
    if (Object.keys(price).length) filters.price = price;
    if (inStock.checked) filters.in_stock = true;
    if (extra.value.trim()) {
      let parsed;
      try {
        parsed = JSON.parse(extra.value);
      } catch {
        throw new Error("More filters: not valid JSON.");
      }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("More filters: a JSON object of field: condition.");
      Object.assign(filters, parsed);
    }
    const common = { limit: Number(limit.value || 10), threshold: Number(threshold.value || 0) };
    if (Object.keys(filters).length) common.filters = filters;
    if (profile.value) common.profile = profile.value;
    if (groupBy.value.trim()) Object.assign(common, { group_by: groupBy.value.trim(), group_size: Number(groupSize.value || 1) });
    if (Number(diversity.value) > 0) common.diversity = Number(diversity.value);
    return common;
  }

  function asForm(fields, files = []) {
    const body = new FormData();
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined || value === null || value === "") continue;
      body.append(name, typeof value === "object" ? JSON.stringify(value) : String(value));
    }
    for (const [name, file, fileName] of files) body.append(name, file, fileName || file.name || name);
    return body;
  }

  function buildRequest() {
    const common = options();
    switch (mode) {
      case "text":
        if (!textInput.value.trim()) throw new Error("Type a query.");
        return { path: "/v1/search/text", json: { ...common, ...words(), query: textInput.value.trim() } };
      case "url":
        if (!urlInput.value.trim()) throw new Error("Paste an image URL.");
        return { path: "/v1/search/url", json: { ...common, image_url: urlInput.value.trim() } };
      case "image":
        if (!uploadInput.files[0]) throw new Error("Choose an image to upload.");
        return { path: "/v1/search/image", form: asForm(common, [["file", uploadInput.files[0]]]) };
      case "crop": {
        const chosen = crop.value();
        if (!chosen.file && !chosen.url) throw new Error("Choose an image, then draw a box on it.");
        if (!chosen.bbox) throw new Error("Draw the box around the item on the picture.");
        return { path: "/v1/search/crop", form: asForm({ ...common, bbox: chosen.bbox, image_url: chosen.url }, chosen.file ? [["file", chosen.file]] : []) };
      }
      case "multi": {
        const files = [...multiFiles.files];
        const urls = multiUrls.value.split("\n").map((s) => s.trim()).filter(Boolean);
        if (files.length + urls.length < 2 || files.length + urls.length > 5) throw new Error("Give 2 to 5 images in all.");
        return { path: "/v1/search/multi", form: asForm({ ...common, image_urls: urls.length ? urls : undefined }, files.map((f) => ["files", f])) };
      }
      case "fusion": {
        const file = fusionFile.files[0];
        const url = fusionUrl.value.trim();
        if (!file && !url) throw new Error("Give an image (upload or URL).");
        if (file && url) throw new Error("Give one image: an upload or a URL.");
        if (!fusionText.value.trim()) throw new Error("Add the text that steers the image.");
        return { path: "/v1/search/fusion", form: asForm({ ...common, ...words(), text: fusionText.value.trim(), image_weight: Number(fusionWeight.value), image_url: url || undefined }, file ? [["file", file]] : []) };
      }
      case "similar":
        if (!similarInput.value.trim()) throw new Error("Give a product id.");
        return { path: "/v1/search/similar", json: { ...common, product_id: similarInput.value.trim() } };
      case "voice": {
        const audio = voice.value();
        if (!audio) throw new Error("Record a query or choose an audio file.");
        return { path: "/v1/search/voice", form: asForm({ ...common, ...words() }, [["audio", audio.blob, audio.name]]) };
      }
      default:
        throw new Error("Unknown mode.");
    }
  }

  // "More like this" on a result: the same options, from that product.
  function searchSimilar(productId) {
    mode = "similar";
    modePicker.querySelector("input[value=similar]").checked = true;
    showPanel();
    similarInput.value = productId;
    form.requestSubmit();
  }

  if (initialUrl || initialProduct) form.requestSubmit();
  return () => voice.stop();
}

function withLabel(text, input) {
  input.id = input.id || nextId("input");
  input.setAttribute("aria-label", text);
  return input;
}

function thumb(src) {
  return h("img", { src, alt: "" });
}

function previewFile(input, box) {
  input.addEventListener("change", () => {
    const file = input.files[0];
    replace(box, file ? h("div", { class: "image-preview" }, h("img", { src: URL.createObjectURL(file), alt: "The uploaded query image" })) : null);
  });
}

// The URL's picture, in a box of fixed height shown while the URL is typed: the page never moves under the
// pointer (a preview that appeared on blur pushed the Search button away from a click).
function previewUrl(input, box) {
  let shown;
  const update = () => {
    const url = input.value.trim();
    const next = /^https?:\/\/\S+$/.test(url) ? url : null;
    if (next === shown) return;
    shown = next;
    replace(box, next ? productImage(next, "The query image", "") : h("span", { class: "faint small" }, "The picture appears here"));
  };
  let timer = null;
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
  input.addEventListener("change", update);
  update();
}

function showResults(box, envelope, searchSimilar) {
  const facts = [
    ["mode", envelope.mode],
    ["profile", envelope.profile ? `${envelope.profile}${typeof envelope.profile_confidence === "number" ? ` (${envelope.profile_confidence.toFixed(2)})` : ""}` : "—"],
    ["results", fmtInt(envelope.results.length)],
    ["took", `${envelope.took_ms.toFixed(1)} ms`],
  ];
  if (envelope.timings) facts.push(["model", `${envelope.timings.model_ms.toFixed(1)} ms`]);
  if (envelope.gated && envelope.gated.length) facts.push(["gated", fmtInt(envelope.gated.length)]);
  if (typeof envelope.keyword_weight === "number") facts.push(["words", envelope.keyword_weight.toFixed(2)]);
  if (envelope.group_by) facts.push(["grouped by", envelope.group_by]);
  const head = h("div", { class: "results-head", "data-testid": "results-head" },
    facts.map(([k, v]) => h("span", { class: "kv" }, `${k} `, h("b", {}, v))),
    h("span", { class: "spacer" }),
    h("code", { class: "faint", title: "search id" }, envelope.search_id));
  const notes = [];
  if (envelope.transcript !== undefined) notes.push(h("p", { "data-testid": "voice-transcript" }, h("span", { class: "muted" }, "Heard: "), h("b", {}, `“${envelope.transcript}”`)));
  if (envelope.interpreted) {
    const read = envelope.interpreted;
    const chips = [];
    for (const [name, value] of Object.entries(read.filters || {})) chips.push(h("span", { class: "chip" }, h("span", { class: "muted" }, name), JSON.stringify(value)));
    for (const colour of read.colours || []) chips.push(h("span", { class: "chip" }, h("span", { class: "muted" }, "colour"), colour));
    if (read.profile) chips.push(h("span", { class: "chip" }, h("span", { class: "muted" }, "family"), read.profile));
    if (chips.length) notes.push(h("div", { class: "row small" }, h("span", { class: "muted" }, "Read from the query:"), h("div", { class: "chips" }, chips)));
  }
  if (envelope.keywords_fallback) {
    notes.push(h("p", { class: "small", "data-testid": "keywords-fallback" }, h("b", {}, "Pictures only: "),
      "the query had no searchable words (only stop words or punctuation)."));
  }
  if (envelope.gates_relaxed) {
    notes.push(h("p", { class: "small", "data-testid": "gates-relaxed" }, h("b", {}, "No product of the query's type matched: "),
      "the category gate would have emptied the page, so the closest products of other types are shown."));
  }
  if (envelope.detection) {
    const d = envelope.detection;
    notes.push(h("p", { class: "small" }, h("span", { class: "muted" }, "Searched on the detected item: "), `${d.class_name} (${d.score.toFixed(2)}) at [${d.bounding_box.join(", ")}]`));
  }
  const grid = envelope.results.length
    ? h("div", { class: "results-grid", "data-testid": "results-grid" }, envelope.results.map((hit, position) => resultItem(hit, position, envelope, searchSimilar)))
    : emptyState("No results", "Nothing passed the filters and the threshold. Loosen them, or check that the catalogue is indexed.");
  replace(box, head,
    notes.length ? h("div", { class: "stack", style: { padding: "0 16px 12px" } }, notes) : null,
    h("div", { style: { borderTop: "1px solid var(--border)" } }, grid),
    h("details", { class: "raw", style: { borderTop: "1px solid var(--border)" } }, h("summary", {}, "Response JSON"), h("pre", {}, JSON.stringify(envelope, null, 2))));
}

function resultItem(hit, position, envelope, searchSimilar) {
  const similar = h("button", { class: "btn btn-sm result-similar", type: "button", "data-testid": "result-similar", "aria-label": `More like ${hit.metadata?.title || hit.id}` }, icon("search"), "More like this");
  similar.addEventListener("click", () => searchSimilar(hit.id));
  return h("div", { class: "result-item" }, resultCard(hit, position, envelope), similar);
}

function resultCard(hit, position, envelope) {
  const meta = hit.metadata || {};
  const title = meta.title || hit.id;
  const card = h("button", {
    class: "result-card", type: "button", "data-testid": "result-card", "data-product-id": hit.id,
    "aria-label": `${title}, score ${fmtScore(hit.similarity_score)}. Open Match Analysis`,
  },
  productImage(hit.matched_image?.url || meta.image_url, "", ""),
  h("div", { class: "rc-body" },
    h("div", { class: "rc-title", title }, title),
    h("div", { class: "rc-meta" }, h("span", {}, meta.price !== undefined ? fmtPrice(meta.price, meta.currency) : meta.category || "—"),
      h("span", { class: "score-pill", "data-testid": "result-score" }, fmtScore(hit.similarity_score))),
    h("div", { class: "score-bar", "aria-hidden": "true" }, h("div", { style: { width: `${Math.max(0, Math.min(1, hit.similarity_score)) * 100}%` } })),
    h("div", { class: "faint small" }, `#${position + 1} · ${hit.id}`),
    hit.matched_image?.position ? h("div", { class: "faint small", "data-testid": "result-matched-image" }, `matched image #${hit.matched_image.position + 1}`) : null,
    envelope.group_by ? h("div", { class: "faint small", "data-testid": "result-group" }, `${envelope.group_by}: ${hit.group ?? "none"}`) : null));
  card.addEventListener("click", () => openMatchAnalysis(hit, envelope, position));
  return card;
}
