// The search page: sign-in, search as you type, filters in the URL, keyboard, status.
import { SignInNeeded, call, setToken, takeTokenFromFragment, upload } from "./api.js";
import { card, wikilink } from "./render.js";

const $ = (id) => document.getElementById(id);
const KINDS = ["note", "image", "pdf"];
const FILTERS = ["path", "tag", "after", "before"];
const HELP = "Run `vaultlens open --vault PATH` to open this page signed in, or paste the " +
  "token that `vaultlens token --vault PATH` prints.";
const state = { q: "", kind: "", path: "", tag: "", after: "", before: "" };
let hits = [];
let selected = -1;
let vault = "";
let visual = false;
let seq = 0;
let controller = null;
let timer = 0;

function readUrl() {
  const params = new URLSearchParams(location.search);
  for (const key of Object.keys(state)) state[key] = params.get(key) || "";
  $("q").value = state.q;
  for (const f of FILTERS) $(`f-${f}`).value = state[f];
}

function writeUrl(push) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v) params.set(k, v);
  const url = params.toString() ? `?${params}` : location.pathname;
  if (url === location.search || (url === location.pathname && !location.search)) return;
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
}

function say(text) { $("message").textContent = text; }

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 2500);
}

function signIn(reason) {
  $("signin").hidden = false;
  $("signin-message").textContent = (reason === "wrong"
    ? "The token is wrong (the daemon may have made a new one). " : "You are not signed in. ") + HELP;
  $("token-input").focus();
}

function failed(err) {
  if (err instanceof SignInNeeded) signIn(err.message);
  else if (err.name !== "AbortError") say(`Search failed: ${err.message}`);
}

function show(list, note) {
  hits = list;
  selected = -1;
  const advanced = localStorage.getItem("vaultlens-advanced-uri") === "1";
  const ol = $("results");
  ol.replaceChildren(...list.map((h, i) => card(h, i, vault, advanced, similar)));
  say(note ?? (state.q && !list.length ? "No hits." : ""));
}

function chips(counts) {
  const box = $("kind-chips");
  const all = Object.values(counts).reduce((a, b) => a + b, 0);
  const make = (kind, label, n) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "chip" + (state.kind === kind ? " on" : "");
    b.textContent = `${label} ${n}`;
    b.setAttribute("aria-pressed", String(state.kind === kind));
    b.dataset.kind = kind;
    b.addEventListener("click", () => { state.kind = state.kind === kind ? "" : kind; search(true); });
    return b;
  };
  box.replaceChildren(make("", "All", all),
    ...KINDS.map((k) => make(k, { note: "Notes", image: "Screenshots", pdf: "PDF pages" }[k], counts[k] || 0)));
  const active = $("filter-chips");
  active.replaceChildren(...FILTERS.filter((f) => state[f]).map((f) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "chip on";
    b.textContent = `${f}: ${state[f]} ×`;
    b.setAttribute("aria-label", `Remove the ${f} filter`);
    b.addEventListener("click", () => { state[f] = ""; $(`f-${f}`).value = ""; search(true); });
    return b;
  }));
}

async function search(push = false) {
  writeUrl(push);
  const mine = ++seq;
  if (controller) controller.abort();
  controller = new AbortController();
  if (!state.q.trim()) { chips({}); show([], ""); return; }
  const body = { query: state.q, k: 50 };
  for (const f of FILTERS) if (state[f]) body[f] = state[f];
  try {
    const all = await call("/api/search", body, controller.signal);
    let list = all.results;
    if (state.kind) list = (await call("/api/search", { ...body, kind: state.kind, k: 30 },
      controller.signal)).results;
    if (mine !== seq) return;  // a newer search is on its way: this answer is stale
    const counts = {};
    for (const h of all.results) counts[h.kind] = (counts[h.kind] || 0) + 1;
    chips(counts);
    show(list.slice(0, 30), all.partial ? "The model is still loading: keyword hits only." : undefined);
  } catch (err) {
    if (mine === seq) failed(err);
  }
}

async function similar(path) {
  try {
    const answer = await call("/api/similar", { path, k: 20 });
    show(answer.results, `Similar to ${path}`);
  } catch (err) { failed(err); }
}

async function byPicture(file) {
  if (!visual) {
    say("Searching by picture needs a visual model (Qwen3-VL). This daemon runs a text-only " +
      "model: use \"Find similar\" on a screenshot instead.");
    return;
  }
  try {
    const answer = await upload("/api/similar", file);
    show(answer.results, `Like the picture ${file.name || "you pasted"}`);
  } catch (err) { failed(err); }
}

function select(i) {
  const items = $("results").children;
  if (!items.length) return;
  selected = Math.max(0, Math.min(items.length - 1, i));
  for (const li of items) li.classList.remove("selected");
  items[selected].classList.add("selected");
  items[selected].focus();
}

function typing(e) {
  const t = e.target;
  return t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement;
}

function keys(e) {
  if (e.key === "/" && !typing(e)) { e.preventDefault(); $("q").focus(); $("q").select(); return; }
  if (e.key === "ArrowDown") { e.preventDefault(); select(selected + 1); return; }
  if (e.key === "ArrowUp") { e.preventDefault(); if (selected <= 0) $("q").focus(); else select(selected - 1); return; }
  if (e.key === "Enter" && selected >= 0 && !typing(e)) {
    e.preventDefault();
    $("results").children[selected].querySelector("a.open").click();
    return;
  }
  if (e.key === "c" && selected >= 0 && !typing(e) && !e.ctrlKey && !e.metaKey) {
    const link = wikilink(hits[selected]);
    (navigator.clipboard ? navigator.clipboard.writeText(link) : Promise.reject(new Error()))
      .then(() => toast(`Copied ${link}`), () => toast(link));
  }
}

async function status() {
  let wait = 10000;
  try {
    const s = await call("/api/status");
    vault = s.vault.split(/[\\/]/).filter(Boolean).pop() || "";
    visual = s.visual_search;
    $("signin").hidden = true;
    const bar = $("progress");
    const busy = s.state ? s.state !== "idle" : (s.indexing || s.runs === 0);
    const c = s.counts;
    const counts = `${c.files_indexed || 0} files: ${c.items_section || 0} passages, ` +
      `${c.items_image || 0} screenshots, ${c.items_page || 0} PDF pages`;
    let text = `${s.model.split(":").slice(0, 2).join(":")} · visual search ${visual ? "on" : "off"} · ${counts}`;
    if (busy) {
      const { done, total, current } = s.progress;
      bar.hidden = false;
      bar.max = Math.max(total, 1);
      bar.value = done;
      text = `Indexing ${done}/${total}${current ? ` · ${current}` : ""} · ${text}`;
      wait = 1000;
    } else {
      bar.hidden = true;
    }
    $("status-text").textContent = text;
    $("skipped").hidden = !s.failures.length;
    $("skipped-summary").textContent = `${s.failures.length} file(s) not indexed`;
    $("skipped-list").replaceChildren(...s.failures.map((f) => {
      const li = document.createElement("li");
      li.textContent = `${f.path}: ${f.reason || f.status}`;
      return li;
    }));
  } catch (err) {
    if (err instanceof SignInNeeded) { signIn(err.message); $("status-text").textContent = "Not signed in"; }
    else $("status-text").textContent = `The daemon does not answer (${err.message})`;
    wait = 3000;
  }
  setTimeout(status, wait);
}

function start() {
  takeTokenFromFragment();
  readUrl();
  $("q").addEventListener("input", () => {
    state.q = $("q").value;
    clearTimeout(timer);
    timer = setTimeout(() => search(false), 180);
  });
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search(true); });
  for (const f of FILTERS) {
    $(`f-${f}`).addEventListener("change", () => { state[f] = $(`f-${f}`).value.trim(); search(true); });
  }
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("token-input").value);
    $("token-input").value = "";
    $("signin").hidden = true;
    status();
    search(false);
  });
  $("settings-button").addEventListener("click", () => {
    const s = $("settings");
    s.hidden = !s.hidden;
    $("settings-button").setAttribute("aria-expanded", String(!s.hidden));
  });
  const adv = $("advanced-uri");
  adv.checked = localStorage.getItem("vaultlens-advanced-uri") === "1";
  adv.addEventListener("change", () => {
    localStorage.setItem("vaultlens-advanced-uri", adv.checked ? "1" : "0");
    show(hits, $("message").textContent);
  });
  window.addEventListener("popstate", () => { readUrl(); search(false); });
  document.addEventListener("keydown", keys);
  document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dropping"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dropping");
    const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (file) byPicture(file);
  });
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
    if (item) { e.preventDefault(); byPicture(item.getAsFile()); }
  });
  status();
  if (state.q) search(false);
}

start();
