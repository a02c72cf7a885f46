// One subject: rename, metadata, its faces (thumbnails of the stored crops), delete a face or the subject.
import { api, enc, imageURL } from "../api.js";
import { alertBox, clear, confirmDialog, describeError, field, fmtDate, h, toast } from "../dom.js";

export async function subjectView(ctx, gallery, id) {
  const base = `/galleries/${enc(gallery)}/subjects/${id}`;
  const subject = await api(base);
  const title = h("h1", { id: "subj-title" }, subject.name);
  const section = h("section", { "aria-labelledby": "subj-title" },
    h("p", { class: "crumbs" }, h("a", { href: "#/galleries" }, "Galleries"), " / ",
      h("a", { href: `#/galleries/${enc(gallery)}` }, gallery), " / "),
    title,
    h("dl", { class: "facts" },
      h("div", {}, h("dt", {}, "Id"), h("dd", {}, String(subject.id))),
      h("div", {}, h("dt", {}, "Faces"), h("dd", {}, String(subject.faces ?? "—"))),
      h("div", {}, h("dt", {}, "Updated"), h("dd", {}, fmtDate(subject.updated_at)))));
  if (ctx.admin) section.append(editForm(ctx, gallery, subject, title));
  else section.append(metadataView(subject.metadata));
  section.append(await faceGrid(ctx, gallery, subject));
  if (ctx.admin) {
    section.append(h("div", { class: "row wrap" },
      h("a", { class: "button", href: `#/enroll?gallery=${enc(gallery)}&subject=${enc(subject.name)}` }, "Enroll more photos"),
      h("button", {
        type: "button", class: "danger",
        onclick: async () => {
          const ok = await confirmDialog(`Delete subject “${subject.name}”?`,
            "The subject and all its faces are deleted and leave search results at once.", "Delete subject");
          if (!ok) return;
          try {
            await api(base, { method: "DELETE" });
            toast(`Subject ${subject.name} deleted`);
            ctx.go(`#/galleries/${enc(gallery)}`);
          } catch (err) { toast(describeError(err)); }
        },
      }, "Delete subject")));
  }
  return section;
}

function metadataView(metadata) {
  return h("section", {}, h("h2", {}, "Metadata"), h("pre", { class: "json" }, JSON.stringify(metadata || {}, null, 2)));
}

function editForm(ctx, gallery, subject, title) {
  const name = h("input", { value: subject.name, required: true, maxlength: 256, autocomplete: "off" });
  const meta = h("textarea", { rows: 5, spellcheck: "false" });
  meta.value = JSON.stringify(subject.metadata || {}, null, 2);
  const out = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card", "aria-label": "Edit subject" },
    h("h2", {}, "Name and metadata"),
    field("Name", name), field("Metadata (JSON object)", meta),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Save")), out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(out);
    let metadata;
    try {
      metadata = JSON.parse(meta.value || "{}");
      if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) throw new Error("not an object");
    } catch (err) { out.append(alertBox(`Metadata must be a JSON object: ${err.message}`)); return; }
    try {
      const updated = await api(`/galleries/${enc(gallery)}/subjects/${subject.id}`,
        { method: "PATCH", json: { name: name.value, metadata } });
      title.textContent = updated.name;
      subject.name = updated.name;
      out.append(alertBox("Saved.", "ok"));
    } catch (err) { out.append(alertBox(describeError(err))); }
  });
  return form;
}

async function faceGrid(ctx, gallery, subject) {
  const grid = h("ul", { class: "faces", "aria-label": `Faces of ${subject.name}` });
  const section = h("section", { "aria-labelledby": "faces-title" }, h("h2", { id: "faces-title" }, "Faces"), grid);
  const faces = [];
  let after = 0;
  for (;;) { // a subject has few faces; read them all
    const page = await api(`/galleries/${enc(gallery)}/subjects/${subject.id}/faces?limit=200&after=${after}`);
    faces.push(...page.faces);
    if (!page.next_after) break;
    after = page.next_after;
  }
  if (!faces.length) grid.append(h("li", { class: "empty" }, "No face enrolled."));
  for (const face of faces) {
    const thumb = h("div", { class: "thumb", "aria-hidden": "true" }, "…");
    const item = h("li", { class: "face", dataset: { faceId: String(face.id) } },
      thumb,
      h("div", { class: "face-meta" },
        h("span", {}, `face ${face.id}`),
        face.source ? h("span", { class: "hint", title: face.source }, face.source) : null,
        h("span", { class: "hint" }, fmtDate(face.created_at))));
    if (ctx.admin) {
      item.append(h("button", {
        type: "button", class: "danger small", "aria-label": `Delete face ${face.id}`,
        onclick: async () => {
          const ok = await confirmDialog(`Delete face ${face.id}?`, "It leaves search results at once.", "Delete face");
          if (!ok) return;
          try {
            await api(`/galleries/${enc(gallery)}/faces/${face.id}`, { method: "DELETE" });
            item.remove();
            toast(`Face ${face.id} deleted`);
            if (!grid.querySelector("li")) grid.append(h("li", { class: "empty" }, "No face enrolled."));
          } catch (err) { toast(describeError(err)); }
        },
      }, "Delete"));
    }
    grid.append(item);
    loadThumb(gallery, face, thumb);
  }
  return section;
}

async function loadThumb(gallery, face, thumb) {
  try {
    const url = await imageURL(`/galleries/${enc(gallery)}/faces/${face.id}/crop`);
    if (!url) { thumb.textContent = "no crop"; thumb.title = "this gallery keeps no face crops"; return; }
    const img = h("img", { src: url, alt: `face ${face.id}`, width: 112, height: 112 });
    img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
    clear(thumb).append(img);
    thumb.removeAttribute("aria-hidden");
  } catch {
    thumb.textContent = "no crop";
  }
}
