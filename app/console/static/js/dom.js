// DOM helpers. Data is only ever set as text (textContent / attribute values), never parsed as HTML.

/** h("div", {class: "x", onclick: fn}, "text", child, …) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "value" || name === "checked" || name === "disabled" || name === "hidden") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let uid = 0;
export const newId = (prefix = "f") => `${prefix}-${++uid}`;

/** A labelled input: <label for>…</label><input id> wrapped in a .field div. */
export function field(label, input, hint) {
  input.id ||= newId();
  const parts = [h("label", { for: input.id }, label), input];
  if (hint) {
    const hintId = newId("hint");
    input.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** An error/notice line announced to screen readers. */
export function alertBox(message, kind = "error") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
}

export function describeError(err) {
  if (err && err.code) return `${err.message} (${err.code})`;
  return String(err && err.message ? err.message : err);
}

/** Modal confirmation with <dialog> (keyboard: Tab, Enter, Esc); resolves true/false. */
export function confirmDialog(title, text, confirmLabel = "Delete") {
  return new Promise((resolve) => {
    const titleId = newId("dlg");
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const ok = h("button", { type: "button", class: "danger" }, confirmLabel);
    const dlg = h("dialog", { "aria-labelledby": titleId, class: "confirm" },
      h("h2", { id: titleId }, title), h("p", {}, text), h("div", { class: "row end" }, cancel, ok));
    const finish = (answer) => { dlg.close(); dlg.remove(); resolve(answer); };
    cancel.addEventListener("click", () => finish(false));
    ok.addEventListener("click", () => finish(true));
    dlg.addEventListener("cancel", (e) => { e.preventDefault(); finish(false); });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

let toastTimer = 0;
export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

export function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function fmtNum(x, digits = 3) {
  return typeof x === "number" ? x.toFixed(digits) : "—";
}
