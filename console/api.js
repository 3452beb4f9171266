// The console's calls to the gateway: /admin/* with the admin key, /v1/* with a tenant's API key
// (the admin key opens /admin only). Both keys live in sessionStorage: gone when the tab closes.
const ADMIN_KEY = "moongate.admin_key";
const API_KEY = "moongate.api_key";

// A 401 or 403 from an /admin route: the key is missing or wrong.
export class AuthError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Any other answer that is not a 2xx, with the gateway's OpenAI-shaped error.
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const keys = {
  // null: never asked; "": asked, and the gateway runs without auth
  admin: () => sessionStorage.getItem(ADMIN_KEY),
  setAdmin: (k) => sessionStorage.setItem(ADMIN_KEY, k),
  api: () => sessionStorage.getItem(API_KEY) || "",
  setApi: (k) => sessionStorage.setItem(API_KEY, k),
  forgetAdmin: () => sessionStorage.removeItem(ADMIN_KEY),
  forget: () => { sessionStorage.removeItem(ADMIN_KEY); sessionStorage.removeItem(API_KEY); },
};

function headers(key, extra) {
  const h = { ...extra };
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

async function errorOf(r) {
  let message = `HTTP ${r.status}`;
  let code = null;
  try {
    const body = await r.json();
    if (body && body.error) {
      message = body.error.message || message;
      code = body.error.code || null;
    }
  } catch { /* not JSON */ }
  return { message, code };
}

// admin(path, {method}) -> the decoded JSON of an /admin route (or /metrics); AuthError on 401/403.
export async function admin(path, { method = "GET" } = {}) {
  const r = await fetch(path, { method, headers: headers(keys.admin()) });
  if (r.ok) return r.json();
  const { message, code } = await errorOf(r);
  if (r.status === 401 || r.status === 403) throw new AuthError(r.status, message, code);
  throw new ApiError(r.status, message, code);
}

// v1(path, init) -> the fetch Response of a /v1 route, sent with the tenant's API key; the caller
// reads the body (a stream for chats). Non-2xx answers become ApiError.
export async function v1(path, init = {}) {
  const r = await fetch(path, { ...init, headers: headers(keys.api(), init.headers) });
  if (r.ok) return r;
  const { message, code } = await errorOf(r);
  throw new ApiError(r.status, message, code);
}

// Small DOM helper: el("td", {class: "num"}, "12") -> <td class="num">12</td>. Children are text
// unless they are nodes, so nothing from the API is ever parsed as HTML.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "style") Object.assign(e.style, v);   // CSSOM: allowed by the page's CSP, unlike style=""
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// table(columns, rows, {empty, onclick}): columns are [title, (row) -> cell, "num"?].
export function table(columns, rows, { empty = "nothing yet", onclick } = {}) {
  const head = el("tr", {}, columns.map(([t, , c]) => el("th", { class: c }, t)));
  const body = rows.length
    ? rows.map((r) => el("tr", { class: onclick ? "link" : null, onclick: onclick && (() => onclick(r)) },
      columns.map(([, f, c]) => el("td", { class: c }, f(r)))))
    : [el("tr", {}, el("td", { colspan: columns.length, class: "empty" }, empty))];
  return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
}

export const fmt = {
  ms: (v) => (v === null || v === undefined ? "" : `${Number(v).toFixed(v < 10 ? 2 : 1)} ms`),
  int: (v) => (v === null || v === undefined ? "" : Number(v).toLocaleString("en-US")),
  cost: (v) => (v ? `$${Number(v).toFixed(6)}` : ""),
  time: (unix) => (unix ? new Date(unix * 1000).toLocaleTimeString("en-GB", { hour12: false }) : ""),
  ago: (unix) => {
    if (!unix) return "";
    const s = Math.max(0, Math.round(Date.now() / 1000 - unix));
    return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  },
};

export function badge(text, kind = text) {
  return el("span", { class: `badge ${kind}` }, text);
}
