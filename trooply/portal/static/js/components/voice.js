// Voice: record a spoken query with the microphone (MediaRecorder), or choose an audio file; either is played
// back before it is sent. The recording stays in memory, like the server keeps it.
import { field, h, icon, replace } from "../dom.js";

const MAX_SECONDS = 30; // the server's default TROOPLY_MAX_AUDIO_SECONDS

export function voiceInput() {
  const fileInput = h("input", { class: "input", type: "file", accept: "audio/*,.wav,.mp3,.webm,.ogg", "data-testid": "voice-file-input" });
  const record = h("button", { class: "btn", type: "button", "data-testid": "voice-record" }, icon("mic"), "Record");
  const status = h("span", { class: "muted small", "aria-live": "polite" });
  const playback = h("div");
  let chosen = null;
  let recorder = null;
  let stream = null;
  let ticker = null;

  const supported = typeof window.MediaRecorder === "function" && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;

  function use(blob, name) {
    chosen = { blob, name };
    replace(playback, h("audio", { controls: true, src: URL.createObjectURL(blob), "aria-label": "The query to send" }));
  }

  function stop() {
    clearInterval(ticker);
    if (recorder && recorder.state !== "inactive") recorder.stop();
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
  }

  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (file) {
      use(file, file.name);
      status.textContent = "";
    }
  });

  record.addEventListener("click", async () => {
    if (recorder && recorder.state === "recording") {
      stop();
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      status.textContent = "The microphone is not available: allow it, or choose a file.";
      return;
    }
    const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"].find((t) => MediaRecorder.isTypeSupported(t)) || "";
    const chunks = [];
    recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    recorder.addEventListener("dataavailable", (event) => { if (event.data.size) chunks.push(event.data); });
    recorder.addEventListener("stop", () => {
      const blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      use(blob, blob.type.includes("ogg") ? "recording.ogg" : "recording.webm");
      replace(record, icon("mic"), "Record again");
      status.textContent = `Recorded ${(blob.size / 1024).toFixed(0)} KB`;
    });
    recorder.start();
    const started = Date.now();
    replace(record, h("span", { class: "rec-dot", "aria-hidden": "true" }), "Stop");
    ticker = setInterval(() => {
      const seconds = Math.floor((Date.now() - started) / 1000);
      status.textContent = `Recording… ${seconds}s`;
      if (seconds >= MAX_SECONDS) stop();
    }, 250);
  });

  const element = h("div", { class: "stack" },
    h("div", { class: "field" }, h("span", { class: "label" }, "Microphone"),
      supported ? h("div", { class: "recorder" }, record, status) : h("p", { class: "muted small" }, "This browser cannot record; choose a file instead.")),
    field("…or an audio file", fileInput, "WAV, MP3, WebM/Opus or OGG, up to 30 seconds."),
    playback);

  return { element, value: () => chosen, stop };
}
