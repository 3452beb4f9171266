// The console's shell: the sidebar, the hash router (#/page/arg) and the admin key form. A page
// is a module with render(container, arg); an AuthError from it brings the key form back.
import { admin, AuthError, ApiError, keys, el } from "./api.js";
import * as playground from "./playground.js";
import * as providers from "./providers.js";
import * as usage from "./usage.js";
import * as requests from "./requests.js";
import * as units from "./units.js";

const PAGES = { playground, providers, usage, requests, units };
const main = document.getElementById("main");

function current() {
  const [, page, ...rest] = location.hash.split("/");
  return { name: PAGES[page] ? page : "playground", arg: rest.length ? decodeURIComponent(rest.join("/")) : null };
}

function showKeybox() {
  const box = document.getElementById("keybox");
  const k = keys.admin();
  box.replaceChildren(
    el("div", {}, k === null ? "no admin key yet" : k === "" ? "no admin key (gateway without auth)" : "admin key set for this tab"),
    k === null ? "" : el("button", { class: "quiet", id: "forget-key", onclick: () => { keys.forget(); render(); } }, "Forget keys"));
}

// The key form; message says why it is back (a refused key), null on the first visit.
function showKeyForm(message) {
  const input = el("input", { type: "password", id: "admin-key", autocomplete: "off", size: 40,
    placeholder: "the admin key (auth.admin_key or $MOONGATE_ADMIN_KEY)" });
  const form = el("form", { class: "panel", id: "key-form", onsubmit: async (ev) => {
    ev.preventDefault();
    keys.setAdmin(input.value.trim());
    // check the key on a small admin read before any page shows, so a wrong one is told at once
    try {
      await admin("/admin/breakers");
    } catch (e) {
      if (e instanceof AuthError) return refused(e);
      throw e;
    }
    render();
  } },
  el("label", { for: "admin-key" }, "Admin key"),
  el("div", { class: "row" }, input, el("button", { type: "submit" }, "Open the console")),
  el("p", { class: "lead" }, "Kept in this tab only (sessionStorage) and sent as Authorization: Bearer to /admin/*. ",
    "Leave it empty if the gateway runs without auth."));
  main.replaceChildren(
    el("h1", {}, "moongate console"),
    message ? el("div", { class: "message error", id: "auth-error", role: "alert" }, message) : "",
    form);
  showKeybox();
  input.focus();
}

// A 401/403 on an admin call: drop the key and ask again, saying why; no page data stays on screen.
function refused(e) {
  const had = keys.admin();
  keys.forgetAdmin();
  showKeyForm(had
    ? `The gateway refused this admin key (${e.status}: ${e.message}). Check it and type it again.`
    : `This gateway needs its admin key (${e.status}: ${e.message}).`);
}

let generation = 0;

async function render() {
  const { name, arg } = current();
  for (const a of document.querySelectorAll(".sidebar a")) a.classList.toggle("active", a.dataset.page === name);
  if (keys.admin() === null) return showKeyForm(null);
  showKeybox();
  const mine = ++generation;
  const view = el("div", { id: `page-${name}` });
  main.replaceChildren(view);
  try {
    await PAGES[name].render(view, arg);
  } catch (e) {
    if (mine !== generation) return;   // the user has moved on
    if (e instanceof AuthError) return refused(e);
    const text = e instanceof ApiError ? `${e.status}${e.code ? ` ${e.code}` : ""}: ${e.message}` : String(e && e.message || e);
    view.append(el("div", { class: "message error", role: "alert" }, text));
  }
}

window.addEventListener("hashchange", render);
render();
