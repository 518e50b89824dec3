// Drawing hits with plain DOM calls (no innerHTML): the search modal and the Related view share it.

import type { Hit } from "./types";

export type Thumbnails = (id: number) => Promise<string | null>;

/** "Notes/a.md:12-14", "Attachments/x.png", "Docs/spec.pdf p. 3" */
export function place(hit: Hit): string {
  if (hit.kind === "pdf") return `${hit.path} p. ${hit.page ?? 1}`;
  if (hit.kind !== "note" || hit.line === null) return hit.path;
  const end = hit.end_line !== null && hit.end_line !== hit.line ? `-${hit.end_line}` : "";
  return `${hit.path}:${hit.line}${end}`;
}

/** The snippet with the query's words in <mark>, from the daemon's highlight spans. */
export function snippet(doc: Document, hit: Hit): HTMLElement {
  const el = doc.createElement("div");
  el.className = "vaultlens-snippet";
  let at = 0;
  for (const [start, end] of hit.highlights) {
    if (start < at || end > hit.text.length) continue;
    el.append(doc.createTextNode(hit.text.slice(at, start)));
    const mark = doc.createElement("mark");
    mark.textContent = hit.text.slice(start, end);
    el.append(mark);
    at = end;
  }
  el.append(doc.createTextNode(hit.text.slice(at)));
  return el;
}

/** One hit: thumbnail for pictures, where it is, the snippet, and for a picture the paragraph
 * of the first note that embeds it. */
export function renderHit(container: HTMLElement, hit: Hit, thumbnails: Thumbnails): HTMLElement {
  const doc = container.ownerDocument;
  const row = doc.createElement("div");
  row.className = `vaultlens-hit vaultlens-kind-${hit.kind}`;
  if (hit.kind !== "note") {
    const img = doc.createElement("img");
    img.className = "vaultlens-thumb";
    img.alt = hit.path;
    row.append(img);
    void thumbnails(hit.id).then((src) => {
      if (src) img.src = src;
      else img.remove();
    });
  }
  const body = doc.createElement("div");
  body.className = "vaultlens-body";
  const where = doc.createElement("div");
  where.className = "vaultlens-where";
  where.textContent = place(hit) + (hit.headings.length ? `  ·  ${hit.headings.join(" › ")}` : "");
  body.append(where, snippet(doc, hit));
  const used = hit.links[0];
  if (used) {
    const context = doc.createElement("div");
    context.className = "vaultlens-context";
    const paragraph = used.context.find((c) => c.role !== "containing") ?? used.context[0];
    const more = hit.links.length > 1 ? ` (+${hit.links.length - 1} more)` : "";
    context.textContent = `← ${used.note}:${used.line}${more}` + (paragraph ? ` — ${paragraph.text}` : "");
    body.append(context);
  }
  row.append(body);
  container.append(row);
  return row;
}
