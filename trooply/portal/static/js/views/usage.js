// Usage: the plan, products held against its allowance, this month's metered detect and embed calls, and the
// account's default currency.
import { api, describeError, get } from "../api.js";
import { field, fmtInt, fmtPrice, h, replace, toast } from "../dom.js";

export async function render(root, { account, refreshAccount }) {
  const [usage, stats] = await Promise.all([get("/v1/usage"), get("/v1/catalog/stats")]);
  const calls = usage.counts.detect + usage.counts.embed;

  replace(root,
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Usage"), h("p", {}, `Your plan and what it allows. Metered calls reset at the start of each month (UTC).`))),
    h("div", { class: "grid-3", "data-testid": "usage" },
      h("section", { class: "card stat", "aria-labelledby": "plan-title" },
        h("div", { class: "stat-label", id: "plan-title" }, "Plan"),
        h("div", { class: "stat-value", style: { textTransform: "capitalize" }, "data-testid": "usage-plan" }, usage.plan),
        h("div", { class: "stat-foot" }, usage.plan === "free" ? "Upgrade to pro for an unlimited catalogue" : "Unlimited catalogue")),
      allowanceCard("products-title", "Products", stats.total, stats.allowance, "usage-products", "in the catalogue"),
      allowanceCard("calls-title", `Detect and embed calls · ${usage.period}`, calls, usage.allowance, "usage-calls", "this month")),
    h("section", { class: "card", "aria-labelledby": "metered-title" },
      h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "metered-title" }, "Metered calls this month"), h("p", {}, "Detection and item embeddings (and searches with detect) count; plain searches do not."))),
      h("table", { class: "table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Endpoint"), h("th", { class: "num" }, "Calls"))),
        h("tbody", {},
          h("tr", {}, h("td", {}, h("code", {}, "POST /v1/detect")), h("td", { class: "num", "data-testid": "usage-detect" }, fmtInt(usage.counts.detect))),
          h("tr", {}, h("td", {}, h("code", {}, "POST /v1/embed")), h("td", { class: "num", "data-testid": "usage-embed" }, fmtInt(usage.counts.embed))),
          h("tr", {}, h("td", {}, h("b", {}, "Remaining this month")), h("td", { class: "num" }, usage.remaining === null ? "unlimited" : fmtInt(usage.remaining)))))),
    currencyCard(account, refreshAccount));
}

function currencyCard(account, refreshAccount) {
  const input = h("input", { type: "text", maxlength: "3", placeholder: "EUR", value: account.default_currency || "", "data-testid": "default-currency", autocomplete: "off", style: { width: "90px", textTransform: "uppercase" } });
  const example = h("span", { class: "muted", "data-testid": "currency-example" }, fmtPrice(12.5));
  const form = h("form", { class: "row", "aria-label": "Default currency" },
    field("Default currency", input, "ISO 4217 code (EUR, USD, GBP…); empty: show such prices as plain numbers"),
    h("button", { class: "btn", type: "submit", "data-testid": "save-currency" }, "Save"), example);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = input.value.trim().toUpperCase() || null;
    try {
      await api("PATCH", "/v1/account", { json: { default_currency: code } });
      await refreshAccount();
      replace(example, fmtPrice(12.5));
      toast(code ? `Prices without a currency are shown in ${code}` : "Prices without a currency are shown as plain numbers");
    } catch (error) {
      toast(describeError(error), "error");
    }
  });
  return h("section", { class: "card", "aria-labelledby": "currency-title" },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "currency-title" }, "Prices"), h("p", {}, "Products sent without a currency are shown in this one, so every price reads the same way."))),
    h("div", { class: "card-body" }, form));
}

function allowanceCard(id, label, used, allowance, testid, where) {
  const share = allowance ? Math.min(1, used / allowance) : 0;
  const level = share >= 1 ? "full" : share >= 0.8 ? "warn" : "";
  return h("section", { class: "card stat", "aria-labelledby": id },
    h("div", { class: "stat-label", id }, label),
    h("div", { class: "stat-value", "data-testid": testid }, fmtInt(used), allowance === null ? null : h("span", { class: "muted", style: { fontSize: "15px", fontWeight: "500" } }, ` / ${fmtInt(allowance)}`)),
    allowance === null
      ? h("div", { class: "stat-foot" }, `Unlimited · ${where}`)
      : [h("div", { class: `meter ${level}`, style: { marginTop: "10px" }, role: "meter", "aria-valuemin": "0", "aria-valuemax": String(allowance), "aria-valuenow": String(used), "aria-label": label },
        h("div", { style: { width: `${share * 100}%` } })),
      h("div", { class: "stat-foot", style: { marginTop: "6px" } }, `${Math.round(share * 100)}% used ${where}`)]);
}
