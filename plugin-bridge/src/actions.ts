// What choosing a hit does in Obsidian: open it at its line, or link it at the cursor.

import { App, Editor, MarkdownView, TFile } from "obsidian";
import type { Hit } from "./types";

export async function openHit(app: App, hit: Hit): Promise<void> {
  const file = app.vault.getFileByPath(hit.path);
  if (!file) throw new Error(`${hit.path} is no longer in the vault`);
  const leaf = app.workspace.getLeaf(false);
  // eState.line scrolls the editor to that (0-based) line, as Obsidian's own search does
  const eState = hit.kind === "note" && hit.line !== null ? { line: hit.line - 1 } : undefined;
  await leaf.openFile(file, eState ? { eState } : undefined);
}

/** An embed (pictures, PDF pages) or a link (notes) to the hit, in the user's link format. */
export function linkText(app: App, hit: Hit, sourcePath: string): string | null {
  const file = app.vault.getFileByPath(hit.path);
  if (!file) return null;
  if (hit.kind === "note") {
    const heading = hit.headings[hit.headings.length - 1];
    return app.fileManager.generateMarkdownLink(file, sourcePath, heading ? `#${heading}` : "");
  }
  const page = hit.kind === "pdf" && hit.page ? `#page=${hit.page}` : "";
  return "!" + app.fileManager.generateMarkdownLink(file, sourcePath, page);
}

export function insertHit(app: App, hit: Hit): boolean {
  const view = app.workspace.getActiveViewOfType(MarkdownView);
  if (!view?.file) return false;
  const text = linkText(app, hit, view.file.path);
  if (text === null) return false;
  view.editor.replaceSelection(text);
  return true;
}

const EMBED = /!\[\[([^\]|#]+)(?:[#|][^\]]*)?\]\]|!\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;

/** The image embedded on the cursor's line (under the cursor if there are several). */
export function imageAtCursor(app: App, editor: Editor, source: TFile): TFile | null {
  const cursor = editor.getCursor();
  const line = editor.getLine(cursor.line);
  let best: TFile | null = null;
  for (const m of line.matchAll(EMBED)) {
    const target = decodeURIComponent((m[1] ?? m[2] ?? "").trim());
    const file = app.metadataCache.getFirstLinkpathDest(target, source.path);
    if (!file) continue;
    const start = m.index ?? 0;
    if (best === null || (cursor.ch >= start && cursor.ch <= start + m[0].length)) best = file;
  }
  return best;
}
