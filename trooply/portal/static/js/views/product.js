// One product: its image, metadata, status, family and the colour the ranking sees in its image.
import { describeError, get, postJson, productPath } from "../api.js";
import { fmtDate, fmtPrice, h, icon, productImage, replace, statusBadge, toast } from "../dom.js";

export async function render(root, { args, navigate }) {
  const id = args[0];
  const [product, signals] = await Promise.all([get(productPath(id)), get(`${productPath(id)}/signals`)]);
  const meta = product.metadata;

  const actions = h("div", { class: "row" },
    h("a", { class: "btn", href: "#/catalog" }, icon("back"), "Catalogue"),
    product.status === "indexed"
      ? [h("a", { class: "btn", href: `#/search/similar/${encodeURIComponent(product.id)}`, "data-testid": "product-similar" }, icon("search"), "More like this"),
        h("a", { class: "btn btn-primary", href: `#/search/url/${encodeURIComponent(product.image_url)}`, "data-testid": "search-with-image" }, icon("search"), "Search with this image")]
      : null);
  if (product.status === "failed") {
    const retry = h("button", { class: "btn btn-primary", type: "button", "data-testid": "retry-product" }, icon("refresh"), "Retry");
    retry.addEventListener("click", async () => {
      retry.disabled = true;
      try {
        await postJson("/v1/products/retry", { ids: [product.id] });
        toast("Queued again");
        await render(root, { args, navigate });
      } catch (error) {
        toast(describeError(error), "error");
        retry.disabled = false;
      }
    });
    actions.append(retry);
  }

  const rows = [
    ["Product id", h("code", {}, product.id)],
    ["Status", h("span", { class: "row" }, statusBadge(product.status), product.error ? h("code", {}, product.error.code) : null)],
    product.error ? ["Error", product.error.message] : null,
    ["Category", meta.category],
    ["Brand", meta.brand],
    ["Price", meta.price !== undefined ? fmtPrice(meta.price, meta.currency) : null],
    ["In stock", meta.in_stock === undefined ? null : meta.in_stock ? "Yes" : "No"],
    ["Product page", meta.url ? h("a", { href: meta.url, target: "_blank", rel: "noopener noreferrer" }, meta.url) : null],
    ["Image URL", h("a", { href: product.image_url, target: "_blank", rel: "noopener noreferrer", class: "mono small" }, product.image_url)],
    ["Description", meta.description],
    ["Attributes", meta.attributes && Object.keys(meta.attributes).length
      ? h("div", { class: "chips" }, Object.entries(meta.attributes).map(([k, v]) => h("span", { class: "chip" }, h("span", { class: "muted" }, k), String(v))))
      : null],
    ["Popularity prior", meta.popularity],
    ["Created", fmtDate(product.created_at)],
    ["Updated", fmtDate(product.updated_at)],
    ["Indexed", fmtDate(product.indexed_at)],
  ].filter((row) => row && row[1] !== undefined && row[1] !== null && row[1] !== "");

  replace(root,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { "data-testid": "product-title" }, meta.title || product.id), h("p", {}, meta.brand ? `${meta.brand} · ${product.id}` : product.id)),
      actions),
    h("div", { class: "detail", "data-testid": "product-detail" },
      h("div", {}, productImage(product.image_url, meta.title || product.id, "detail-image"), imageList(product)),
      h("div", { class: "stack" },
        h("section", { class: "card", "aria-labelledby": "meta-title" },
          h("div", { class: "card-head" }, h("h2", { id: "meta-title" }, "Details")),
          h("div", { class: "card-body" }, h("dl", { class: "meta" }, rows.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)])))),
        rankingCard(signals))));
}

// Every image of the product with its status: indexed with the product, failed (its code), or pending.
function imageList(product) {
  const images = product.images?.length ? product.images : [product.image_url];
  const failed = new Map((product.image_errors ?? []).map((e) => [e.url, e.code]));
  return h("ol", { class: "image-list", "data-testid": "product-images", "aria-label": "Images" },
    images.map((url, position) => {
      const code = failed.get(url);
      const status = code ? "failed" : product.status === "indexed" ? "indexed" : product.status;
      return h("li", { class: "image-item", "data-testid": "product-image", "data-status": status },
        productImage(url, position === 0 ? "Main image" : `Image ${position + 1}`, "image-thumb"),
        h("div", { class: "small" }, position === 0 ? "Main" : `#${position + 1}`, " · ",
          h("span", { "data-testid": "product-image-status" }, code ? `failed: ${code}` : status)),
        h("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "mono small" }, url));
    }));
}

function rankingCard(signals) {
  const family = signals.family
    ? h("div", {},
      h("div", { class: "row" }, h("span", { class: "badge badge-accent plain", "data-testid": "product-family" }, signals.family),
        h("span", { class: "muted small" }, `confidence ${(signals.family_confidence ?? 0).toFixed(2)}`)),
      h("div", { class: "meter", style: { marginTop: "8px" } }, h("div", { style: { width: `${Math.round((signals.family_confidence ?? 0) * 100)}%` } })))
    : h("p", { class: "muted" }, "Not classified yet: the family is set when the product is indexed.");
  const image = signals.image;
  const body = [h("h3", {}, "Family (scoring profile)"), family];
  if (image) {
    const colours = image.colour_swatch ?? [];
    body.push(
      h("h3", { style: { marginTop: "18px" } }, "Stored colour"),
      h("div", { class: "swatches", "data-testid": "colour-swatch" }, colours.length
        ? colours.map((c) => h("div", { class: "swatch", title: `${c.name} (${c.family}): ${Math.round(c.share * 100)}% of the product` },
          h("i", { style: { background: c.hex } }),
          h("div", {}, h("b", {}, c.name), h("small", {}, `${c.family} · ${Math.round(c.share * 100)}%`))))
        : h("span", { class: "muted" }, image.colour_stale ? "Stored before colour names: recomputed by trooply migrate" : "No colour found")),
      h("div", { class: "histogram", role: "img", "aria-label": "The product's colours by share", "data-testid": "colour-shares" },
        colours.map((c) => h("div", { style: { height: `${Math.round(c.share * 100)}%`, background: c.hex }, title: c.name }))),
      h("p", { class: "faint small", style: { marginTop: "6px" } }, "The main colours of the object (background, shade and skin discounted), named as people name them. The colour signal compares them with the query's colour words or picture."),
      h("h3", { style: { marginTop: "18px" } }, "Image"),
      h("p", {}, `${image.width} × ${image.height} px · aspect ratio ${image.aspect_ratio}`));
  } else {
    body.push(h("p", { class: "muted", style: { marginTop: "14px" } }, "Image signals appear once the product is indexed."));
  }
  return h("section", { class: "card", "aria-labelledby": "ranking-title" },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "ranking-title" }, "What ranking sees"), h("p", {}, "Signals stored with the vector at ingest"))),
    h("div", { class: "card-body" }, body));
}
