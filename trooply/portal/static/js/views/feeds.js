// Catalogue feeds: add the feed a shop already publishes (Google Merchant Center, Shopify, CSV, JSONL), sync it
// now or on a schedule, and read each sync's report: its counts and the items it could not map.
import { del, describeError, get, postJson } from "../api.js";
import { confirmDialog } from "../dialog.js";
import { emptyState, field, fmtDate, h, icon, replace, spinner, toast } from "../dom.js";

const FORMATS = [
  ["auto", "Detect from the feed"], ["google_xml", "Google Merchant Center XML"], ["google_tsv", "Google Merchant Center TSV"],
  ["shopify_csv", "Shopify product CSV"], ["csv", "Trooply CSV"], ["jsonl", "Trooply JSONL"],
];
const SCHEDULES = [["daily", "Daily"], ["hourly", "Hourly"], ["manual", "Manual only"]];
const COUNTS = ["added", "updated", "unchanged", "deleted", "rejected", "failed"];
const POLL_MS = 2000;

export async function render(root) {
  const listBody = h("div", { "data-testid": "feeds-list" });
  const url = h("input", { class: "input", type: "url", required: true, maxlength: "2048", placeholder: "https://shop.example.com/feed.xml", "data-testid": "feed-url" });
  const format = h("select", { class: "input", "data-testid": "feed-format" }, FORMATS.map(([value, label]) => h("option", { value }, label)));
  const schedule = h("select", { class: "input", "data-testid": "feed-schedule" }, SCHEDULES.map(([value, label]) => h("option", { value }, label)));
  const deleteMissing = h("input", { type: "checkbox", id: "feed-delete-missing", "data-testid": "feed-delete-missing" });
  const formError = h("p", { class: "form-error", role: "alert", "data-testid": "feed-error" });
  const add = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "feed-add" }, "Add feed");
  const form = h("form", { class: "card", "aria-labelledby": "new-feed-title", novalidate: true },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "new-feed-title" }, "Add a feed"),
      h("p", {}, "The feed you already publish for Google Shopping, or your Shopify product export. It syncs at once, then on its schedule."))),
    h("div", { class: "card-body stack" },
      field("Feed URL", url, "Fetched like product images: public http(s) addresses only"),
      h("div", { class: "grid-2" }, field("Format", format), field("Schedule", schedule)),
      h("div", { class: "row" }, deleteMissing, h("label", { for: "feed-delete-missing" }, "Delete products that leave the feed")),
      formError, h("div", { class: "row" }, add)));

  replace(root,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Feeds"),
      h("p", {}, "Keep the catalogue in step with the feed you publish: new products are added, changed ones updated (prices and stock without re-encoding), and — if you ask — the ones that left are deleted."))),
    form,
    h("section", { class: "card", "aria-labelledby": "feeds-title" },
      h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "feeds-title" }, "Your feeds"), h("p", {}, "Each feed with its latest syncs, newest first."))),
      listBody));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    if (!url.value.trim()) {
      formError.textContent = "Enter the feed's URL.";
      url.focus();
      return;
    }
    add.disabled = true;
    try {
      await postJson("/v1/feeds", { url: url.value.trim(), format: format.value, schedule: schedule.value, delete_missing: deleteMissing.checked });
      toast("Feed added: its first sync has started");
      url.value = "";
      await load();
    } catch (error) {
      formError.textContent = describeError(error);
    } finally {
      add.disabled = false;
    }
  });

  let timer = null;
  async function load() {
    const { feeds } = await get("/v1/feeds");
    const detailed = await Promise.all(feeds.map((feed) => get(`/v1/feeds/${encodeURIComponent(feed.id)}`)));
    if (!detailed.length) replace(listBody, emptyState("No feeds yet", "Add your Merchant Center or Shopify feed above."));
    else replace(listBody, detailed.map((feed) => feedCard(feed, load)));
    clearTimeout(timer);
    if (detailed.some((feed) => feed.syncing)) timer = setTimeout(() => load().catch(() => {}), POLL_MS);
  }

  replace(listBody, h("div", { class: "empty" }, spinner()));
  await load();
  return () => clearTimeout(timer);
}

function feedCard(feed, reload) {
  const sync = h("button", { class: "btn btn-sm", type: "button", "data-testid": "feed-sync", disabled: feed.syncing }, icon("refresh"), feed.syncing ? "Syncing…" : "Sync now");
  sync.addEventListener("click", async () => {
    sync.disabled = true;
    try {
      await postJson(`/v1/feeds/${encodeURIComponent(feed.id)}/sync`);
      toast("Sync started");
      await reload();
    } catch (error) {
      toast(describeError(error), "error");
      sync.disabled = false;
    }
  });
  const remove = h("button", { class: "btn btn-sm btn-danger", type: "button", "data-testid": "feed-delete" }, "Delete");
  remove.addEventListener("click", async () => {
    const sure = await confirmDialog({ title: "Delete this feed?", message: "It stops syncing; the products it brought stay in the catalogue.", confirmLabel: "Delete feed", danger: true });
    if (!sure) return;
    try {
      await del(`/v1/feeds/${encodeURIComponent(feed.id)}`);
      toast("Feed deleted");
      await reload();
    } catch (error) {
      toast(describeError(error), "error");
    }
  });
  const latest = feed.syncs[0];
  return h("article", { class: "card-body stack", "data-testid": "feed-card", "data-feed-id": feed.id },
    h("div", { class: "row" },
      h("div", { style: { flex: "1", minWidth: "0" } }, h("div", { class: "mono", style: { overflowWrap: "anywhere" } }, feed.url),
        h("div", { class: "faint small" }, `${formatLabel(feed.format)} · ${feed.schedule}${feed.delete_missing ? " · deletes missing products" : ""}`,
          feed.next_sync_at ? ` · next sync ${fmtDate(feed.next_sync_at)}` : "")),
      sync, remove),
    feed.syncs.length ? syncTable(feed.syncs) : emptyState("No sync yet"),
    latest && latest.rejected.length ? rejectedTable(latest) : null);
}

function syncTable(syncs) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table", "data-testid": "feed-syncs" },
    h("thead", {}, h("tr", {}, h("th", {}, "Sync"), h("th", {}, "Status"), COUNTS.map((name) => h("th", { class: "num" }, name)), h("th", { class: "num" }, "Bytes"), h("th", { class: "num" }, "Time"))),
    h("tbody", {}, syncs.map((sync) => h("tr", { "data-testid": "feed-sync-row" },
      h("td", {}, h("div", {}, fmtDate(sync.created_at)), h("div", { class: "faint small" }, sync.trigger)),
      h("td", {}, statusOf(sync), sync.error ? h("div", { class: "small", style: { color: "var(--red)" } }, `${sync.error.message} (${sync.error.code})`) : null,
        sync.note ? h("div", { class: "faint small" }, sync.note) : null,
        Object.keys(sync.failed_by_code).length ? h("div", { class: "faint small" }, Object.entries(sync.failed_by_code).map(([code, n]) => `${code} ${n}`).join(", ")) : null),
      COUNTS.map((name) => h("td", { class: "num", "data-count": name }, String(sync.counts[name] || 0))),
      h("td", { class: "num" }, sync.bytes.toLocaleString("en")),
      h("td", { class: "num" }, sync.duration_s === null ? "—" : `${sync.duration_s.toFixed(1)} s`))))));
}

function rejectedTable(sync) {
  return h("details", { "data-testid": "feed-rejected" },
    h("summary", {}, `${sync.counts.rejected} rejected item${sync.counts.rejected === 1 ? "" : "s"} in the latest sync`),
    h("div", { class: "table-wrap" }, h("table", { class: "table" },
      h("thead", {}, h("tr", {}, h("th", { class: "num" }, "Line / item"), h("th", {}, "Product"), h("th", {}, "Field"), h("th", {}, "Problem"))),
      h("tbody", {}, sync.rejected.map((row) => h("tr", {},
        h("td", { class: "num" }, String(row.line)), h("td", { class: "mono" }, row.product_id || "—"),
        h("td", { class: "mono" }, row.field || "—"), h("td", {}, `${row.message} (${row.code})`)))))));
}

function statusOf(sync) {
  const kind = { completed: "indexed", failed: "failed", pending: "pending", running: "pending" }[sync.status] || "pending";
  return h("span", { class: `badge badge-${kind}`, "data-testid": "feed-sync-status" }, sync.not_modified ? "not modified" : sync.status);
}

function formatLabel(format) {
  return (FORMATS.find(([value]) => value === format) || [format, format])[1];
}
