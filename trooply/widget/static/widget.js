/*! Trooply camera search widget. One async script, no build step, no dependency:
 *   <script src="https://search.example/widget.js" data-key="pk_…" data-input="#search" async></script>
 * adds a camera button to the shop's search input (or call Trooply.open() from your own button). The modal takes
 * a picture (upload, drag and drop, paste, camera), a crop box, an optional "like this, but …" text, shows the
 * results with "More like this", and sends a click event (search id and position) when a result is followed.
 * Theme with CSS custom properties (--trooply-accent, --trooply-bg, --trooply-fg, --trooply-muted,
 * --trooply-radius, --trooply-font) on :root or the host page; replace strings with Trooply.configure({strings}).
 */
(function () {
  "use strict";
  if (window.Trooply && window.Trooply.version) return; // loaded twice: the first copy serves

  var VERSION = "1";
  var script = document.currentScript;
  var scriptUrl = script && script.src ? new URL(script.src, document.baseURI) : null;
  var MAX_SIDE = 1600; // pictures are scaled down before upload: a phone photo is 12 MP, the model sees 224 px

  var STRINGS = {
    button: "Search with a picture",
    title: "Search with a picture",
    close: "Close",
    drop: "Drop a picture here, paste one, or",
    choose: "choose a file",
    camera: "Use the camera",
    capture: "Take the picture",
    cameraUnavailable: "The camera is not available here: choose a picture instead.",
    cropHint: "Drag the box (or use the arrow keys; Shift + arrows to resize) around the item you want.",
    refine: "Refine (optional)",
    refinePlaceholder: "like this, but in blue",
    search: "Search",
    another: "Another picture",
    loading: "Searching…",
    results: "{count} results",
    noResults: "Nothing similar was found. Try another picture or a tighter box.",
    moreLikeThis: "More like this",
    originRefused: "Search is not enabled on this site ({origin}). The shop must add it to its allowed origins.",
    unreachable: "The search service could not be reached. Try again in a moment.",
    failed: "The search failed: {message}",
    tooLarge: "This picture is too large.",
    notAnImage: "This file is not a picture.",
    selection: "Selected area",
  };

  var config = {
    key: script && script.getAttribute("data-key"),
    input: script && script.getAttribute("data-input"),
    api: (script && script.getAttribute("data-api")) || (scriptUrl ? scriptUrl.origin : window.location.origin),
    limit: Number((script && script.getAttribute("data-limit")) || 12),
    strings: Object.assign({}, STRINGS),
  };

  function t(name, values) {
    var text = config.strings[name] || STRINGS[name] || name;
    Object.keys(values || {}).forEach(function (key) { text = text.split("{" + key + "}").join(String(values[key])); });
    return text;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) node.append(child);
    });
    return node;
  }

  function stylesheet() {
    var href = scriptUrl ? scriptUrl.href.replace(/widget\.js(\?.*)?$/, "widget.css") : config.api + "/widget.css";
    return el("link", { rel: "stylesheet", href: href });
  }

  // ---------- API ----------

  function ApiProblem(kind, message, code) {
    this.kind = kind;
    this.message = message;
    this.code = code;
  }

  function call(path, body, isJson) {
    var headers = { Authorization: "Bearer " + config.key };
    if (isJson) headers["Content-Type"] = "application/json";
    return fetch(config.api + path, {
      method: "POST", headers: headers, body: isJson ? JSON.stringify(body) : body,
      credentials: "omit", mode: "cors", referrerPolicy: "strict-origin-when-cross-origin",
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (payload) {
        if (response.ok) return payload;
        var error = (payload && payload.error) || { code: "http_" + response.status, message: response.statusText };
        throw new ApiProblem(error.code === "origin_not_allowed" ? "origin" : "api", error.message, error.code);
      });
    }, function () {
      // A CORS refusal and a dead server look the same to fetch; a no-cors probe tells them apart.
      return fetch(config.api + "/healthz", { mode: "no-cors", credentials: "omit" }).then(
        function () { throw new ApiProblem("origin", t("originRefused", { origin: window.location.origin })); },
        function () { throw new ApiProblem("network", t("unreachable")); });
    });
  }

  function sendClick(searchId, productId, position) {
    var event = { type: "click", search_id: searchId, product_id: productId, position: position,
                  event_id: searchId + ":" + productId + ":click" };
    // keepalive: the event still leaves when the click navigates away from the page.
    return fetch(config.api + "/v1/events", {
      method: "POST", keepalive: true, credentials: "omit", mode: "cors",
      headers: { Authorization: "Bearer " + config.key, "Content-Type": "application/json" },
      body: JSON.stringify({ events: [event] }),
    }).catch(function () { return null; });
  }

  // ---------- Pictures ----------

  function loadPicture(blob) {
    return new Promise(function (resolve, reject) {
      if (!blob || (blob.type && blob.type.indexOf("image/") !== 0)) {
        reject(new ApiProblem("input", t("notAnImage")));
        return;
      }
      var url = URL.createObjectURL(blob);
      var img = new Image();
      img.onload = function () {
        var scale = Math.min(1, MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
        var canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
        canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
        canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
        URL.revokeObjectURL(url);
        canvas.toBlob(function (jpeg) {
          if (!jpeg) reject(new ApiProblem("input", t("notAnImage")));
          else resolve({ blob: jpeg, width: canvas.width, height: canvas.height, url: URL.createObjectURL(jpeg) });
        }, "image/jpeg", 0.9);
      };
      img.onerror = function () {
        URL.revokeObjectURL(url);
        reject(new ApiProblem("input", t("notAnImage")));
      };
      img.src = url;
    });
  }

  // ---------- The modal ----------

  var state = null; // while open: everything to undo on close

  function open(opener) {
    if (state) return;
    if (!config.key) {
      console.error("Trooply widget: set data-key to the publishable key (pk_…)");
      return;
    }
    var host = el("div", { "data-trooply-widget": VERSION });
    var root = host.attachShadow({ mode: "open" });
    state = { host: host, opener: opener || document.activeElement, urls: [], stream: null, picture: null,
              box: null, cleanup: [] };
    var titleId = "trooply-title";
    var status = el("div", { class: "status", role: "status", "aria-live": "polite" });
    var alertBox = el("div", { class: "error", role: "alert", hidden: true, "data-testid": "trooply-error" });
    var body = el("div", { class: "body" });
    var dialog = el("div", { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId,
                             tabindex: "-1", "data-testid": "trooply-dialog" }, [
      el("div", { class: "head" }, [
        el("h2", { id: titleId, text: t("title") }),
        el("button", { type: "button", class: "icon-button", "aria-label": t("close"), "data-testid": "trooply-close",
                       onclick: close }, [icon("close")]),
      ]),
      alertBox, status, body,
    ]);
    var backdrop = el("div", { class: "backdrop", onclick: function (event) { if (event.target === backdrop) close(); } },
                      [dialog]);
    root.append(stylesheet(), backdrop);
    document.body.append(host);
    state.root = root;
    state.dialog = dialog;
    state.body = body;
    state.status = status;
    state.alertBox = alertBox;
    listen(document, "keydown", onKeydown);
    listen(document, "paste", onPaste);
    showPicker();
    dialog.focus();
  }

  function listen(target, type, handler) {
    target.addEventListener(type, handler);
    state.cleanup.push(function () { target.removeEventListener(type, handler); });
  }

  function close() {
    if (!state) return;
    stopCamera();
    state.cleanup.forEach(function (undo) { undo(); });
    state.urls.forEach(function (url) { URL.revokeObjectURL(url); });
    if (state.picture) URL.revokeObjectURL(state.picture.url);
    state.host.remove();
    var opener = state.opener;
    state = null;
    if (opener && typeof opener.focus === "function" && opener.isConnected) opener.focus();
  }

  function onKeydown(event) {
    if (!state) return;
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    } else if (event.key === "Tab") {
      // Focus stays inside the dialog while it is open.
      var focusable = Array.prototype.filter.call(
        state.dialog.querySelectorAll("button, input, a[href], textarea, [tabindex='0']"),
        function (node) { return !node.disabled && node.offsetParent !== null; });
      if (!focusable.length) return;
      var first = focusable[0], last = focusable[focusable.length - 1];
      var active = state.root.activeElement;
      if (event.shiftKey && (active === first || !active)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && active === last) {
        event.preventDefault();
        first.focus();
      }
    }
  }

  function onPaste(event) {
    var items = (event.clipboardData && event.clipboardData.files) || [];
    if (items.length) {
      event.preventDefault();
      usePicture(items[0]);
    }
  }

  function say(message) {
    state.status.textContent = message || "";
  }

  function fail(problem) {
    if (!state) return;
    state.alertBox.hidden = false;
    state.alertBox.setAttribute("data-kind", problem.kind || "api");
    state.alertBox.textContent = problem.kind === "api" ? t("failed", { message: problem.message })
      : problem.message || String(problem);
    say("");
    state.body.removeAttribute("aria-busy");
  }

  function clearError() {
    state.alertBox.hidden = true;
    state.alertBox.textContent = "";
  }

  function replaceBody() {
    while (state.body.firstChild) state.body.firstChild.remove();
    state.body.append.apply(state.body, arguments);
  }

  // Step 1: where the picture comes from.
  function showPicker() {
    stopCamera();
    var input = el("input", { type: "file", accept: "image/*", class: "visually-hidden", id: "trooply-file",
                              "data-testid": "trooply-file", onchange: function () { usePicture(input.files[0]); } });
    var zone = el("div", { class: "dropzone", "data-testid": "trooply-dropzone" }, [
      icon("image"),
      el("p", {}, [t("drop") + " ", el("label", { for: "trooply-file", class: "link", tabindex: "0",
        onkeydown: function (event) { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); } } },
        [t("choose")])]),
      input,
    ]);
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("over"); });
    });
    zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("over");
      if (event.dataTransfer && event.dataTransfer.files.length) usePicture(event.dataTransfer.files[0]);
    });
    var camera = el("button", { type: "button", class: "button secondary", "data-testid": "trooply-camera",
                                onclick: startCamera }, [icon("camera"), t("camera")]);
    replaceBody(zone, el("div", { class: "row" }, [camera]));
  }

  function startCamera() {
    clearError();
    var media = navigator.mediaDevices;
    if (!media || !media.getUserMedia) {
      cameraFallback();
      return;
    }
    media.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (stream) {
      if (!state) {
        stream.getTracks().forEach(function (track) { track.stop(); });
        return;
      }
      state.stream = stream;
      var video = el("video", { autoplay: true, playsinline: true, muted: true, class: "camera",
                                "aria-label": t("camera") });
      video.srcObject = stream;
      var capture = el("button", { type: "button", class: "button", "data-testid": "trooply-capture",
        onclick: function () {
          var canvas = document.createElement("canvas");
          canvas.width = video.videoWidth || 640;
          canvas.height = video.videoHeight || 480;
          canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
          canvas.toBlob(function (blob) { stopCamera(); usePicture(blob); }, "image/jpeg", 0.9);
        } }, [icon("camera"), t("capture")]);
      replaceBody(video, el("div", { class: "row" }, [capture,
        el("button", { type: "button", class: "button secondary", onclick: showPicker }, [t("another")])]));
      capture.focus();
    }, cameraFallback);
  }

  // No camera API, or permission refused: the file picker, which on phones offers the camera itself.
  function cameraFallback() {
    if (!state) return;
    var input = el("input", { type: "file", accept: "image/*", capture: "environment", class: "visually-hidden",
                              "data-testid": "trooply-camera-file", onchange: function () { usePicture(input.files[0]); } });
    state.body.append(input);
    fail({ kind: "input", message: t("cameraUnavailable") });
    input.click();
  }

  function stopCamera() {
    if (state && state.stream) {
      state.stream.getTracks().forEach(function (track) { track.stop(); });
      state.stream = null;
    }
  }

  // Step 2: the picture, its crop box and the optional words; then the results below.
  function usePicture(file) {
    if (!state || !file) return;
    clearError();
    loadPicture(file).then(function (picture) {
      if (!state) return URL.revokeObjectURL(picture.url);
      if (state.picture) URL.revokeObjectURL(state.picture.url);
      state.picture = picture;
      state.box = [0, 0, picture.width, picture.height];
      showEditor();
      search();
    }, fail);
  }

  function showEditor() {
    var picture = state.picture;
    var img = el("img", { src: picture.url, alt: "", draggable: "false" });
    var box = el("div", { class: "crop-box", tabindex: "0", role: "slider", "aria-label": t("selection"),
                          "aria-valuetext": "", "data-testid": "trooply-crop-box" }, [
      el("span", { class: "handle nw", "data-handle": "nw" }), el("span", { class: "handle ne", "data-handle": "ne" }),
      el("span", { class: "handle sw", "data-handle": "sw" }), el("span", { class: "handle se", "data-handle": "se" }),
    ]);
    var stage = el("div", { class: "stage", "data-testid": "trooply-stage" }, [img, box]);
    var text = el("input", { type: "text", class: "text", id: "trooply-refine", maxlength: "200",
                             placeholder: t("refinePlaceholder"), "data-testid": "trooply-refine" });
    var form = el("form", { class: "refine", onsubmit: function (event) { event.preventDefault(); search(); } }, [
      el("label", { for: "trooply-refine", text: t("refine") }), text,
      el("button", { type: "submit", class: "button", "data-testid": "trooply-search" }, [t("search")]),
    ]);
    var results = el("div", { class: "results", "data-testid": "trooply-results" });
    replaceBody(el("div", { class: "editor" }, [
      el("div", {}, [stage, el("p", { class: "hint", text: t("cropHint") }),
        el("button", { type: "button", class: "button secondary", onclick: showPicker }, [t("another")])]),
      el("div", { class: "side" }, [form, results]),
    ]));
    state.results = results;
    state.text = text;
    state.drawBox = function () {
      var scale = img.clientWidth / picture.width || 1;
      var b = state.box;
      box.style.left = b[0] * scale + "px";
      box.style.top = b[1] * scale + "px";
      box.style.width = (b[2] - b[0]) * scale + "px";
      box.style.height = (b[3] - b[1]) * scale + "px";
      box.setAttribute("aria-valuetext", b.map(Math.round).join(", "));
    };
    img.addEventListener("load", state.drawBox);
    listen(window, "resize", state.drawBox);
    cropInteractions(stage, box, img);
  }

  function setBox(next) {
    var p = state.picture, min = Math.min(24, p.width, p.height);
    var x1 = Math.max(0, Math.min(next[0], p.width - min)), y1 = Math.max(0, Math.min(next[1], p.height - min));
    var x2 = Math.min(p.width, Math.max(next[2], x1 + min)), y2 = Math.min(p.height, Math.max(next[3], y1 + min));
    state.box = [x1, y1, x2, y2];
    state.drawBox();
  }

  function cropInteractions(stage, box, img) {
    var drag = null;
    box.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      box.setPointerCapture(event.pointerId);
      drag = { handle: event.target.getAttribute("data-handle"), x: event.clientX, y: event.clientY,
               start: state.box.slice(), scale: state.picture.width / img.clientWidth };
    });
    box.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var dx = (event.clientX - drag.x) * drag.scale, dy = (event.clientY - drag.y) * drag.scale, s = drag.start;
      if (!drag.handle) {
        var w = s[2] - s[0], h = s[3] - s[1];
        var x = Math.max(0, Math.min(s[0] + dx, state.picture.width - w));
        var y = Math.max(0, Math.min(s[1] + dy, state.picture.height - h));
        setBox([x, y, x + w, y + h]);
      } else {
        var next = s.slice();
        if (drag.handle.indexOf("w") >= 0) next[0] = s[0] + dx; else next[2] = s[2] + dx;
        if (drag.handle.indexOf("n") >= 0) next[1] = s[1] + dy; else next[3] = s[3] + dy;
        setBox(next);
      }
    });
    function end(event) {
      if (!drag) return;
      drag = null;
      if (box.hasPointerCapture(event.pointerId)) box.releasePointerCapture(event.pointerId);
      search();
    }
    box.addEventListener("pointerup", end);
    box.addEventListener("pointercancel", end);
    box.addEventListener("keydown", function (event) {
      var arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      var move = arrows[event.key];
      if (!move) {
        if (event.key === "Enter") search();
        return;
      }
      event.preventDefault();
      var step = Math.max(2, Math.round(Math.max(state.picture.width, state.picture.height) / 50));
      var b = state.box;
      if (event.shiftKey) setBox([b[0], b[1], b[2] + move[0] * step, b[3] + move[1] * step]);
      else {
        var dx = move[0] * step, dy = move[1] * step;
        dx = Math.max(-b[0], Math.min(dx, state.picture.width - b[2]));
        dy = Math.max(-b[1], Math.min(dy, state.picture.height - b[3]));
        setBox([b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy]);
      }
    });
    box.addEventListener("keyup", function (event) {
      if (event.key.indexOf("Arrow") === 0) search();
    });
  }

  function isWholePicture() {
    var b = state.box, p = state.picture;
    return b[0] <= 0 && b[1] <= 0 && b[2] >= p.width && b[3] >= p.height;
  }

  function search() {
    if (!state || !state.picture) return;
    var words = state.text ? state.text.value.trim() : "";
    var form = new FormData();
    form.append("file", state.picture.blob, "picture.jpg");
    form.append("limit", String(config.limit));
    var path = "/v1/search/image";
    if (words) {
      path = "/v1/search/fusion";
      form.append("text", words);
    } else if (!isWholePicture()) {
      path = "/v1/search/crop";
      form.append("bbox", JSON.stringify(state.box.map(Math.round)));
    }
    run(call(path, form, false));
  }

  function similar(productId) {
    run(call("/v1/search/similar", { product_id: productId, limit: config.limit }, true));
  }

  function run(request) {
    clearError();
    var ticket = (state.ticket = (state.ticket || 0) + 1); // a slower, older answer never replaces a newer one
    state.body.setAttribute("aria-busy", "true");
    say(t("loading"));
    request.then(function (envelope) {
      if (!state || ticket !== state.ticket) return;
      state.body.removeAttribute("aria-busy");
      showResults(envelope);
    }, function (problem) {
      if (state && ticket === state.ticket) fail(problem);
    });
  }

  function showResults(envelope) {
    var box = state.results;
    while (box.firstChild) box.firstChild.remove();
    var hits = envelope.results || [];
    say(hits.length ? t("results", { count: hits.length }) : t("noResults"));
    box.setAttribute("data-search-id", envelope.search_id);
    if (!hits.length) {
      box.append(el("p", { class: "empty", text: t("noResults") }));
      return;
    }
    var list = el("ul", { class: "grid", "aria-label": t("results", { count: hits.length }) });
    hits.forEach(function (hit, position) {
      var meta = hit.metadata || {};
      var attrs = meta.attributes || {};
      var href = meta.url || meta.link || attrs.url || attrs.link || null;
      var title = meta.title || hit.id;
      var image = meta.image_url ? el("img", { src: meta.image_url, alt: "", loading: "lazy" }) : el("div", { class: "placeholder" });
      var link = el(href ? "a" : "span", { class: "result-link", href: href, "data-testid": "trooply-result",
                                           "data-product-id": hit.id, "data-position": String(position) },
                    [image, el("span", { class: "title", text: title }),
                     meta.price !== undefined && meta.price !== null ? el("span", { class: "price", text: price(meta.price, meta.currency) }) : null]);
      link.addEventListener("click", function () { sendClick(envelope.search_id, hit.id, position); });
      link.addEventListener("auxclick", function () { sendClick(envelope.search_id, hit.id, position); });
      var more = el("button", { type: "button", class: "button secondary small", "data-testid": "trooply-more",
                                "aria-label": t("moreLikeThis") + ": " + title,
                                onclick: function () { similar(hit.id); } }, [t("moreLikeThis")]);
      list.append(el("li", { class: "card" }, [link, more]));
    });
    box.append(list);
  }

  function price(amount, currency) {
    try {
      if (currency && /^[A-Za-z]{3}$/.test(currency)) {
        return new Intl.NumberFormat(document.documentElement.lang || undefined,
                                     { style: "currency", currency: currency.toUpperCase() }).format(amount);
      }
    } catch (ignored) { /* an unknown currency code: the plain number */ }
    return String(amount) + (currency ? " " + currency : "");
  }

  var ICONS = {
    camera: "M9 3 7.2 5H4a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2h-3.2L15 3H9zm3 5a5 5 0 1 1 0 10 5 5 0 0 1 0-10zm0 2a3 3 0 1 0 0 6 3 3 0 0 0 0-6z",
    close: "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z",
    image: "M5 3h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 14 4-5 3 4 2-3 5 4V5H5v12z",
  };

  function icon(name) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  // ---------- The camera button in the shop's search box ----------

  function attach(selector) {
    var input = selector && document.querySelector(selector);
    if (!input || input.getAttribute("data-trooply-attached")) return;
    input.setAttribute("data-trooply-attached", VERSION);
    var host = el("span", { class: "trooply-camera-host", "data-trooply-button": VERSION });
    var root = host.attachShadow({ mode: "open" });
    var button = el("button", { type: "button", class: "camera-button", "aria-label": t("button"),
                                title: t("button"), "data-testid": "trooply-open",
                                onclick: function () { open(button); } }, [icon("camera")]);
    root.append(stylesheet(), button);
    input.insertAdjacentElement("afterend", host);
  }

  function configure(options) {
    options = options || {};
    if (options.strings) Object.assign(config.strings, options.strings);
    ["key", "api", "limit"].forEach(function (name) { if (options[name] !== undefined) config[name] = options[name]; });
    if (options.input) attach(options.input);
  }

  window.Trooply = { version: VERSION, open: function () { open(document.activeElement); }, close: close,
                     configure: configure };
  if (window.TrooplyStrings) Object.assign(config.strings, window.TrooplyStrings);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { attach(config.input); });
  } else {
    attach(config.input);
  }
})();
