// Cameras: the place for camera monitors and their events (the cameras feature adds /monitors and
// /events/stream); until the server has them, this page says so.
import { api } from "../api.js";
import { alertBox, h } from "../dom.js";

export async function camerasView() {
  const section = h("section", { "aria-labelledby": "cam-title" }, h("h1", { id: "cam-title" }, "Cameras"));
  try {
    const body = await api("/monitors");
    const monitors = body.monitors || [];
    section.append(h("p", {}, `${monitors.length} camera monitor${monitors.length === 1 ? "" : "s"}.`),
      h("ul", {}, monitors.map((m) => h("li", {}, `${m.name ?? m.id}${m.state ? ` · ${m.state}` : ""}`))));
  } catch (err) {
    if (err.status === 404) section.append(alertBox("Camera monitors and events are not available on this server yet.", "info"));
    else section.append(alertBox(err.message));
  }
  return section;
}
