// API keys: which keys are active (prefixes only) and rotation, which shows the new keys once.
import { describeError, postJson, session } from "../api.js";
import { confirmDialog } from "../dialog.js";
import { fmtDate, h, icon, replace, toast } from "../dom.js";
import { originsCard } from "../components/origins.js";

const KINDS = {
  secret: ["Secret key", "Everything for this tenant: catalogue, rules, usage. Keep it on servers (and in this portal)."],
  publishable: ["Publishable key", "Search and feedback only: safe in your storefront's browser code."],
};

export async function render(root, { refreshAccount }) {
  const revealed = h("div", { "aria-live": "polite" });
  const tableBox = h("div");
  const rotate = h("button", { class: "btn btn-danger", type: "button", "data-testid": "rotate-keys" }, icon("refresh"), "Rotate keys");

  rotate.addEventListener("click", async () => {
    const sure = await confirmDialog({
      title: "Rotate both keys?",
      message: "The current secret and publishable keys stop working now — in your storefront and your integrations too. The new keys are shown once.",
      confirmLabel: "Rotate keys", danger: true,
    });
    if (!sure) return;
    rotate.disabled = true;
    try {
      const keys = await postJson("/v1/keys/rotate", {});
      session.signIn(keys.secret_key); // this session goes on with the new secret key
      showOnce(revealed, keys);
      await loadKeys();
    } catch (error) {
      toast(describeError(error), "error");
    } finally {
      rotate.disabled = false;
    }
  });

  async function loadKeys() {
    const account = await refreshAccount();
    replace(tableBox, h("table", { class: "table", "data-testid": "keys-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", {}, "Prefix"), h("th", {}, "Issued"))),
      h("tbody", {}, account.keys.map((key) => h("tr", {},
        h("td", {}, h("b", {}, (KINDS[key.kind] || [key.kind])[0]), h("div", { class: "faint small" }, (KINDS[key.kind] || ["", ""])[1])),
        h("td", {}, h("code", {}, `${key.prefix}…`)),
        h("td", { class: "nowrap" }, fmtDate(key.created_at)))))));
  }

  replace(root,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, "API keys"), h("p", {}, "Keys are stored only as hashes: a key is shown once, when it is issued.")),
      rotate),
    revealed,
    h("section", { class: "card", "aria-labelledby": "active-keys-title" },
      h("div", { class: "card-head" }, h("h2", { id: "active-keys-title" }, "Active keys")),
      tableBox),
    originsCard(await refreshAccount()));
  await loadKeys();
}

function showOnce(box, keys) {
  const row = (label, value, testid) => {
    const copy = h("button", { class: "btn btn-sm", type: "button" }, icon("copy"), "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(value);
        toast(`${label} copied`);
      } catch {
        toast("Copying is not allowed here: select the key and copy it by hand.", "error");
      }
    });
    return h("div", {}, h("div", { class: "small", style: { marginTop: "10px", fontWeight: "600" } }, label),
      h("div", { class: "key-row" }, h("code", { "data-testid": testid }, value), copy));
  };
  replace(box, h("div", { class: "keys-once", role: "alert", "data-testid": "new-keys", style: { marginBottom: "20px" } },
    h("b", {}, "Store these keys now: they cannot be shown again."),
    h("p", { class: "small muted" }, "This portal already uses the new secret key. Put the publishable key in your storefront."),
    row("Secret key", keys.secret_key, "new-secret-key"),
    row("Publishable key", keys.publishable_key, "new-publishable-key")));
}
