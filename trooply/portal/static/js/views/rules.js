// Merchandising rules: boost or bury the products a filter matches, in every profile or one.
import { del, describeError, get, postJson } from "../api.js";
import { filterBuilder, describeFilters } from "../components/filters.js";
import { confirmDialog } from "../dialog.js";
import { emptyState, field, fmtDate, h, replace, spinner, toast } from "../dom.js";

export async function render(root, { profiles }) {
  const listBody = h("div");
  const builder = filterBuilder();
  const name = h("input", { class: "input", type: "text", maxlength: "200", placeholder: "Push the new season", "data-testid": "rule-name" });
  const weightOut = h("output", { class: "mono", "data-testid": "rule-weight-value" }, "+0.50");
  const weight = h("input", { type: "range", min: "-1", max: "1", step: "0.05", value: "0.5", "data-testid": "rule-weight", "aria-describedby": "weight-scale" });
  weight.addEventListener("input", () => {
    const v = Number(weight.value);
    weightOut.textContent = `${v > 0 ? "+" : ""}${v.toFixed(2)}`;
  });
  const profile = h("select", { class: "input", "data-testid": "rule-profile" }, h("option", { value: "" }, "Every profile"), profiles.map((p) => h("option", { value: p.name }, p.name)));
  const formError = h("p", { class: "form-error", role: "alert", "data-testid": "rule-error" });
  const create = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "rule-create" }, "Create rule");
  const weightId = "rule-weight";
  weight.id = weightId;

  const form = h("form", { class: "card", "aria-labelledby": "new-rule-title" },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "new-rule-title" }, "New rule"), h("p", {}, "Products matching every condition get the rule's weight in the rules signal."))),
    h("div", { class: "card-body stack" },
      h("div", { class: "grid-3" }, field("Name", name),
        h("div", { class: "field" }, h("label", { for: weightId }, "Weight ", weightOut), weight,
          h("div", { class: "weight-scale", id: "weight-scale" }, h("span", {}, "−1 bury"), h("span", {}, "0"), h("span", {}, "boost +1"))),
        field("Profile", profile, "Apply in one profile's searches only, or in all")),
      h("div", {}, h("span", { class: "label" }, "Conditions"), h("div", { style: { marginTop: "8px" } }, builder.element)),
      formError,
      h("div", { class: "row" }, create)));

  replace(root,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Merchandising rules"), h("p", {}, "Boost the products you want seen, bury the ones you don't — applied at ranking time, no re-index."))),
    h("section", { class: "card", "aria-labelledby": "rules-title" },
      h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "rules-title" }, "Active rules"), h("p", {}, "The rules signal is 0.5 plus half the summed weights of the rules a product matches."))),
      listBody),
    form);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    let filters;
    try {
      filters = builder.value();
    } catch (error) {
      formError.textContent = error.message;
      return;
    }
    if (!Object.keys(filters).length) {
      formError.textContent = "Add at least one condition.";
      return;
    }
    const value = Number(weight.value);
    if (value === 0) {
      formError.textContent = "A weight of 0 does nothing: move the slider to boost or bury.";
      return;
    }
    create.disabled = true;
    try {
      const rule = await postJson("/v1/rules", { name: name.value.trim() || null, filters, weight: value, profile: profile.value || null });
      toast(`Rule “${rule.name || rule.id}” created`);
      name.value = "";
      builder.reset();
      await load();
    } catch (error) {
      formError.textContent = describeError(error);
    } finally {
      create.disabled = false;
    }
  });

  async function load() {
    replace(listBody, h("div", { class: "empty" }, spinner()));
    const { rules } = await get("/v1/rules");
    if (!rules.length) {
      replace(listBody, emptyState("No rules yet", "Create one on the right: e.g. boost attributes.season = fw26."));
      return;
    }
    replace(listBody, h("div", { class: "table-wrap" }, h("table", { class: "table", "data-testid": "rules-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Rule"), h("th", {}, "Conditions"), h("th", {}, "Weight"), h("th", {}, "Profile"), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
      h("tbody", {}, rules.map((rule) => ruleRow(rule, load))))));
  }

  await load();
}

function ruleRow(rule, reload) {
  const remove = h("button", { class: "btn btn-sm btn-danger", type: "button", "data-testid": "rule-delete", "aria-label": `Delete rule ${rule.name || rule.id}` }, "Delete");
  remove.addEventListener("click", async () => {
    const sure = await confirmDialog({ title: "Delete this rule?", message: `“${rule.name || rule.id}” stops applying to searches within seconds.`, confirmLabel: "Delete rule", danger: true });
    if (!sure) return;
    try {
      await del(`/v1/rules/${encodeURIComponent(rule.id)}`);
      toast("Rule deleted");
      await reload();
    } catch (error) {
      toast(describeError(error), "error");
    }
  });
  const w = rule.weight;
  const bar = h("div", { class: "weight-bar", "aria-hidden": "true" },
    h("div", { style: { left: w >= 0 ? "50%" : `${50 + w * 50}%`, width: `${Math.abs(w) * 50}%`, background: w >= 0 ? "var(--green)" : "var(--red)" } }));
  return h("tr", { "data-rule-id": rule.id, "data-testid": "rule-row" },
    h("td", {}, h("div", {}, h("b", {}, rule.name || "Untitled")), h("div", { class: "faint small" }, `${rule.id} · ${fmtDate(rule.created_at)}`)),
    h("td", {}, h("div", { class: "chips" }, describeFilters(rule.filters).map((text) => h("span", { class: "chip" }, text)))),
    h("td", {}, h("div", { class: "row", style: { flexWrap: "nowrap" } }, bar, h("span", { class: "mono small" }, `${w > 0 ? "+" : ""}${w.toFixed(2)}`))),
    h("td", {}, rule.profile ? h("span", { class: "badge badge-accent plain" }, rule.profile) : h("span", { class: "faint" }, "all")),
    h("td", { class: "num" }, remove));
}
