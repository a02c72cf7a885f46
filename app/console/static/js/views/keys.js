// Keys (admin): list, create (the token is shown once, here), revoke.
import { api } from "../api.js";
import { alertBox, clear, confirmDialog, describeError, field, fmtDate, h, toast } from "../dom.js";

export async function keysView(ctx) {
  const section = h("section", { "aria-labelledby": "keys-title" }, h("h1", { id: "keys-title" }, "API keys"));
  if (!ctx.admin) {
    section.append(alertBox("Managing keys needs an admin key.", "info"));
    return section;
  }
  const { keys } = await api("/keys");
  const name = h("input", { required: true, maxlength: 128, autocomplete: "off" });
  const admin = h("input", { type: "checkbox", id: "key-admin" });
  const shown = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card", "aria-label": "New key" },
    h("h2", {}, "New key"),
    h("div", { class: "row wrap" }, field("Name", name, "who or what will use it"),
      h("div", { class: "field check actions" }, admin, h("label", { for: "key-admin" }, "Admin (may write and manage keys)")),
      h("div", { class: "field actions" }, h("button", { type: "submit" }, "Create key"))),
    shown);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(shown);
    try {
      const r = await api("/keys", { method: "POST", json: { name: name.value.trim(), admin: admin.checked } });
      const token = h("output", { class: "token", "aria-label": "New key token" }, r.token);
      const copy = h("button", { type: "button", class: "secondary small" }, "Copy");
      copy.addEventListener("click", async () => {
        try { await navigator.clipboard.writeText(r.token); toast("Copied"); } catch { toast("Select the key and copy it"); }
      });
      shown.append(h("div", { class: "notice ok" },
        h("p", {}, `Key “${r.key.name}” created. Copy it now: it is not shown again.`), h("div", { class: "row" }, token, copy)));
      name.value = "";
      tbody.prepend(row(r.key));
    } catch (err) { shown.append(alertBox(describeError(err))); }
  });
  const tbody = h("tbody", {}, [...keys].reverse().map(row));
  function row(k) {
    const state = h("td", {}, k.active ? "active" : `revoked ${fmtDate(k.revoked_at)}`);
    const action = h("td", {});
    if (k.active) {
      action.append(h("button", {
        type: "button", class: "danger small", "aria-label": `Revoke key ${k.name}`,
        onclick: async (e) => {
          const ok = await confirmDialog(`Revoke key “${k.name}”?`, "Requests with it are refused from now on.", "Revoke");
          if (!ok) return;
          try {
            const r = await api(`/keys/${k.id}`, { method: "DELETE" });
            state.textContent = `revoked ${fmtDate(r.key.revoked_at)}`;
            e.target.remove();
            toast(`Key ${k.name} revoked`);
          } catch (err) { toast(describeError(err)); }
        },
      }, "Revoke"));
    }
    return h("tr", { class: k.active ? "" : "revoked" },
      h("td", { class: "num" }, String(k.id)), h("th", { scope: "row" }, k.name, ctx.me.prefix === k.prefix ? h("span", { class: "badge" }, "this key") : null), h("td", {}, h("code", {}, `${k.prefix}…`)),
      h("td", {}, k.admin ? "admin" : "plain"), h("td", {}, fmtDate(k.created_at)), state, action);
  }
  section.append(form, h("div", { class: "table-wrap" }, h("table", {},
    h("caption", { class: "sr-only" }, "API keys"),
    h("thead", {}, h("tr", {}, ["Id", "Name", "Prefix", "Role", "Created", "State"].map((t) => h("th", { scope: "col" }, t)),
      h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
    tbody)));
  return section;
}
