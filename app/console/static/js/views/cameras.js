// Cameras: camera monitors (admin) and their events (any key): recent ones, then live from
// /events/stream read with fetch() so the key stays in the Authorization header (EventSource cannot).
import { api, enc, imageURL, session } from "../api.js";
import { alertBox, clear, fmtDate, fmtNum, h } from "../dom.js";

const RECENT = 20;

export async function camerasView(ctx) {
  const section = h("section", { "aria-labelledby": "cam-title" }, h("h1", { id: "cam-title" }, "Cameras"));
  let events;
  try {
    events = (await api(`/events?limit=${RECENT}`)).events || [];
  } catch (err) {
    if (err.status === 404) {
      section.append(alertBox("Camera monitors and events are not available on this server.", "info"));
      return section;
    }
    throw err;
  }
  if (ctx.admin) section.append(await monitorsTable());
  const list = h("ul", { class: "events", "aria-live": "polite", "aria-label": "Events, newest first" });
  for (const event of events) list.append(eventItem(event));
  if (!events.length) list.append(h("li", { class: "empty" }, "No event yet."));
  const live = h("input", { type: "checkbox", id: "events-live" });
  const status = h("span", { class: "hint" });
  let stop = null;
  live.addEventListener("change", () => {
    if (live.checked) stop = follow(list, events.length ? events[0].seq : undefined, status);
    else if (stop) { stop(); stop = null; status.textContent = ""; }
  });
  // leaving the page ends the stream
  window.addEventListener("hashchange", () => { if (stop) stop(); }, { once: true });
  section.append(h("h2", {}, "Events"),
    h("div", { class: "row" }, live, h("label", { for: "events-live" }, "Follow live"), status), list);
  return section;
}

async function monitorsTable() {
  const { monitors } = await api("/monitors");
  const wrap = h("section", {}, h("h2", {}, "Monitors"));
  if (!monitors.length) {
    wrap.append(h("p", { class: "empty" }, "No camera monitor. Create one with the API (POST /monitors) or `marginface monitors`."));
    return wrap;
  }
  wrap.append(h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Name", "Gallery", "State", "FPS", "Owner", "Last error"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, monitors.map((m) => h("tr", {},
      h("th", { scope: "row" }, m.name), h("td", {}, m.gallery ?? "—"), h("td", {}, (m.health && m.health.state) || "—"),
      h("td", { class: "num" }, fmtNum(m.health && m.health.fps, 1)), h("td", {}, m.owner ?? "—"),
      h("td", {}, (m.health && m.health.last_error) || "—")))))));
  return wrap;
}

function eventItem(e) {
  const who = e.kind === "recognized" ? (e.subject ?? `subject ${e.subject_id}`) : "unknown";
  const thumb = h("div", { class: "thumb small", "aria-hidden": "true" });
  if (e.snapshot_url && e.snapshot_url.startsWith("/events/")) {
    imageURL(e.snapshot_url).then((url) => {
      if (url) clear(thumb).append(h("img", { src: url, alt: `snapshot of ${who}` }));
    }).catch(() => {});
  }
  return h("li", { class: `event ${e.kind}` }, thumb,
    h("div", {}, h("strong", {}, who), e.similarity != null ? ` ${fmtNum(e.similarity, 2)}` : "",
      h("div", { class: "hint" }, `${e.monitor} · ${e.gallery} · ${fmtDate(e.first_seen)}`)));
}

/** Read the SSE stream with fetch(); returns a function that stops it. */
function follow(list, after, status) {
  const abort = new AbortController();
  (async () => {
    status.textContent = "connecting…";
    const url = after !== undefined ? `/events/stream?after=${enc(String(after))}` : "/events/stream";
    try {
      const response = await fetch(url, { headers: { Authorization: `Bearer ${session.key}` }, signal: abort.signal });
      if (!response.ok) { status.textContent = `stream refused (${response.status})`; return; }
      status.textContent = "live";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (!data) continue;
          const empty = list.querySelector(".empty");
          if (empty) empty.remove();
          list.prepend(eventItem(JSON.parse(data)));
        }
      }
      status.textContent = "stream ended";
    } catch (err) {
      if (err.name !== "AbortError") status.textContent = `stream error: ${err.message}`;
    }
  })();
  return () => abort.abort();
}
