// The API client: the key lives in sessionStorage (this tab only) and travels in the Authorization
// header; never in a URL, never logged. Images from the API come back as blob: URLs.

const KEY = "marginface.key";

export class ApiFailure extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
};

// Called when a request answers 401 with a key in use (revoked meanwhile): main.js signs out.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) { onUnauthorized = handler; }

function headers(extra = {}, key = session.key) {
  const out = { ...extra };
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const err = body && body.error ? body.error : {};
  const code = err.code || `http_${response.status}`;
  return new ApiFailure(response.status, code, err.message || response.statusText || code, body);
}

/** Call the API. `json` sends a JSON body, `form` a FormData; answers the parsed JSON. */
export async function api(path, { method = "GET", json, form, key, signal } = {}) {
  const init = { method, headers: headers({}, key ?? session.key), signal, cache: "no-store" };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const fail = await failure(response);
    if (response.status === 401 && session.key && key === undefined) onUnauthorized(fail);
    throw fail;
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** An image from the API as a blob: URL (the caller revokes it), or null when there is none (404). */
export async function imageURL(path, signal) {
  const response = await fetch(path, { headers: headers(), signal, cache: "no-store" });
  if (response.status === 404) return null;
  if (!response.ok) throw await failure(response);
  return URL.createObjectURL(await response.blob());
}

export const enc = encodeURIComponent;
