// Catalogue: products by status, failures by code, and a paged product list with retry for failed ones.
import { describeError, get, postJson } from "../api.js";
import { emptyState, fmtInt, fmtPrice, h, icon, productImage, replace, spinner, statusBadge, toast } from "../dom.js";

const PAGE_SIZE = 25;
const REFRESH_MS = 3000;
const STATUSES = [["", "All"], ["indexed", "Indexed"], ["pending", "Pending"], ["failed", "Failed"]];

export async function render(root, { navigate }) {
  const stats = await get("/v1/catalog/stats");
  const view = { status: "", cursors: [null], page: 0, timer: null };

  const countsBox = h("section", { class: "stats", "data-testid": "catalog-counts", "aria-label": "Products by status" });
  const failuresBody = h("div", { class: "card-body" });
  const listBody = h("div");
  const pager = h("div", { class: "pager" });
  const retryAll = h("button", { class: "btn btn-sm", type: "button", "data-testid": "retry-all" }, icon("refresh"), "Retry all failed");
  const statusPicker = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Status" },
    STATUSES.map(([value, label]) => h("label", {},
      h("input", { type: "radio", name: "status", value, checked: value === view.status, onchange: () => { view.status = value; view.cursors = [null]; view.page = 0; loadPage(); } }),
      h("span", {}, label))));

  replace(root,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "Catalogue"), h("p", {}, "Every product you sent, where it stands in the index, and what went wrong for those that failed.")),
      h("div", { class: "row" },
        h("a", { class: "btn", href: "#/import" }, icon("import"), "Import products"),
        h("button", { class: "btn", type: "button", onclick: () => refresh(true) }, icon("refresh"), "Refresh"))),
    countsBox,
    h("div", { class: "grid-2" },
      h("section", { class: "card", "aria-labelledby": "failures-title" },
        h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "failures-title" }, "Failures by code"), h("p", {}, "Why images could not be indexed")), retryAll),
        failuresBody),
      h("section", { class: "card", "aria-labelledby": "categories-title" },
        h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "categories-title" }, "Largest categories"), h("p", {}, "Products per merchant category"))),
        categoriesCard(stats))),
    h("section", { class: "card", "aria-labelledby": "products-title" },
      h("div", { class: "card-head" }, h("h2", { id: "products-title" }, "Products"), statusPicker),
      listBody, pager));

  retryAll.addEventListener("click", async () => {
    retryAll.disabled = true;
    try {
      const answer = await postJson("/v1/products/retry", {});
      toast(answer.requeued ? `${fmtInt(answer.requeued)} failed products queued again` : "No failed products to retry");
      await refresh(true);
    } catch (error) {
      toast(describeError(error), "error");
    } finally {
      retryAll.disabled = false;
    }
  });

  function showStats(current) {
    const { counts, total, allowance } = current;
    const card = (key, label, value, foot) => h("div", { class: "card stat" },
      h("div", { class: "stat-label" }, h("span", { class: `dot dot-${key}` }), label),
      h("div", { class: "stat-value", "data-testid": `count-${key}` }, fmtInt(value)),
      h("div", { class: "stat-foot" }, foot));
    const share = (n) => (total ? `${Math.round((n / total) * 100)}% of the catalogue` : "No products yet");
    replace(countsBox,
      card("indexed", "Indexed", counts.indexed, share(counts.indexed)),
      card("pending", "Pending", counts.pending, counts.pending ? "Being fetched and encoded" : "Nothing waiting"),
      card("failed", "Failed", counts.failed, counts.failed ? "See the codes below" : "No failures"),
      card("total", "Total", total, allowance === null ? "Unlimited plan" : `of ${fmtInt(allowance)} the plan holds`));
    retryAll.disabled = !counts.failed;
    const codes = Object.entries(current.failures).sort((a, b) => b[1] - a[1]);
    replace(failuresBody, codes.length
      ? h("table", { class: "table" }, h("thead", {}, h("tr", {}, h("th", {}, "Code"), h("th", { class: "num" }, "Products"))),
        h("tbody", {}, codes.map(([code, n]) => h("tr", {}, h("td", {}, h("code", {}, code)), h("td", { class: "num" }, fmtInt(n))))))
      : emptyState("No failures", "Every product that finished was indexed."));
  }

  async function loadPage() {
    replace(listBody, h("div", { class: "empty" }, spinner()));
    let page;
    try {
      page = await get("/v1/products", { status: view.status, limit: PAGE_SIZE, after: view.cursors[view.page] });
    } catch (error) {
      replace(listBody, emptyState("Products could not be loaded", describeError(error)));
      return;
    }
    view.next = page.next_after;
    if (!page.products.length) {
      replace(listBody, emptyState(view.status ? `No ${view.status} products` : "No products yet", view.status ? "" : "Import a CSV or JSONL file to get started."));
    } else {
      replace(listBody, h("div", { class: "table-wrap" }, productTable(page.products, navigate, async (ids, button) => {
        button.disabled = true;
        try {
          const answer = await postJson("/v1/products/retry", { ids });
          toast(answer.requeued ? `Queued ${ids.join(", ")} again` : "Nothing to retry");
          await refresh(true);
        } catch (error) {
          toast(describeError(error), "error");
          button.disabled = false;
        }
      })));
    }
    const prev = h("button", { class: "btn btn-sm", type: "button", disabled: view.page === 0, onclick: () => { view.page -= 1; loadPage(); } }, "Previous");
    const next = h("button", { class: "btn btn-sm", type: "button", disabled: !view.next, onclick: () => { view.cursors[view.page + 1] = view.next; view.page += 1; loadPage(); } }, "Next");
    replace(pager, h("span", {}, `Page ${view.page + 1}`), h("div", { class: "row" }, prev, next));
  }

  async function refresh(withList = false) {
    try {
      const current = await get("/v1/catalog/stats");
      showStats(current);
      if (withList) await loadPage();
      schedule(current);
    } catch (error) {
      toast(describeError(error), "error");
    }
  }

  // While products are pending the counts move: follow them.
  function schedule(current) {
    clearTimeout(view.timer);
    if (current.counts.pending) view.timer = setTimeout(() => refresh(view.status === "pending"), REFRESH_MS);
  }

  showStats(stats);
  schedule(stats);
  await loadPage();
  return () => clearTimeout(view.timer);
}

function categoriesCard(stats) {
  if (!stats.categories.length) return h("div", { class: "card-body" }, emptyState("No categories yet"));
  const top = stats.categories.slice(0, 8);
  const most = top[0].count;
  return h("div", { class: "card-body" }, h("div", { class: "stack" }, top.map(({ category, count }) => h("div", {},
    h("div", { class: "row small" }, h("span", {}, category), h("span", { class: "spacer" }), h("span", { class: "muted" }, fmtInt(count))),
    h("div", { class: "meter" }, h("div", { style: { width: `${(count / most) * 100}%` } }))))));
}

function productTable(products, navigate, retry) {
  return h("table", { class: "table", "data-testid": "product-table" },
    h("thead", {}, h("tr", {},
      h("th", {}, h("span", { class: "sr-only" }, "Image")), h("th", {}, "Product"), h("th", {}, "Category"),
      h("th", { class: "num" }, "Price"), h("th", {}, "Status"), h("th", {}, "Error"), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
    h("tbody", {}, products.map((p) => {
      const open = () => navigate(`products/${encodeURIComponent(p.id)}`);
      const link = h("a", { href: `#/products/${encodeURIComponent(p.id)}` }, p.metadata.title || p.id);
      const retryButton = p.status === "failed"
        ? h("button", { class: "btn btn-sm", type: "button", "data-testid": "retry-product", onclick: (event) => { event.stopPropagation(); retry([p.id], event.currentTarget); } }, "Retry")
        : null;
      return h("tr", { class: "clickable", "data-product-id": p.id, onclick: (event) => { if (!event.target.closest("a, button")) open(); } },
        h("td", {}, productImage(p.image_url, "")),
        h("td", {}, h("div", {}, link), h("div", { class: "faint small mono" }, p.id)),
        h("td", {}, p.metadata.category || h("span", { class: "faint" }, "—")),
        h("td", { class: "num" }, fmtPrice(p.metadata.price, p.metadata.currency)),
        h("td", {}, statusBadge(p.status)),
        h("td", {}, p.error ? h("div", {}, h("code", {}, p.error.code), h("div", { class: "faint small" }, p.error.message)) : h("span", { class: "faint" }, "—")),
        h("td", { class: "num" }, retryButton));
    })));
}
