// The search page: sign-in, search as you type, the state in the address, keyboard.
import { SignInNeeded, call, setToken, takeTokenFromFragment, upload } from "./api.js";
import { card, wikilink } from "./render.js";
import { KINDS, MAX_SHOWN, PAGE, cutQuery, find, partialNote } from "./search.js";
import { watchStatus } from "./status.js";

const $ = (id) => document.getElementById(id);
const FILTERS = ["path", "tag", "after", "before"];
const LABELS = { "": "All", note: "Notes", image: "Screenshots", pdf: "PDF pages" };
const HELP = "Run `vaultlens open --vault PATH` to open this page signed in, or paste the " +
  "token that `vaultlens token --vault PATH` prints.";
const MAX_QUERY = Number(document.querySelector("meta[name='vaultlens-max-query-chars']")
  ?.content) || 1000;
// what the address holds: a search (q, kind, filters) or a find-similar (similar), not both
const state = { q: "", kind: "", path: "", tag: "", after: "", before: "", similar: "" };
let limit = PAGE;
let hits = [];
let selected = -1;
let vault = "";
let visual = false;
let seq = 0;
let controller = null;
let timer = 0;
let pushNext = false;  // the next search leaves a find-similar: a new history entry

function readUrl() {
  const params = new URLSearchParams(location.search);
  for (const key of Object.keys(state)) state[key] = params.get(key) || "";
  if (state.similar) for (const key of ["q", "kind", ...FILTERS]) state[key] = "";
  if (!KINDS.includes(state.kind)) state.kind = "";  // an address edited by hand: all kinds
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

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

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

function show(list, note, more = false) {
  hits = list;
  selected = -1;
  const advanced = localStorage.getItem("vaultlens-advanced-uri") === "1";
  $("results").replaceChildren(...list.map((h, i) => card(h, i, vault, advanced, similar)));
  $("more").hidden = !more;
  say(note ?? (state.q && !list.length ? "No hits." : ""));
}

function chip(label, pressed, onClick, aria) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "chip" + (pressed ? " on" : "");
  b.textContent = label;
  b.setAttribute("aria-pressed", String(pressed));
  if (aria) b.setAttribute("aria-label", aria);
  b.addEventListener("click", onClick);
  return b;
}

function chips(counts) {
  const box = $("kind-chips");
  box.hidden = Boolean(state.similar);  // a find-similar takes no kind
  // without a query, the chips choose a kind but count nothing
  box.replaceChildren(...["", ...KINDS].map((kind) => {
    const label = counts ? `${LABELS[kind]} ${counts[kind]}` : LABELS[kind];
    const b = chip(label, state.kind === kind, () => {
      state.kind = state.kind === kind ? "" : kind;
      search(true);
    });
    b.dataset.kind = kind;
    return b;
  }));
  const active = FILTERS.filter((f) => state[f]).map((f) => chip(`${f}: ${state[f]} ×`, true,
    () => { state[f] = ""; $(`f-${f}`).value = ""; search(true); }, `Remove the ${f} filter`));
  if (state.similar) {
    active.push(chip(`similar to: ${state.similar} ×`, true,
      () => { state.similar = ""; search(true); }, "Leave the find-similar view"));
  }
  $("filter-chips").replaceChildren(...active);
}

// the results are stale from a keystroke until the answer is shown (aria-busy)
function busy(on) { $("results").setAttribute("aria-busy", String(on)); }

function begin(push) {
  writeUrl(push);
  busy(true);
  const mine = ++seq;
  if (controller) controller.abort();
  controller = new AbortController();
  return mine;
}

function done(mine, err) {
  if (mine !== seq) return;  // a newer search is on its way
  if (err) failed(err);
  busy(false);
}

async function search(push = false, keepLimit = false) {
  if (state.similar) return findSimilar(push, keepLimit);
  if (!keepLimit) limit = PAGE;
  const q = cutQuery(state.q, MAX_QUERY);
  const mine = begin(push);
  if (!q.trim()) { chips(null); notice(""); show([], ""); done(mine); return; }
  const body = { query: q };
  for (const f of FILTERS) if (state[f]) body[f] = state[f];
  try {
    const found = await find(body, state.kind, limit, controller.signal);
    if (mine !== seq) return;  // a newer search is on its way: this answer is stale
    chips(found.counts);
    notice([q !== state.q ? `Only the first ${MAX_QUERY.toLocaleString("en")} characters ` +
      "of a long query are searched." : "", partialNote(found.answer)].filter(Boolean).join(" "));
    show(found.hits, undefined, found.more);
    done(mine);
  } catch (err) {
    done(mine, err);
  }
}

async function findSimilar(push, keepLimit) {
  if (!keepLimit) limit = PAGE;
  const mine = begin(push);
  $("q").value = "";
  chips(null);
  notice("");
  try {
    const k = Math.min(limit + 1, 100);  // the API's most
    const answer = await call("/api/similar", { path: state.similar, k }, controller.signal);
    if (mine !== seq) return;
    show(answer.results.slice(0, limit), `Similar to ${state.similar}`,
      answer.results.length > limit);
    done(mine);
  } catch (err) {
    done(mine, err);
  }
}

function clearState() {
  for (const key of Object.keys(state)) state[key] = "";
  $("q").value = "";
  for (const f of FILTERS) $(`f-${f}`).value = "";
}

// "Find similar" on a hit: a new entry in the history, so Back returns to the search
function similar(path) {
  clearState();
  state.similar = path;
  search(true);
}

async function byPicture(file) {
  if (!visual) {
    say("Searching by picture needs a visual model (Qwen3-VL). This daemon runs a text-only " +
      "model: use \"Find similar\" on a screenshot instead.");
    return;
  }
  clearState();  // a picture is not an address: Back returns to the search before it
  const mine = begin(true);
  chips(null);
  notice("");
  try {
    const answer = await upload("/api/similar", file);
    if (mine !== seq) return;
    show(answer.results, `Like the picture ${file.name || "you pasted"}`);
    done(mine);
  } catch (err) { done(mine, err); }
}

function showMore() {
  const from = hits.length;
  limit = Math.min(limit + PAGE, state.similar ? 100 : MAX_SHOWN);
  search(false, true).then(() => {
    if ($("results").children[from]) select(from);
  });
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

function onStatus(s) {
  vault = s.vault.split(/[\\/]/).filter(Boolean).pop() || "";
  visual = Boolean(s.visual_search);
  $("drop-hint").hidden = !visual;  // a text model cannot search by picture
  $("signin").hidden = true;
}

function pictures() {
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
}

function start() {
  takeTokenFromFragment();
  readUrl();
  $("q").addEventListener("input", () => {
    state.q = $("q").value;
    if (state.similar) { state.similar = ""; pushNext = true; }  // typing leaves it
    busy(true);
    clearTimeout(timer);
    timer = setTimeout(() => { search(pushNext); pushNext = false; }, 180);
  });
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search(true); });
  for (const f of FILTERS) {
    $(`f-${f}`).addEventListener("change", () => {
      state[f] = $(`f-${f}`).value.trim();
      state.similar = "";
      search(true);
    });
  }
  $("more").addEventListener("click", showMore);
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("token-input").value);
    $("token-input").value = "";
    $("signin").hidden = true;
    watchStatus(onStatus, signIn);
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
    show(hits, $("message").textContent, !$("more").hidden);
  });
  window.addEventListener("popstate", () => { readUrl(); search(false); });
  document.addEventListener("keydown", keys);
  pictures();
  watchStatus(onStatus, signIn);
  if (state.q || state.similar) search(false);
}

start();
