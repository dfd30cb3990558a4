// Crop: an uploaded picture (or an image URL) on which the box around the item is drawn with the pointer. The box
// is kept in the original image's pixels, as the API takes it, and can be typed too (keyboard users).
import { field, h, nextId } from "../dom.js";

export function cropper() {
  const fileInput = h("input", { class: "input", type: "file", accept: "image/*", "data-testid": "crop-file-input" });
  const urlInput = h("input", { class: "input", type: "url", placeholder: "https://shop.example.com/street.jpg" });
  const stage = h("div", { class: "image-preview crop-surface", hidden: true, "data-testid": "crop-surface" });
  const img = h("img", { alt: "The picture to crop: drag to draw the box around the item", draggable: "false" });
  const box = h("div", { class: "crop-box", hidden: true });
  stage.append(img, box);
  const coords = ["x1", "y1", "x2", "y2"].map((name) => h("input", { class: "input", type: "number", min: "0", step: "1", "aria-label": `Box ${name} (pixels)`, "data-testid": `crop-${name}`, id: nextId(name) }));
  const hint = h("p", { class: "faint small" }, "Choose a picture, then drag on it to draw the box around the item.");
  let source = { file: null, url: null };
  let bbox = null;

  const scale = () => (img.naturalWidth && img.clientWidth ? img.naturalWidth / img.clientWidth : 1);

  function show(src) {
    bbox = null;
    box.hidden = true;
    coords.forEach((input) => { input.value = ""; });
    stage.hidden = !src;
    if (src) img.src = src;
  }

  function drawBox() {
    if (!bbox) {
      box.hidden = true;
      return;
    }
    const s = scale();
    const [x1, y1, x2, y2] = bbox;
    Object.assign(box.style, { left: `${x1 / s}px`, top: `${y1 / s}px`, width: `${(x2 - x1) / s}px`, height: `${(y2 - y1) / s}px` });
    box.hidden = false;
  }

  function setBox(next, fromInputs = false) {
    const [a, b, c, d] = next.map((v) => Math.round(v));
    const clamped = [Math.min(a, c), Math.min(b, d), Math.max(a, c), Math.max(b, d)].map((v, i) => Math.max(0, Math.min(v, i % 2 ? img.naturalHeight : img.naturalWidth)));
    bbox = clamped[2] - clamped[0] >= 2 && clamped[3] - clamped[1] >= 2 ? clamped : null;
    if (!fromInputs) coords.forEach((input, i) => { input.value = bbox ? String(bbox[i]) : ""; });
    hint.textContent = bbox ? `Box: ${bbox[2] - bbox[0]} × ${bbox[3] - bbox[1]} px of ${img.naturalWidth} × ${img.naturalHeight}` : "Drag on the picture to draw the box around the item.";
    drawBox();
  }

  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    source = { file: file || null, url: null };
    urlInput.value = "";
    show(file ? URL.createObjectURL(file) : null);
  });
  // The picture appears while the URL is typed, not when the field loses focus: the page does not move under a
  // click on Search.
  const useUrl = () => {
    const url = urlInput.value.trim();
    if (url === (source.url || "") && !source.file) return;
    source = { file: null, url: url || null };
    fileInput.value = "";
    show(/^https?:\/\//.test(url) ? url : null);
  };
  let typing = null;
  urlInput.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(useUrl, 250); });
  urlInput.addEventListener("change", useUrl);

  let start = null;
  const point = (event) => {
    const rect = img.getBoundingClientRect();
    const s = scale();
    return [(event.clientX - rect.left) * s, (event.clientY - rect.top) * s];
  };
  stage.addEventListener("pointerdown", (event) => {
    if (!img.naturalWidth) return;
    event.preventDefault();
    stage.setPointerCapture(event.pointerId);
    start = point(event);
  });
  stage.addEventListener("pointermove", (event) => {
    if (start) setBox([...start, ...point(event)]);
  });
  const finish = (event) => {
    if (!start) return;
    setBox([...start, ...point(event)]);
    start = null;
  };
  stage.addEventListener("pointerup", finish);
  stage.addEventListener("pointercancel", () => { start = null; });
  coords.forEach((input) => input.addEventListener("input", () => {
    if (coords.every((c) => c.value !== "")) setBox(coords.map((c) => Number(c.value)), true);
  }));
  window.addEventListener("resize", drawBox);

  const element = h("div", { class: "stack" },
    field("Image", fileInput), field("…or image URL", urlInput), stage, hint,
    h("fieldset", { style: { border: "none", padding: "0", margin: "0" } },
      h("legend", { class: "label" }, "Box in pixels (x1, y1, x2, y2)"),
      h("div", { class: "row", style: { flexWrap: "nowrap", marginTop: "6px" } }, coords)));

  return {
    element,
    value: () => ({ ...source, bbox }),
  };
}
