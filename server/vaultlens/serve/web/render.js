// Results as the API groups them: a screenshot beside the paragraph it was pasted into, a PDF
// page with its number, a passage under its heading path. Text goes in as text nodes, never
// as HTML, so nothing in a note can inject markup.
import { thumbnail } from "./api.js";

const WHY = {
  words: { image: "words in the picture", pdf: "words on the page", note: "words in the text" },
  context: { image: "the paragraph around it", pdf: "the paragraph around it" },
  meaning: { image: "meaning", pdf: "meaning", note: "meaning" },
};
const EMBED_ONLY = /^\s*!\[\[[^\]]*\]\]\s*$|^\s*!\[[^\]]*\]\([^)]*\)\s*$/;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

// a path that a narrow screen wraps after a "/", not inside a name
export function breakable(path) {
  const parts = [];
  path.split("/").forEach((part, i) => {
    if (i) parts.push("/", document.createElement("wbr"));
    parts.push(part);
  });
  return parts;
}

export function highlighted(text, spans, cls = "snippet") {
  const p = el("p", { class: cls });
  let at = 0;
  for (const [start, end] of spans || []) {
    if (start > at) p.append(text.slice(at, start));
    p.append(el("mark", { text: text.slice(start, end) }));
    at = end;
  }
  p.append(text.slice(at));
  return p;
}

const stem = (path) => path.replace(/\.md$/i, "");

export function openUri(hit, vault, advanced) {
  const place = hit.kind === "note" ? hit : (hit.links[0] ? { path: hit.links[0].note,
    line: hit.links[0].line, headings: hit.links[0].headings } : hit);
  const path = place.path;
  if (advanced) {
    const line = place.line ? `&line=${place.line}` : "";
    return `obsidian://advanced-uri?vault=${encodeURIComponent(vault)}` +
      `&filepath=${encodeURIComponent(path)}${line}`;
  }
  const heading = place.headings && place.headings.length && path.endsWith(".md")
    ? `#${place.headings[place.headings.length - 1]}` : "";
  const file = (path.endsWith(".md") ? stem(path) : path) + heading;
  return `obsidian://open?vault=${encodeURIComponent(vault)}&file=${encodeURIComponent(file)}`;
}

export function wikilink(hit) {
  if (hit.kind === "image") return `![[${hit.path}]]`;
  if (hit.kind === "pdf") return `![[${hit.path}#page=${hit.page || 1}]]`;
  const heading = hit.headings.length ? `#${hit.headings[hit.headings.length - 1]}` : "";
  return `[[${stem(hit.path)}${heading}]]`;
}

function paragraphOf(link) {
  return link.context.map((c) => c.text).join("\n").split("\n")
    .filter((line) => line.trim() && !EMBED_ONLY.test(line)).join("\n");
}

function thumb(id, alt) {
  const img = el("img", { class: "thumb", alt, width: "160", height: "100" });
  thumbnail(id).then((url) => { if (url) img.src = url; else img.classList.add("missing"); });
  return img;
}

function picture(hit, onSimilar) {
  const label = hit.kind === "pdf" ? `Page ${hit.page} of ${hit.path}` : `Screenshot ${hit.path}`;
  const side = el("div", { class: "side" }, thumb(hit.id, label));
  if (hit.kind === "pdf") side.append(el("span", { class: "page", text: `page ${hit.page}` }));
  const body = el("div", { class: "body" });
  const link = hit.links[0];
  if (link) {
    const heads = link.headings.length ? ` › ${link.headings.join(" › ")}` : "";
    body.append(el("div", { class: "where", text: `${link.note}:${link.line}${heads}` }));
    // the API's plain paragraph and the spans of the query's words in it
    const para = hit.context_text ?? paragraphOf(link);
    if (para) body.append(highlighted(para, hit.context_highlights, "context"));
  } else {
    body.append(el("div", { class: "where", text: "embedded in no note" }));
  }
  if (hit.text && hit.matched !== "context") body.append(highlighted(hit.text, hit.highlights, "ocr"));
  const similar = el("button", { type: "button", class: "similar", text: "Find similar",
    "aria-label": `Find items similar to ${hit.path}` });
  similar.addEventListener("click", (e) => { e.stopPropagation(); onSimilar(hit.path); });
  body.append(similar);
  // links past the API's cap per hit are counted in more_links, not listed
  const others = hit.links.length - 1 + (hit.more_links || 0);
  if (others > 0) {
    body.append(el("div", { class: "more", text: `also in ${others} more place(s)` }));
  }
  return [side, body];
}

function passage(hit) {
  const crumbs = hit.headings.length ? hit.headings.join(" › ") : "";
  const body = el("div", { class: "body" });
  if (crumbs) body.append(el("div", { class: "crumbs", text: crumbs }));
  body.append(highlighted(hit.text, hit.highlights));
  const parts = [body];
  const shots = hit.images.filter((i) => i.item).slice(0, 3);
  if (shots.length) {
    const strip = el("div", { class: "strip" });
    for (const s of shots) strip.append(thumb(s.item, `Embedded ${s.path}`));
    body.append(strip);
  }
  return parts;
}

export function card(hit, index, vault, advanced, onSimilar) {
  const title = hit.kind === "note" ? `${hit.path}:${hit.line}` : hit.path;
  const why = (WHY[hit.matched] || WHY.meaning)[hit.kind] || "meaning";
  const head = el("div", { class: "head" },
    el("a", { class: "open", href: openUri(hit, vault, advanced),
      title: "Open in Obsidian (Enter)" }, ...breakable(title)),
    el("span", { class: `kind kind-${hit.kind}`, text: hit.kind }),
    el("span", { class: "why", text: `matched: ${why}` }));
  const li = el("li", { class: `hit hit-${hit.kind}`, tabindex: "-1", "data-index": String(index),
    "aria-label": `${hit.kind} ${title}` }, head);
  const row = el("div", { class: "row" });
  for (const part of hit.kind === "note" ? passage(hit) : picture(hit, onSimilar)) row.append(part);
  for (const where of row.querySelectorAll(".where")) where.replaceChildren(...breakable(where.textContent));
  li.append(row);
  return li;
}
