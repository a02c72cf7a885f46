// Entry point: session (sign-in / sign-out), navigation by URL fragment, and the views.
import { api, session, setUnauthorizedHandler } from "./api.js";
import { alertBox, clear, describeError, field, h } from "./dom.js";
import { galleriesView, galleryView } from "./views/galleries.js";
import { subjectView } from "./views/subjects.js";
import { enrollView } from "./views/enroll.js";
import { identifyView, verifyView } from "./views/playground.js";
import { keysView } from "./views/keys.js";
import { systemView } from "./views/system.js";
import { camerasView } from "./views/cameras.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
// me = {auth, admin, name, prefix} from GET /keys/me once signed in; null while signed out.
const state = { me: null, notice: null };

const ROUTES = [
  [/^#\/galleries\/([^/]+)\/subjects\/(\d+)$/, (m) => subjectView(ctx(), decodeURIComponent(m[1]), Number(m[2]))],
  [/^#\/galleries\/([^/]+)$/, (m) => galleryView(ctx(), decodeURIComponent(m[1]))],
  [/^#\/galleries$/, () => galleriesView(ctx())],
  [/^#\/enroll(?:\?(.*))?$/, (m) => enrollView(ctx(), new URLSearchParams(m[1] || ""))],
  [/^#\/identify$/, () => identifyView(ctx())],
  [/^#\/verify$/, () => verifyView(ctx())],
  [/^#\/keys$/, () => keysView(ctx())],
  [/^#\/system$/, () => systemView(ctx())],
  [/^#\/cameras$/, () => camerasView(ctx())],
];

function ctx() {
  return { me: state.me, admin: Boolean(state.me && state.me.admin), go: (hash) => { location.hash = hash; }, refresh: render };
}

function showChrome() {
  const signedIn = Boolean(state.me);
  nav.hidden = !signedIn;
  who.hidden = !signedIn;
  for (const link of nav.querySelectorAll("[data-admin]")) link.hidden = !(state.me && state.me.admin);
  if (!signedIn) return;
  const label = document.getElementById("who-label");
  label.textContent = state.me.auth ? `${state.me.name} · ${state.me.admin ? "admin" : "plain"} key` : "auth off";
  document.getElementById("signout").hidden = !state.me.auth;
}

let generation = 0; // a newer render (or a sign-out) makes a slower one drop its result

async function render() {
  const mine = ++generation;
  showChrome();
  if (!state.me) return renderSignIn();
  const hash = location.hash || "#/galleries";
  const route = ROUTES.find(([re]) => re.test(hash));
  if (!route) { location.hash = "#/galleries"; return; }
  for (const link of nav.querySelectorAll("a")) {
    const current = hash.startsWith(`#/${link.dataset.view}`);
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  clear(main);
  main.append(h("p", { class: "loading" }, "Loading…"));
  let view;
  try {
    view = await route[1](hash.match(route[0]));
  } catch (err) {
    view = h("section", {}, h("h1", {}, "Something went wrong"), alertBox(describeError(err)));
  }
  if (mine !== generation || !state.me) return;
  clear(main).append(view);
  const heading = main.querySelector("h1");
  document.title = `${heading ? heading.textContent : "Console"} · MarginFace`;
}

function renderSignIn() {
  ++generation;
  document.title = "Sign in · MarginFace";
  // The input has no name: even if the form were ever submitted natively, the key would not be sent.
  const input = h("input", { type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const error = h("div", { "aria-live": "assertive" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card signin", method: "post", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", {}, "Paste an API key (`marginface keys create`). It is kept for this tab only and sent in the Authorization header."),
    field("API key", input),
    error,
    h("div", { class: "row" }, button));
  if (state.notice) error.append(alertBox(state.notice));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(error);
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    try {
      state.me = await api("/keys/me", { key });
      session.key = key;
      state.notice = null;
      input.value = "";
      await render();
      main.focus();
    } catch (err) {
      const text = err.status === 401 ? "That key is unknown or revoked." : describeError(err);
      error.append(alertBox(text));
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  clear(main).append(form);
  input.focus();
}

function signOut(notice = null) {
  session.key = null;
  state.me = null;
  state.notice = notice;
  history.replaceState(null, "", "#/");
  render();
}

async function start() {
  document.getElementById("signout").addEventListener("click", () => signOut());
  setUnauthorizedHandler(() => signOut("Your key was refused (revoked?). Sign in again."));
  window.addEventListener("hashchange", render);
  try {
    // A stored key (this tab), or a server running with --no-auth, signs in without asking.
    const me = await api("/keys/me", { key: session.key || "" });
    if (me.auth === false || session.key) state.me = me;
  } catch {
    session.key = null;
  }
  render();
}

start();
