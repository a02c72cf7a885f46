// Identify and verify playground: a photo with every face boxed, the name or "unknown", the similarity,
// and, where the server gives them, the decision and the quality.
import { api, enc } from "../api.js";
import { alertBox, append, clear, describeError, field, fmtNum, h } from "../dom.js";
import { boxedPhoto, photoPicker } from "../photo.js";
import { gallerySelect } from "./common.js";

function plain(value) {
  if (value === undefined || value === null) return "—";
  if (typeof value === "number") return fmtNum(value);
  if (typeof value === "object") {
    const main = value.label ?? value.decision ?? value.status ?? value.score ?? value.value;
    return main !== undefined ? plain(main) : JSON.stringify(value);
  }
  return String(value);
}

/** Quality as a short line ("112 px · yaw -10° · sharp 361"); the full record goes in the tooltip. */
function qualityText(q) {
  if (!q || typeof q !== "object" || q.size_px === undefined) return plain(q);
  const parts = [`${Math.round(q.size_px)} px`];
  if (typeof q.yaw === "number") parts.push(`yaw ${Math.round(q.yaw)}°`);
  if (typeof q.pitch === "number") parts.push(`pitch ${Math.round(q.pitch)}°`);
  if (typeof q.sharpness === "number") parts.push(`sharp ${Math.round(q.sharpness)}`);
  if (q.issues && q.issues.length) parts.push(`issues: ${[].concat(q.issues).join(", ")}`);
  return parts.join(" · ");
}

export async function identifyView() {
  const section = h("section", { "aria-labelledby": "id-title" }, h("h1", { id: "id-title" }, "Identify"));
  const { select, count } = await gallerySelect();
  if (!count) {
    section.append(h("p", { class: "empty" }, "No gallery yet: ", h("a", { href: "#/galleries" }, "create one"), "."));
    return section;
  }
  const topK = h("input", { type: "number", min: 1, max: 100, value: 3, class: "short" });
  const threshold = h("input", { type: "number", min: -1, max: 1, step: 0.01, class: "short", placeholder: "default" });
  const out = h("div", { class: "result-area", "aria-live": "polite" });
  const picker = photoPicker({
    label: "Choose a photo",
    onFiles: async ([file]) => {
      clear(out).append(h("p", { class: "loading" }, "Identifying…"));
      const form = new FormData();
      form.append("image", file, file.name || "photo.jpg");
      form.append("gallery", select.value);
      form.append("top_k", topK.value || "3");
      if (threshold.value !== "") form.append("threshold", threshold.value);
      try {
        showIdentify(out, file, await api("/identify", { method: "POST", form }));
      } catch (err) { clear(out).append(alertBox(describeError(err))); }
    },
  });
  section.append(h("div", { class: "card" },
    h("div", { class: "row wrap" }, field("Gallery", select), field("Candidates per face", topK), field("Threshold", threshold, "empty: the gallery's")),
    picker), out);
  return section;
}

function showIdentify(out, file, body) {
  // numbered left to right, the way people read a group photo
  const faces = [...(body.faces || [])].sort((a, b) => a.box[0] - b.box[0]);
  const boxes = faces.map((f, i) => {
    const best = f.candidates && f.candidates[0];
    const name = f.match ? f.match.name : "unknown";
    const sim = f.match ? f.match.similarity : best ? best.similarity : undefined;
    return { box: f.box, label: [i + 1, name, sim !== undefined ? fmtNum(sim, 2) : ""], kind: f.match ? "match" : "unknown" };
  });
  const hasDecision = faces.some((f) => f.decision !== undefined);
  const hasQuality = faces.some((f) => f.quality !== undefined);
  const head = ["#", "Name", "Similarity", hasDecision && "Decision", hasQuality && "Quality", "Detection", "Other candidates"].filter(Boolean);
  const rows = faces.map((f, i) => {
    const best = f.candidates && f.candidates[0];
    const others = (f.candidates || []).filter((c) => !f.match || c.subject_id !== f.match.subject_id)
      .map((c) => `${c.name} ${fmtNum(c.similarity, 2)}`).join(", ");
    return h("tr", { class: f.match ? "match" : "unknown" },
      h("td", {}, String(i + 1)),
      h("th", { scope: "row", class: "name" }, f.match ? f.match.name : "unknown"),
      h("td", { class: "num" }, fmtNum(f.match ? f.match.similarity : best && best.similarity)),
      hasDecision ? h("td", {}, plain(f.decision)) : null,
      hasQuality ? h("td", { title: JSON.stringify(f.quality) }, qualityText(f.quality)) : null,
      h("td", { class: "num" }, fmtNum(f.score)),
      h("td", {}, others || "—"));
  });
  clear(out).append(
    h("p", {}, `${faces.length} face${faces.length === 1 ? "" : "s"} in gallery ${body.gallery}; threshold ${fmtNum(body.threshold)}.`),
    boxedPhoto(file, boxes, "photo with the faces boxed"),
    faces.length ? h("div", { class: "table-wrap" }, h("table", { class: "faces-table" },
      h("caption", { class: "sr-only" }, "Faces found"),
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))) : alertBox("No face found in this photo.", "info"));
}

export async function verifyView() {
  const section = h("section", { "aria-labelledby": "ver-title" }, h("h1", { id: "ver-title" }, "Verify"),
    h("p", {}, "Are two faces the same person? Compare two photos, or a photo with an enrolled subject."));
  const { select, count } = await gallerySelect();
  const mode = h("select", {}, h("option", { value: "pair" }, "two photos"),
    count ? h("option", { value: "subject" }, "a photo and an enrolled subject") : null);
  const subject = h("input", { autocomplete: "off", placeholder: "subject name or id" });
  const subjectFields = h("div", { class: "row wrap", hidden: true }, field("Gallery", select), field("Subject", subject));
  const files = [null, null];
  const slots = [h("div", { class: "slot" }), h("div", { class: "slot" })];
  const out = h("div", { class: "result-area", "aria-live": "polite" });
  const button = h("button", { type: "button" }, "Compare");
  const pickers = [0, 1].map((i) => photoPicker({
    label: i === 0 ? "First photo" : "Second photo",
    onFiles: ([file]) => { files[i] = file; clear(slots[i]).append(boxedPhoto(file, [], `photo ${i + 1}`)); },
  }));
  const second = h("div", { class: "col" }, pickers[1], slots[1]);
  mode.addEventListener("change", () => {
    subjectFields.hidden = mode.value !== "subject";
    second.hidden = mode.value === "subject";
  });
  button.addEventListener("click", async () => {
    clear(out);
    const form = new FormData();
    if (!files[0]) { out.append(alertBox("Choose the first photo.")); return; }
    form.append("image1", files[0], files[0].name || "photo1.jpg");
    if (mode.value === "subject") {
      if (!subject.value.trim()) { out.append(alertBox("Type a subject.")); return; }
      form.append("gallery", select.value);
      form.append("subject", subject.value.trim());
    } else {
      if (!files[1]) { out.append(alertBox("Choose the second photo.")); return; }
      form.append("image2", files[1], files[1].name || "photo2.jpg");
    }
    button.disabled = true;
    try {
      const r = await api("/verify", { method: "POST", form });
      const label = r.match ? "same person" : "different people";
      clear(slots[0]).append(boxedPhoto(files[0], [{ box: r.face1.box, kind: r.match ? "match" : "unknown", label: "compared" }], "photo 1"));
      if (r.face2) clear(slots[1]).append(boxedPhoto(files[1], [{ box: r.face2.box, kind: r.match ? "match" : "unknown", label: "compared" }], "photo 2"));
      append(out, [h("p", { class: `verdict ${r.match ? "match" : "unknown"}` }, `${label}: similarity ${fmtNum(r.similarity)} (threshold ${fmtNum(r.threshold)})`),
        r.subject ? h("p", {}, "Best face of ", h("a", { href: `#/galleries/${enc(select.value)}/subjects/${r.subject.id}` }, r.subject.name), ` (face ${r.subject.face_id})`) : null,
        r.decision != null ? h("p", {}, `Decision: ${plain(r.decision)}`) : null,
        r.quality != null ? h("p", {}, `Quality: ${qualityText(r.quality)}`) : null]);
    } catch (err) { out.append(alertBox(describeError(err))); } finally { button.disabled = false; }
  });
  section.append(h("div", { class: "card" }, field("Compare", mode), subjectFields,
    h("div", { class: "pair" }, h("div", { class: "col" }, pickers[0], slots[0]), second),
    h("div", { class: "row" }, button)), out);
  return section;
}
