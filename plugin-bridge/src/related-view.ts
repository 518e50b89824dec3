// The "Related" side view: screenshots and paragraphs related to where the cursor is.

import { ItemView, WorkspaceLeaf } from "obsidian";
import { renderHit, Thumbnails } from "./render";
import type { Hit } from "./types";

export const RELATED_VIEW = "vaultlens-related";

export interface RelatedActions {
  search(query: string): Promise<Hit[]>;
  thumbnails: Thumbnails;
  open(hit: Hit): Promise<void>;
  explain(error: unknown): string;
}

/** The paragraph around a line: up and down to the nearest blank lines, at most ``max`` chars. */
export function paragraphAt(lines: string[], line: number, max = 500): string {
  if (!lines[line]?.trim()) return ""; // on a blank line: no paragraph
  let start = line;
  let end = line;
  while (start > 0 && lines[start - 1].trim()) start--;
  while (end < lines.length - 1 && lines[end + 1].trim()) end++;
  return lines.slice(start, end + 1).join("\n").trim().slice(0, max);
}

export class RelatedView extends ItemView {
  private shown = "";
  private asked = 0;

  constructor(leaf: WorkspaceLeaf, private readonly actions: RelatedActions) {
    super(leaf);
  }

  getViewType(): string {
    return RELATED_VIEW;
  }

  getDisplayText(): string {
    return "Related (vaultlens)";
  }

  getIcon(): string {
    return "sparkles";
  }

  async onOpen(): Promise<void> {
    this.contentEl.empty();
    this.contentEl.addClass("vaultlens-related");
    this.note("Move the cursor in a note to see what is related.");
  }

  /** Show what relates to ``text`` (at ``path``:``line``), leaving out that spot itself. */
  async update(text: string, path: string, line: number): Promise<void> {
    const key = `${path}\n${text}`;
    if (!text.trim() || key === this.shown) return;
    this.shown = key;
    const ticket = ++this.asked;
    try {
      const hits = (await this.actions.search(text)).filter((h) => !(h.path === path
        && h.line !== null && h.line <= line && line <= (h.end_line ?? h.line)));
      if (ticket !== this.asked) return;
      this.contentEl.empty();
      if (!hits.length) this.note("Nothing related found.");
      for (const hit of hits) {
        renderHit(this.contentEl, hit, this.actions.thumbnails)
          .addEventListener("click", () => void this.actions.open(hit));
      }
    } catch (error) {
      if (ticket !== this.asked) return;
      this.shown = ""; // try again on the next move
      this.contentEl.empty();
      this.note(this.actions.explain(error));
    }
  }

  private note(text: string): void {
    const el = this.contentEl.ownerDocument.createElement("div");
    el.className = "vaultlens-message";
    el.textContent = text;
    this.contentEl.append(el);
  }
}
