// Photos: a drop zone / file picker / webcam, and a photo with face boxes drawn over it (DOM, so the
// labels are real text: readable by screen readers and by tests).
import { h, newId } from "./dom.js";

/** A photo (File or Blob) with boxes [{box:[x1,y1,x2,y2], label, kind}] in image pixels; a label is text
 * or [number, name, similarity] (number and similarity are left out on narrow screens). */
export function boxedPhoto(file, boxes = [], alt = "photo") {
  const url = URL.createObjectURL(file);
  const img = h("img", { src: url, alt });
  const layer = h("div", { class: "boxes" });
  const figure = h("div", { class: "photo" }, img, layer);
  const place = () => {
    const w = img.naturalWidth, ht = img.naturalHeight;
    if (!w || !ht) return;
    for (const { box, label, kind } of boxes) {
      if (!box) continue;
      const [x1, y1, x2, y2] = box;
      const text = Array.isArray(label)
        ? [h("span", { class: "extra" }, `${label[0]}. `), label[1], label[2] ? h("span", { class: "extra" }, ` ${label[2]}`) : null]
        : label;
      const el = h("div", { class: `box ${kind || ""}` }, label ? h("span", { class: "label" }, text) : null);
      // CSSOM (el.style) is allowed by the CSP; style attributes in markup would not be.
      el.style.left = `${(100 * Math.max(0, x1)) / w}%`;
      el.style.top = `${(100 * Math.max(0, y1)) / ht}%`;
      el.style.width = `${(100 * (Math.min(w, x2) - Math.max(0, x1))) / w}%`;
      el.style.height = `${(100 * (Math.min(ht, y2) - Math.max(0, y1))) / ht}%`;
      if (y1 < 0.12 * ht) el.classList.add("label-below");
      if ((x1 + x2) / 2 > 0.5 * w) el.classList.add("label-end"); // labels grow inwards, not off the photo
      layer.append(el);
    }
  };
  img.addEventListener("load", place, { once: true });
  return figure;
}

/** A drop zone with a labelled file input (keyboard) and an optional webcam button. */
export function photoPicker({ label, multiple = false, onFiles, webcam = true }) {
  const input = h("input", { type: "file", accept: "image/*", id: newId("file"), multiple, class: "file" });
  input.addEventListener("change", () => {
    if (input.files.length) onFiles([...input.files]);
    input.value = "";
  });
  const zone = h("div", { class: "dropzone" },
    h("label", { for: input.id }, label),
    input,
    h("p", { class: "hint" }, multiple ? "or drop photos here" : "or drop a photo here"));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = [...e.dataTransfer.files].filter((f) => f.type.startsWith("image/"));
    if (files.length) onFiles(multiple ? files : files.slice(0, 1));
  });
  if (webcam && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    zone.append(webcamButton((blob) => onFiles([blob])));
  }
  return zone;
}

function webcamButton(onPhoto) {
  const box = h("div", { class: "webcam" });
  const start = h("button", { type: "button", class: "secondary" }, "Use webcam");
  start.addEventListener("click", async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false });
    } catch (err) {
      box.append(h("p", { class: "notice error", role: "alert" }, `Webcam unavailable: ${err.message}`));
      return;
    }
    const video = h("video", { autoplay: true, playsinline: true, muted: true, "aria-label": "webcam preview" });
    video.srcObject = stream;
    const stop = () => {
      stream.getTracks().forEach((t) => t.stop());
      video.remove(); snap.remove(); close.remove();
      start.hidden = false;
    };
    const snap = h("button", { type: "button" }, "Take photo");
    const close = h("button", { type: "button", class: "secondary" }, "Close webcam");
    snap.addEventListener("click", () => {
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      canvas.toBlob((blob) => {
        if (blob) onPhoto(new File([blob], `webcam-${Date.now()}.jpg`, { type: "image/jpeg" }));
      }, "image/jpeg", 0.92);
    });
    close.addEventListener("click", stop);
    window.addEventListener("hashchange", stop, { once: true }); // leaving the page turns the camera off
    start.hidden = true; // one camera at a time
    box.append(video, snap, close);
    snap.focus();
  });
  box.append(start);
  return box;
}
