// System: readiness, packs and their providers, a few metrics from /metrics, gallery sizes.
import { api } from "../api.js";
import { alertBox, fmtNum, h } from "../dom.js";

/** Prometheus text → [{name, labels, value}] (only what this page reads). */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const pair of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Providers as the pack reports them: a list, or {detector: [...], recogniser: [...]}. */
function providersText(providers) {
  if (!providers) return "—";
  if (Array.isArray(providers)) return providers.join(", ");
  return Object.entries(providers).map(([part, list]) => `${part}: ${[].concat(list).join(", ")}`).join("; ");
}

const sum = (rows, name) => rows.filter((r) => r.name === name).reduce((a, r) => a + r.value, 0);

export async function systemView() {
  const ready = await api("/readyz").catch((e) => e.body || { status: "unreachable", packs: [], problems: [e.message] });
  const metrics = parseMetrics(await api("/metrics").catch(() => ""));
  const section = h("section", { "aria-labelledby": "sys-title" }, h("h1", { id: "sys-title" }, "System"));
  section.append(h("p", { class: `status ${ready.status === "ready" ? "ok" : "bad"}` }, `Readiness: ${ready.status}`));
  if (ready.problems && ready.problems.length) section.append(h("ul", {}, ready.problems.map((p) => h("li", {}, p))));
  section.append(h("h2", {}, "Model packs"), h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Pack", "Version", "Embedding", "Threshold", "Providers"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, (ready.packs || []).map((p) => h("tr", {},
      h("th", { scope: "row" }, p.name), h("td", {}, p.version), h("td", { class: "num" }, String(p.embedding_size)),
      h("td", { class: "num" }, fmtNum(p.threshold)), h("td", {}, providersText(p.providers))))))));
  const requests = sum(metrics, "marginface_request_seconds_count");
  const errors = metrics.filter((r) => r.name === "marginface_request_seconds_count" && /^[45]/.test(r.labels.status || ""))
    .reduce((a, r) => a + r.value, 0);
  const embedded = sum(metrics, "marginface_faces_embedded_total");
  const busy = sum(metrics, "marginface_rejected_busy_total");
  const facts = [["Requests", requests], ["Error answers (4xx/5xx)", errors], ["Faces embedded", embedded], ["Refused as busy", busy]];
  section.append(h("h2", {}, "Since start"), h("dl", { class: "facts" },
    facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v))))));
  const { galleries } = await api("/galleries").catch(() => ({ galleries: [] }));
  if (galleries.length) {
    section.append(h("h2", {}, "Gallery sizes"), h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Gallery"), h("th", { scope: "col", class: "num" }, "Subjects"),
        h("th", { scope: "col", class: "num" }, "Faces"), h("th", { scope: "col" }, "Pack"))),
      h("tbody", {}, galleries.map((g) => h("tr", {}, h("th", { scope: "row" }, g.name),
        h("td", { class: "num" }, String(g.subjects)), h("td", { class: "num" }, String(g.faces)),
        h("td", {}, `${g.pack.name} ${g.pack.version}`)))))));
  }
  if (!metrics.length) section.append(alertBox("Metrics are not available.", "info"));
  return section;
}
