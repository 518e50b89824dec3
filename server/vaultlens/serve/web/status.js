// The footer: what the daemon is doing, the files it could not index, and (one quiet line)
// the files it leaves alone because no one searches them. Polled: each second while it
// indexes, every ten seconds when idle.
import { SignInNeeded, call } from "./api.js";

const $ = (id) => document.getElementById(id);

function summary(s) {
  const c = s.counts;
  const counts = `${c.files_indexed || 0} files: ${c.items_section || 0} passages, ` +
    `${c.items_image || 0} screenshots, ${c.items_page || 0} PDF pages`;
  const text = `${s.model.split(":").slice(0, 2).join(":")} · visual search ` +
    `${s.visual_search ? "on" : "off"} · ${counts}`;
  const busy = s.state ? s.state !== "idle" : (s.indexing || s.runs === 0);
  if (!busy) return { text, busy };
  const { done, total, current } = s.progress;
  return { text: `Indexing ${done}/${total}${current ? ` · ${current}` : ""} · ${text}`, busy };
}

function failures(list) {
  $("skipped").hidden = !list.length;
  $("skipped-summary").textContent = `${list.length} file(s) could not be indexed`;
  $("skipped-list").replaceChildren(...list.map((f) => {
    const li = document.createElement("li");
    li.textContent = `${f.path}: ${f.reason || f.status}`;
    return li;
  }));
}

// {"css": 12, "js": 3} → "Not searched: 12 css, 3 js files"
export function ignoredLine(ignored) {
  const parts = Object.entries(ignored || {}).filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([ext, n]) => `${n} ${ext || "other"}`);
  return parts.length ? `Not searched: ${parts.join(", ")} files` : "";
}

function show(s) {
  const { text, busy } = summary(s);
  const line = $("status-text");
  line.textContent = text;
  line.title = text;  // the line is cut to the width at narrow sizes
  const bar = $("progress");
  bar.hidden = !busy || !s.progress;
  if (busy && s.progress) {
    bar.max = Math.max(s.progress.total, 1);
    bar.value = s.progress.done;
  }
  failures(s.failures || []);
  const quiet = ignoredLine(s.ignored);
  $("ignored").hidden = !quiet;
  $("ignored").textContent = quiet;
  return busy;
}

let timer = 0;

// onStatus(status) after each answer; onSignIn(reason) when the token is missing or wrong.
// A second call (after signing in) replaces the first's polling.
export async function watchStatus(onStatus, onSignIn) {
  clearTimeout(timer);
  let wait = 10000;
  try {
    const s = await call("/api/status");
    onStatus(s);
    if (show(s)) wait = 1000;
  } catch (err) {
    if (err instanceof SignInNeeded) { onSignIn(err.message); $("status-text").textContent = "Not signed in"; }
    else $("status-text").textContent = `The daemon does not answer (${err.message})`;
    wait = 3000;
  }
  clearTimeout(timer);
  timer = setTimeout(() => watchStatus(onStatus, onSignIn), wait);
}
