// A modal dialog: role="dialog", labelled by its title, focus moved in and trapped (Tab and Shift+Tab cycle
// inside it), Escape or the close button close it, and focus returns to what opened it.
import { h, icon, nextId } from "./dom.js";

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

export function openDialog({ title, subtitle, media, body, footer, testid, labelClose = "Close", onClose, wide = false }) {
  const opener = document.activeElement;
  const titleId = nextId("dialog-title");
  const closeButton = h("button", { class: "btn btn-ghost icon-btn", type: "button", "aria-label": labelClose, "data-testid": "dialog-close" }, icon("close"));
  const dialog = h("dialog", {
    class: "modal", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId, "data-testid": testid,
    style: wide ? { width: "min(900px, calc(100vw - 32px))" } : undefined,
  },
  h("div", { class: "modal-head" }, media || null,
    h("div", { class: "titles" }, h("h2", { id: titleId }, title), subtitle ? h("p", { class: "muted small" }, subtitle) : null),
    closeButton),
  h("div", { class: "modal-body" }, body),
  footer ? h("div", { class: "modal-foot" }, footer) : null);

  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    dialog.close();
    dialog.remove();
    if (onClose) onClose();
    if (opener && typeof opener.focus === "function" && document.contains(opener)) opener.focus();
  }

  dialog.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
      return;
    }
    if (event.key !== "Tab") return;
    const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
    if (!items.length) {
      event.preventDefault();
      return;
    }
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !dialog.contains(document.activeElement))) {
      event.preventDefault();
      first.focus();
    }
  });
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault(); // the native Escape: closed our way, so focus returns
    close();
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) close(); // a click on the backdrop
  });
  closeButton.addEventListener("click", close);

  document.body.append(dialog);
  dialog.showModal();
  closeButton.focus();
  return { dialog, close };
}

// A yes/no question in a dialog; resolves true when confirmed.
export function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    let answer = false;
    const confirm = h("button", { class: `btn ${danger ? "btn-danger-solid" : "btn-primary"}`, type: "button", "data-testid": "confirm" }, confirmLabel);
    const cancel = h("button", { class: "btn", type: "button" }, "Cancel");
    const { close } = openDialog({
      title, body: h("p", {}, message), footer: [cancel, confirm], testid: "confirm-dialog",
      onClose: () => resolve(answer),
    });
    cancel.addEventListener("click", close);
    confirm.addEventListener("click", () => {
      answer = true;
      close();
    });
    confirm.focus();
  });
}
