// The portal's shell: sign-in, the navigation, and a hash router that renders one view at a time.
import { ApiError, api, describeError, get, onUnauthorized, session } from "./api.js";
import { h, icon, replace, setDefaultCurrency, spinner } from "./dom.js";
import * as analytics from "./views/analytics.js";
import * as catalog from "./views/catalog.js";
import * as feeds from "./views/feeds.js";
import * as importView from "./views/import.js";
import * as keys from "./views/keys.js";
import * as product from "./views/product.js";
import * as rules from "./views/rules.js";
import * as search from "./views/search.js";
import * as usage from "./views/usage.js";

const app = document.getElementById("app");

const NAV = [
  { path: "catalog", label: "Catalogue", icon: "catalog", view: catalog },
  { path: "import", label: "Import", icon: "import", view: importView },
  { path: "feeds", label: "Feeds", icon: "refresh", view: feeds },
  { path: "search", label: "Search playground", icon: "search", view: search },
  { path: "rules", label: "Rules", icon: "rules", view: rules },
  { path: "analytics", label: "Analytics", icon: "analytics", view: analytics },
  { path: "usage", label: "Usage", icon: "usage", view: usage },
  { path: "keys", label: "API keys", icon: "keys", view: keys },
];
const ROUTES = { ...Object.fromEntries(NAV.map((item) => [item.path, item])), products: { label: "Product", view: product, parent: "catalog" } };

const state = { account: null, profiles: [], cleanup: null, shell: null };

function parseHash() {
  const [path, ...rest] = window.location.hash.replace(/^#\/?/, "").split("/");
  return { path: path || "catalog", args: rest.map(decodeURIComponent) };
}

export function navigate(path) {
  window.location.hash = `#/${path}`;
}

// ---------- Sign in ----------

function renderSignIn(message) {
  const input = h("input", {
    class: "input", id: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true,
    placeholder: "sk_…", "data-testid": "api-key-input", "aria-describedby": "api-key-hint",
  });
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "sign-in-error" }, message || "");
  const button = h("button", { class: "btn btn-primary", type: "submit", "data-testid": "sign-in" }, "Sign in");
  const form = h("form", { novalidate: true },
    h("div", { class: "field" },
      h("label", { for: "api-key" }, "Secret key"),
      input,
      h("small", { class: "hint", id: "api-key-hint" }, "The tenant's secret key (sk_…). It stays in this tab only and is forgotten when you close it.")),
    error, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Enter your secret key.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    button.disabled = true;
    replace(button, spinner("Signing in"), " Signing in…");
    try {
      const account = await api("GET", "/v1/account", { key });
      session.signIn(key);
      state.account = account;
      await start();
    } catch (failure) {
      input.setAttribute("aria-invalid", "true");
      error.textContent = failure instanceof ApiError && failure.code === "insufficient_scope"
        ? "This is a publishable key (pk_…): the portal needs the secret key (sk_…)."
        : failure instanceof ApiError && failure.status === 401
          ? "This key is not valid, or it was revoked."
          : describeError(failure);
      button.disabled = false;
      replace(button, "Sign in");
      input.focus();
    }
  });
  replace(app, h("main", { class: "signin", id: "main" },
    h("div", { class: "card signin-card" },
      h("div", { class: "brand" }, h("span", { class: "brand-mark" }, icon("search")), h("span", {}, "Trooply", h("small", {}, "Merchant portal"))),
      h("h1", {}, "Sign in to your catalogue"),
      h("p", { class: "lead" }, "Manage products, try searches the way your shoppers will, and see why each result ranked where it did."),
      form,
      h("p", { class: "signin-note" }, "Lost your key? An operator can issue new ones with ", h("code", {}, "trooply keys rotate TENANT"), "."))));
  input.focus();
}

function signOut(message) {
  session.signOut();
  state.account = null;
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  state.shell = null;
  history.replaceState(null, "", window.location.pathname);
  renderSignIn(message);
}

onUnauthorized(() => signOut("Your session ended: the key was revoked or is no longer valid. Sign in again."));

// ---------- Shell ----------

function buildShell() {
  const links = NAV.map((item) => h("a", { href: `#/${item.path}`, "data-path": item.path }, icon(item.icon), item.label));
  const crumbs = h("div", { class: "crumbs" });
  const content = h("div", { class: "content", id: "content" });
  const shell = h("div", { class: "shell" },
    h("aside", { class: "sidebar" },
      h("div", { class: "brand" }, h("span", { class: "brand-mark" }, icon("search")), h("span", {}, "Trooply", h("small", {}, "Merchant portal"))),
      h("nav", { class: "nav", "aria-label": "Portal" }, links),
      h("div", { class: "sidebar-foot" },
        h("div", { class: "tenant-name", "data-testid": "tenant-name" }, state.account.name),
        h("div", { class: "tenant-id", title: state.account.tenant_id }, state.account.tenant_id))),
    h("div", { class: "main" },
      h("header", { class: "topbar" }, crumbs,
        h("div", { class: "actions" },
          h("span", { class: "badge badge-accent plain", title: "Plan" }, `${state.account.plan} plan`),
          h("button", { class: "btn btn-sm", type: "button", "data-testid": "sign-out", onclick: () => signOut("Signed out.") }, icon("logout"), "Sign out"))),
      h("main", { id: "main", tabindex: "-1" }, content)));
  replace(app, shell);
  state.shell = { links, crumbs, content };
}

async function renderRoute() {
  if (!state.shell) return;
  const { path, args } = parseHash();
  const route = ROUTES[path] || ROUTES.catalog;
  const active = route.parent || path;
  for (const link of state.shell.links) {
    if (link.dataset.path === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const parent = route.parent ? ROUTES[route.parent] : null;
  replace(state.shell.crumbs, state.account.name, " / ",
    parent ? [h("a", { href: `#/${route.parent}` }, parent.label), " / "] : null,
    route.label);
  document.title = `${route.label} — Trooply`;
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  const content = state.shell.content;
  replace(content, h("div", { class: "empty" }, spinner()));
  try {
    state.cleanup = (await route.view.render(content, { args, account: state.account, profiles: state.profiles, navigate, refreshAccount })) || null;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    replace(content, h("div", { class: "card" }, h("div", { class: "empty" }, h("strong", {}, "This page could not be loaded"), describeError(error))));
  }
}

async function refreshAccount() {
  state.account = await get("/v1/account");
  setDefaultCurrency(state.account.default_currency);
  return state.account;
}

async function start() {
  try {
    if (!state.account) state.account = await get("/v1/account");
    setDefaultCurrency(state.account.default_currency);
    state.profiles = (await get("/v1/profiles")).profiles;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) renderSignIn(describeError(error));
    return;
  }
  buildShell();
  if (!window.location.hash) history.replaceState(null, "", "#/catalog");
  await renderRoute();
}

window.addEventListener("hashchange", renderRoute);

if (session.key) start();
else renderSignIn();
