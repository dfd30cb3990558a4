// Import: upload a CSV or JSONL file, follow its jobs with a progress bar, and see every rejected row and failure.
import { describeError, get, postForm, postJson } from "../api.js";
import { emptyState, fmtDate, fmtInt, h, icon, replace, spinner, toast } from "../dom.js";

const POLL_MS = 800;
const TEMPLATE = "id,image_url,title,category,brand,price,currency,in_stock,url,attributes.colour,attributes.material\n"
  + "sku-1,https://cdn.example.com/red-sneaker.jpg,Red sneaker,shoes,Acme,89.00,EUR,true,https://shop.example.com/sku-1,red,leather\n";

export async function render(root) {
  const state = { timer: null, stopped: false };
  const fileInput = h("input", { class: "sr-only", type: "file", id: "import-file", accept: ".csv,.jsonl,.ndjson,.tsv,.txt,.xml,text/csv,application/x-ndjson,text/tab-separated-values,application/xml,text/xml", "data-testid": "import-file" });
  const fileName = h("div", { class: "file-name", "aria-live": "polite" });
  const resend = h("input", { type: "checkbox", id: "import-resend" });
  const submit = h("button", { class: "btn btn-primary", type: "submit", disabled: true, "data-testid": "import-submit" }, icon("upload"), "Import");
  const formError = h("p", { class: "form-error", role: "alert" });
  const dropzone = h("div", { class: "dropzone" },
    h("p", {}, h("strong", {}, "Drop a .csv or .jsonl file — or a Google Merchant Center (.xml, .tsv) or Shopify (.csv) feed — here"), " or ",
      h("label", { for: "import-file", class: "btn btn-sm", tabindex: "0", role: "button", onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); fileInput.click(); } } }, "Choose a file")),
    h("p", { class: "faint small", style: { marginTop: "6px" } }, "Up to 50 MB here; larger catalogues with ", h("code", {}, "trooply import FILE"), "."),
    fileInput, fileName);
  const result = h("section", { class: "card", hidden: true, "aria-labelledby": "import-result-title", "data-testid": "import-result" });
  const jobsBody = h("div");

  const template = URL.createObjectURL(new Blob([TEMPLATE], { type: "text/csv" }));
  const form = h("form", { class: "card", "aria-labelledby": "import-title" },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "import-title" }, "Upload products"), h("p", {}, "Rows are checked one by one, exactly like POST /v1/products; valid rows go in, the others are listed with their line.")),
      h("a", { class: "btn btn-sm", href: template, download: "trooply-products.csv" }, "CSV template")),
    h("div", { class: "card-body stack" }, dropzone,
      h("label", { class: "check", for: "import-resend" }, resend, "Send unchanged products again (by default a re-run skips products stored exactly as in the file)"),
      formError,
      h("div", { class: "row" }, submit)));

  replace(root,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Import"), h("p", {}, "Add or update products from a file. Re-running the same file resumes: unchanged products are skipped."))),
    h("div", { class: "grid-2" }, form, formatHelp()),
    result,
    h("section", { class: "card", "aria-labelledby": "jobs-title" },
      h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "jobs-title" }, "Recent ingest jobs"), h("p", {}, "Imports, API batches and retries"))),
      jobsBody));

  const choose = (file) => {
    if (!file) return;
    const dt = new DataTransfer();
    dt.items.add(file);
    fileInput.files = dt.files;
    fileName.textContent = `${file.name} · ${fmtInt(file.size)} bytes`;
    submit.disabled = false;
    formError.textContent = "";
  };
  fileInput.addEventListener("change", () => choose(fileInput.files[0]));
  dropzone.addEventListener("dragover", (event) => { event.preventDefault(); dropzone.classList.add("over"); });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    submit.disabled = true;
    replace(submit, spinner("Uploading"), " Uploading…");
    formError.textContent = "";
    clearTimeout(state.timer);
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("skip_unchanged", resend.checked ? "false" : "true");
    try {
      const report = await postForm("/v1/imports", body);
      showResult(result, report, file.name, state, () => loadJobs(jobsBody));
      loadJobs(jobsBody);
    } catch (error) {
      formError.textContent = describeError(error);
    } finally {
      submit.disabled = false;
      replace(submit, icon("upload"), "Import");
    }
  });

  await loadJobs(jobsBody);
  return () => {
    state.stopped = true;
    clearTimeout(state.timer);
    URL.revokeObjectURL(template);
  };
}

function formatHelp() {
  const columns = [
    ["id", "required · your product id"], ["image_url", "required · http(s) image"], ["title, description", "text"],
    ["category, brand", "text · filterable"], ["price", "number"], ["currency", "3-letter code"], ["in_stock", "true / false"],
    ["url", "product page"], ["popularity", "number ≥ 0 · optional prior"], ["attributes.NAME", "custom, filterable (attributes.colour)"],
  ];
  return h("section", { class: "card", "aria-labelledby": "format-title" },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "format-title" }, "File format"), h("p", {}, "CSV with a header row, or JSONL with one product object per line"))),
    h("table", { class: "table" }, h("tbody", {}, columns.map(([name, what]) => h("tr", {}, h("td", {}, h("code", {}, name)), h("td", { class: "muted" }, what))))));
}

function showResult(card, report, name, state, onDone) {
  card.hidden = false;
  const progressDone = h("div", { class: "done", style: { width: "0%" } });
  const progressFailed = h("div", { class: "failed", style: { width: "0%" } });
  const bar = h("div", {
    class: "progress", role: "progressbar", "aria-label": "Import progress", "aria-valuemin": "0",
    "aria-valuemax": String(report.accepted), "aria-valuenow": "0", "data-testid": "import-progress", "data-state": report.jobs.length ? "running" : "completed",
  }, progressDone, progressFailed);
  const progressText = h("p", { class: "muted small", "data-testid": "import-progress-text", "aria-live": "polite" });
  const failedBox = h("div");
  const kpi = (label, value, testid) => h("div", { class: "kpi" }, h("b", { "data-testid": testid }, fmtInt(value)), h("span", {}, label));

  replace(card,
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "import-result-title" }, `Import of ${name}`), h("p", {}, `${fmtInt(report.rows)} rows read · ${report.jobs.length} job${report.jobs.length === 1 ? "" : "s"}`))),
    h("div", { class: "card-body stack" },
      h("div", { class: "kpis" }, kpi("rows", report.rows, "import-rows"), kpi("queued", report.accepted, "import-accepted"),
        kpi("unchanged (skipped)", report.unchanged, "import-unchanged"), kpi("rejected rows", report.rejected.length, "import-rejected-count")),
      h("div", {}, bar, progressText),
      report.rejected.length ? rejectedTable(report.rejected) : null,
      failedBox));

  const jobs = new Map(report.jobs.map((id) => [id, null]));
  const update = () => {
    const totals = { indexed: 0, failed: 0 };
    const errors = [];
    for (const job of jobs.values()) {
      if (!job) continue;
      totals.indexed += job.counts.indexed || 0;
      totals.failed += job.counts.failed || 0;
      errors.push(...(job.errors || []));
    }
    const processed = totals.indexed + totals.failed;
    const total = Math.max(report.accepted, 1);
    progressDone.style.width = `${(totals.indexed / total) * 100}%`;
    progressFailed.style.width = `${(totals.failed / total) * 100}%`;
    bar.setAttribute("aria-valuenow", String(processed));
    const finished = [...jobs.values()].every((job) => job && job.status === "completed");
    bar.dataset.state = finished ? "completed" : "running";
    progressText.textContent = report.accepted
      ? `${fmtInt(processed)} of ${fmtInt(report.accepted)} processed · ${fmtInt(totals.indexed)} indexed · ${fmtInt(totals.failed)} failed${finished ? " · done" : ""}`
      : "Nothing to index: every valid row was unchanged.";
    if (finished && errors.length) replace(failedBox, failedTable(errors));
    return finished;
  };

  const poll = async () => {
    if (state.stopped) return;
    try {
      for (const [id, job] of jobs) {
        if (job && job.status === "completed") continue;
        const current = await get(`/v1/jobs/${encodeURIComponent(id)}`);
        jobs.set(id, current);
        if (current.status !== "completed") break; // jobs run in order: the later ones have not started
      }
    } catch (error) {
      toast(describeError(error), "error");
    }
    if (update()) {
      onDone();
      return;
    }
    state.timer = setTimeout(poll, POLL_MS);
  };
  if (report.jobs.length) poll();
  else update();
}

function rejectedTable(rows) {
  return h("div", { "data-testid": "import-rejected" },
    h("h3", {}, `Rejected rows (${fmtInt(rows.length)})`),
    h("div", { class: "table-wrap", style: { marginTop: "8px", maxHeight: "320px", overflowY: "auto", border: "1px solid var(--border)", borderRadius: "8px" } },
      h("table", { class: "table" },
        h("thead", {}, h("tr", {}, h("th", { class: "num" }, "Line"), h("th", {}, "Product"), h("th", {}, "Code"), h("th", {}, "Problem"))),
        h("tbody", {}, rows.map((row) => h("tr", { "data-line": String(row.line) },
          h("td", { class: "num" }, String(row.line)), h("td", {}, row.product_id ? h("code", {}, row.product_id) : h("span", { class: "faint" }, "—")),
          h("td", {}, h("code", {}, row.code)), h("td", {}, row.message)))))));
}

function failedTable(errors) {
  const retry = h("button", { class: "btn btn-sm", type: "button" }, icon("refresh"), "Retry these");
  retry.addEventListener("click", async () => {
    retry.disabled = true;
    try {
      const answer = await postJson("/v1/products/retry", { ids: errors.slice(0, 1000).map((e) => e.product_id) });
      toast(`${fmtInt(answer.requeued)} products queued again — follow them in the Catalogue`);
    } catch (error) {
      toast(describeError(error), "error");
      retry.disabled = false;
    }
  });
  return h("div", { "data-testid": "import-failed" },
    h("div", { class: "row" }, h("h3", {}, `Failed products (${fmtInt(errors.length)})`), h("span", { class: "spacer" }), retry),
    h("div", { class: "table-wrap", style: { marginTop: "8px", maxHeight: "320px", overflowY: "auto", border: "1px solid var(--border)", borderRadius: "8px" } },
      h("table", { class: "table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Product"), h("th", {}, "Code"), h("th", {}, "Problem"))),
        h("tbody", {}, errors.map((error) => h("tr", {},
          h("td", {}, h("a", { href: `#/products/${encodeURIComponent(error.product_id)}` }, error.product_id)),
          h("td", {}, h("code", {}, error.code || "unknown")), h("td", {}, error.message || "")))))));
}

async function loadJobs(box) {
  let jobs;
  try {
    ({ jobs } = await get("/v1/jobs", { limit: 10 }));
  } catch (error) {
    replace(box, emptyState("Jobs could not be loaded", describeError(error)));
    return;
  }
  if (!jobs.length) {
    replace(box, emptyState("No jobs yet", "Each import or API batch becomes a job."));
    return;
  }
  replace(box, h("div", { class: "table-wrap" }, h("table", { class: "table", "data-testid": "jobs-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "Started"), h("th", {}, "Status"), h("th", { class: "num" }, "Products"),
      h("th", { class: "num" }, "Indexed"), h("th", { class: "num" }, "Failed"), h("th", { class: "num" }, "Pending"))),
    h("tbody", {}, jobs.map((job) => h("tr", {},
      h("td", {}, h("code", {}, job.job_id)), h("td", { class: "nowrap" }, fmtDate(job.created_at)),
      h("td", {}, h("span", { class: `badge ${job.status === "completed" ? "badge-indexed" : "badge-pending"}` }, job.status)),
      h("td", { class: "num" }, fmtInt(job.total)), h("td", { class: "num" }, fmtInt(job.counts.indexed)),
      h("td", { class: "num" }, fmtInt(job.counts.failed)), h("td", { class: "num" }, fmtInt(job.counts.pending))))))));
}
