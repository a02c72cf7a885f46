// Enroll: several photos (drag-and-drop, picker or webcam) into one subject; each photo shown with its
// detected face box and its outcome (face id, or the rejection reason).
import { api, enc } from "../api.js";
import { alertBox, clear, describeError, field, h } from "../dom.js";
import { boxedPhoto, photoPicker } from "../photo.js";
import { gallerySelect, REASONS } from "./common.js";

export async function enrollView(ctx, params) {
  const section = h("section", { "aria-labelledby": "enroll-title" }, h("h1", { id: "enroll-title" }, "Enroll"));
  if (!ctx.admin) {
    section.append(alertBox("Enrolling needs an admin key.", "info"));
    return section;
  }
  const { select, count } = await gallerySelect(params.get("gallery"));
  if (!count) {
    section.append(h("p", { class: "empty" }, "Create a gallery first: ", h("a", { href: "#/galleries" }, "Galleries"), "."));
    return section;
  }
  const subject = h("input", { required: true, maxlength: 256, autocomplete: "off", value: params.get("subject") || "" });
  const error = h("div", { "aria-live": "assertive" });
  const results = h("ul", { class: "cards", "aria-label": "Enrolled photos", "aria-live": "polite" });
  const queue = [];
  let running = false;

  async function run() {
    if (running) return;
    running = true;
    while (queue.length) {
      const { file, card } = queue.shift();
      await enrollOne(select.value, subject.value.trim(), file, card);
    }
    running = false;
  }
  const picker = photoPicker({
    label: "Choose photos", multiple: true,
    onFiles: (files) => {
      clear(error);
      if (!subject.value.trim()) { error.append(alertBox("Type the subject's name first.")); subject.focus(); return; }
      for (const file of files) {
        const card = h("li", { class: "card result pending" }, h("p", { class: "hint" }, `${file.name || "photo"}: enrolling…`));
        results.append(card);
        queue.push({ file, card });
      }
      run();
    },
  });
  section.append(h("div", { class: "card" },
    h("div", { class: "row wrap" }, field("Gallery", select), field("Subject name", subject, "created when it does not exist")),
    picker, error), results);
  return section;
}

async function enrollOne(gallery, subject, file, card) {
  const form = new FormData();
  form.append("subject", subject);
  form.append("image", file, file.name || "photo.jpg");
  let outcome;
  try {
    const body = await api(`/galleries/${enc(gallery)}/enroll`, { method: "POST", form });
    outcome = { ok: true, result: body.results[0], subject: body.subject };
  } catch (err) {
    const result = err.body && err.body.error && err.body.error.results ? err.body.error.results[0] : null;
    outcome = { ok: false, result, err };
  }
  const boxes = [];
  let text;
  if (outcome.ok) {
    boxes.push({ box: outcome.result.face.box, label: subject, kind: "match" });
    text = h("p", { class: "notice ok" }, `Enrolled as face ${outcome.result.face_id} of `,
      h("a", { href: `#/galleries/${enc(gallery)}/subjects/${outcome.subject.id}` }, outcome.subject.name));
  } else {
    const code = outcome.result && outcome.result.error ? outcome.result.error.code : outcome.err.code;
    const message = outcome.result && outcome.result.error ? outcome.result.error.message : describeError(outcome.err);
    text = h("p", { class: "notice error" }, `Rejected (${code}): ${message || REASONS[code] || ""}`);
    text.dataset.code = code;
    if (code === "multiple_faces" || code === "too_small") {
      // Enrollment does not return the boxes it refused; ask /detect to show them.
      try {
        const form2 = new FormData();
        form2.append("image", file, file.name || "photo.jpg");
        const found = await api("/detect", { method: "POST", form: form2 });
        for (const f of found.faces) boxes.push({ box: f.box, kind: "reject" });
      } catch { /* boxes are a nicety */ }
    }
  }
  card.classList.remove("pending");
  card.classList.add(outcome.ok ? "accepted" : "rejected");
  clear(card).append(boxedPhoto(file, boxes, file.name || "photo"), h("p", { class: "filename" }, file.name || "webcam photo"), text);
}
