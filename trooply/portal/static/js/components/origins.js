// The browser origins a tenant's publishable key is accepted from (CORS): one per line, saved as a whole list.
import { api, describeError } from "../api.js";
import { field, h, replace, toast } from "../dom.js";

export function originsCard(account, onSaved) {
  const text = h("textarea", {
    class: "input", rows: 4, spellcheck: "false", "data-testid": "allowed-origins",
    placeholder: ["https://shop.example.com", "https://m.shop.example.com"].join("\n"),
  });
  text.value = (account.allowed_origins || []).join("\n");
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "allowed-origins-error" });
  const save = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "save-origins" }, "Save origins");
  const form = h("form", { novalidate: true },
    field("Allowed origins", text, "Exact origins, one per line: scheme, host and port (no paths, no wildcards). Empty: no browser may use the publishable key."),
    error, save);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const origins = text.value.split(/\s+/).map((line) => line.trim()).filter(Boolean);
    save.disabled = true;
    replace(error, "");
    text.removeAttribute("aria-invalid");
    try {
      const saved = await api("PUT", "/v1/account/allowed-origins", { json: { allowed_origins: origins } });
      text.value = saved.allowed_origins.join("\n");
      toast(saved.allowed_origins.length ? "Allowed origins saved" : "Browser access turned off");
      if (onSaved) onSaved(saved.allowed_origins);
    } catch (failure) {
      text.setAttribute("aria-invalid", "true");
      replace(error, describeError(failure));
    } finally {
      save.disabled = false;
    }
  });
  return h("section", { class: "card", "aria-labelledby": "origins-title", style: { marginTop: "20px" } },
    h("div", { class: "card-head" }, h("div", {}, h("h2", { id: "origins-title" }, "Storefront origins"),
      h("p", {}, "Where the publishable key works in a shopper's browser (CORS). A key copied to another site is refused there."))),
    h("div", { class: "card-body" }, form));
}
