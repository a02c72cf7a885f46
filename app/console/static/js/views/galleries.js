// Galleries: list, create (pack, index kind), delete with confirmation; one gallery with its subjects.
import { api, enc } from "../api.js";
import { alertBox, clear, confirmDialog, describeError, field, fmtDate, fmtNum, h, toast } from "../dom.js";

export async function galleriesView(ctx) {
  const [{ galleries }, ready, schema] = await Promise.all([
    api("/galleries"), api("/readyz").catch((e) => e.body || {}), ctx.admin ? createSchema() : null]);
  const section = h("section", { "aria-labelledby": "gal-title" }, h("h1", { id: "gal-title" }, "Galleries"));
  if (ctx.admin) section.append(createForm(ctx, (ready && ready.packs) || [], schema));
  if (!galleries.length) {
    section.append(h("p", { class: "empty" }, "No gallery yet."));
    return section;
  }
  const rows = galleries.map((g) => h("tr", {},
    h("th", { scope: "row" }, h("a", { href: `#/galleries/${enc(g.name)}` }, g.name)),
    h("td", {}, `${g.pack.name} ${g.pack.version}`),
    h("td", {}, g.index.kind),
    h("td", { class: "num" }, String(g.subjects)),
    h("td", { class: "num" }, String(g.faces)),
    h("td", {}, fmtDate(g.created_at)),
    ctx.admin ? h("td", {}, deleteButton(ctx, g.name)) : null));
  section.append(h("div", { class: "table-wrap" }, h("table", {},
    h("caption", { class: "sr-only" }, "Galleries"),
    h("thead", {}, h("tr", {}, ["Name", "Pack", "Index", "Subjects", "Faces", "Created"].map((t) =>
      h("th", { scope: "col", class: t === "Subjects" || t === "Faces" ? "num" : null }, t)),
      ctx.admin ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")) : null)),
    h("tbody", {}, rows))));
  return section;
}

function deleteButton(ctx, name) {
  return h("button", {
    type: "button", class: "danger small", "aria-label": `Delete gallery ${name}`,
    onclick: async () => {
      const ok = await confirmDialog(`Delete gallery “${name}”?`,
        "Every subject and face in it is deleted for good. This cannot be undone.", "Delete gallery");
      if (!ok) return;
      try {
        await api(`/galleries/${enc(name)}`, { method: "DELETE" });
        toast(`Gallery ${name} deleted`);
        ctx.refresh();
      } catch (err) { toast(describeError(err)); }
    },
  }, "Delete");
}

/** What POST /galleries accepts, from the server's OpenAPI: the index kinds and whether keep_crops exists. */
async function createSchema() {
  const fallback = { kinds: ["flat", "ivf", "hnsw"], keepCrops: false };
  try {
    const spec = await api("/openapi.json");
    const props = spec.components.schemas.GalleryCreate.properties;
    const index = props.index || {};
    const kinds = [index, ...(index.anyOf || [])].flatMap((v) => v.enum || []);
    return { kinds: kinds.length ? kinds : fallback.kinds, keepCrops: "keep_crops" in props };
  } catch {
    return fallback;
  }
}

function createForm(ctx, packs, schema) {
  const name = h("input", {
    required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,127}", autocomplete: "off",
    placeholder: "e.g. staff", title: "letters, digits, _ . - (128 at most)",
  });
  const pack = h("select", {}, h("option", { value: "" }, "server default"),
    packs.map((p) => h("option", { value: p.name }, `${p.name} ${p.version}`)));
  const index = h("select", {}, h("option", { value: "" }, "server default"),
    schema.kinds.map((k) => h("option", { value: k }, k)));
  const keep = schema.keepCrops ? h("input", { type: "checkbox", id: "keep-crops", checked: true }) : null;
  const out = h("div", {});
  const form = h("form", { class: "card inline", "aria-label": "New gallery" },
    h("h2", {}, "New gallery"),
    h("div", { class: "row wrap" },
      field("Name", name), field("Model pack", pack), field("Index kind", index),
      keep ? h("div", { class: "field check actions" }, keep, h("label", { for: "keep-crops" }, "Keep face crops")) : null,
      h("div", { class: "field actions" }, h("button", { type: "submit" }, "Create gallery"))),
    out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(out);
    const body = { name: name.value.trim() };
    if (pack.value) body.pack = pack.value;
    if (index.value) body.index = index.value;
    if (keep && !keep.checked) body.keep_crops = false;
    try {
      await api("/galleries", { method: "POST", json: body });
      toast(`Gallery ${body.name} created`);
      ctx.go(`#/galleries/${enc(body.name)}`);
    } catch (err) { out.append(alertBox(describeError(err))); }
  });
  return form;
}

/** Threshold and calibration state as the server reports them (GET /galleries/{g}; fields optional). */
function calibrationFacts(g, packs) {
  const pack = packs.find((p) => p.name === g.pack.name);
  const cal = g.calibration;
  const applies = cal && cal.applies !== false;
  const threshold = (applies && (cal.threshold_now ?? cal.threshold)) ?? g.threshold ?? (pack && pack.threshold);
  const facts = [["Threshold", typeof threshold === "number" ? fmtNum(threshold) : "—"]];
  if (cal === undefined) facts.push(["Calibration", "not reported by this server"]);
  else if (cal === null) facts.push(["Calibration", "not calibrated: the pack's threshold"]);
  else {
    const parts = [];
    if (cal.target_fpir !== undefined) parts.push(`target FPIR ${cal.target_fpir}`);
    if (cal.gallery_subjects !== undefined) parts.push(`at ${cal.gallery_subjects} subjects`);
    if (cal.calibrated_at || cal.created_at) parts.push(`on ${fmtDate(cal.calibrated_at || cal.created_at)}`);
    if (cal.applies === false) parts.push("made for another pack: not applied");
    if (cal.recalibrate) parts.push("the gallery has grown: recalibrate");
    facts.push(["Calibration", parts.join(", ") || "calibrated"]);
  }
  return facts;
}

function cropFacts(g) {
  const c = g.crops;
  if (!c || typeof c !== "object") return [];
  return [["Face crops", c.keep ? `kept (${c.stored ?? "?"} of ${c.faces ?? "?"} faces)` : "not kept"]];
}

const PAGE = 24;
const SCAN_CALLS = 10; // a name search on a server without `q` reads at most 10,000 subjects
const SHOW_MAX = 200;

export async function galleryView(ctx, name) {
  const [g, ready] = await Promise.all([api(`/galleries/${enc(name)}`), api("/readyz").catch((e) => e.body || {})]);
  const facts = [
    ["Pack", `${g.pack.name} ${g.pack.version}`], ["Index", `${g.index.kind} (${g.index.faces} vectors)`],
    ["Subjects", String(g.subjects)], ["Faces", String(g.faces)],
    ...calibrationFacts(g, (ready && ready.packs) || []), ...cropFacts(g), ["Created", fmtDate(g.created_at)],
  ];
  const section = h("section", { "aria-labelledby": "g-title" },
    h("p", { class: "crumbs" }, h("a", { href: "#/galleries" }, "Galleries"), " / "),
    h("h1", { id: "g-title" }, g.name),
    h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h("div", { class: "row wrap" },
      ctx.admin ? h("a", { class: "button", href: `#/enroll?gallery=${enc(g.name)}` }, "Enroll photos") : null,
      h("a", { class: "button secondary", href: "#/identify" }, "Identify in this gallery")));
  sessionStorage.setItem("marginface.gallery", g.name);
  section.append(subjectList(ctx, g.name));
  return section;
}

function subjectList(ctx, gallery) {
  const search = h("input", { type: "search", autocomplete: "off", placeholder: "name contains…" });
  const list = h("ul", { class: "subjects", "aria-live": "polite" });
  const status = h("p", { class: "hint" });
  const prev = h("button", { type: "button", class: "secondary small" }, "Previous page");
  const next = h("button", { type: "button", class: "secondary small" }, "Next page");
  // Keyset pagination: the API pages by id (after=…); the stack remembers where each page began.
  const starts = [0];
  let nextAfter = null;

  let serial = 0; // a newer load makes a slower one drop its answer

  function show(subjects, after, text) {
    nextAfter = after;
    clear(list).append(...subjects.map((s) => h("li", {},
      h("a", { href: `#/galleries/${enc(gallery)}/subjects/${s.id}` }, s.name),
      h("span", { class: "badge" }, `${s.faces ?? 0} face${s.faces === 1 ? "" : "s"}`))));
    if (!subjects.length) list.append(h("li", { class: "empty" }, search.value.trim() ? "No subject matches." : "No subject yet."));
    status.textContent = text;
    prev.disabled = starts.length === 1;
    next.disabled = nextAfter === null || nextAfter === undefined;
  }

  async function load() {
    const mine = ++serial;
    const q = search.value.trim();
    const needle = q.toLowerCase();
    const matches = (s) => s.name.toLowerCase().includes(needle);
    const base = `/galleries/${enc(gallery)}/subjects`;
    try {
      const params = new URLSearchParams({ limit: String(PAGE), after: String(starts[starts.length - 1]) });
      if (q) params.set("q", q);
      const page = await api(`${base}?${params}`);
      if (mine !== serial) return;
      const total = `${page.total} subject${page.total === 1 ? "" : "s"} in the gallery`;
      if (!q || page.subjects.every(matches)) { show(page.subjects, page.next_after, `Page ${starts.length} · ${total}`); return; }
      // This server does not filter by name: scan here, 1000 subjects a call, SCAN_CALLS calls at most.
      const found = [];
      let cursor = 0, scanned = 0;
      for (let call = 0; call < SCAN_CALLS && cursor !== null; call++) {
        const chunk = await api(`${base}?limit=1000&after=${cursor}`);
        scanned += chunk.subjects.length;
        found.push(...chunk.subjects.filter(matches));
        cursor = chunk.next_after ?? null;
      }
      if (mine !== serial) return;
      starts.length = 1;
      const partial = cursor !== null ? ` (searched the first ${scanned} only)` : "";
      show(found.slice(0, SHOW_MAX), null,
        `${found.length} match${found.length === 1 ? "" : "es"}${found.length > SHOW_MAX ? `, first ${SHOW_MAX} shown` : ""} · ${total}${partial}`);
    } catch (err) {
      if (mine === serial) clear(list).append(alertBox(describeError(err)));
    }
  }
  prev.addEventListener("click", () => { if (starts.length > 1) { starts.pop(); load(); } });
  next.addEventListener("click", () => { if (nextAfter) { starts.push(nextAfter); load(); } });
  let timer = 0;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { starts.length = 1; load(); }, 250);
  });
  const create = ctx.admin ? newSubjectForm(ctx, gallery) : null;
  load();
  return h("section", { "aria-labelledby": "s-title" },
    h("h2", { id: "s-title" }, "Subjects"),
    h("div", { class: "row wrap" }, field("Search subjects", search), create),
    list, h("div", { class: "row" }, prev, next, status));
}

function newSubjectForm(ctx, gallery) {
  const name = h("input", { required: true, maxlength: 256, autocomplete: "off" });
  const out = h("div", {});
  const form = h("form", { class: "row wrap", "aria-label": "New subject" },
    field("New subject", name), h("div", { class: "field actions" }, h("button", { type: "submit", class: "secondary" }, "Add subject")), out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(out);
    try {
      const s = await api(`/galleries/${enc(gallery)}/subjects`, { method: "POST", json: { name: name.value } });
      ctx.go(`#/galleries/${enc(gallery)}/subjects/${s.id}`);
    } catch (err) { out.append(alertBox(describeError(err))); }
  });
  return form;
}
