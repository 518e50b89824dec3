// "Search vault": live results as you type. Enter opens a hit; Mod+Enter (Ctrl or Cmd) inserts
// an embed or link to it at the cursor instead. The same list shows "Find similar images".

import { App, Modal, Platform } from "obsidian";
import { renderHit, Thumbnails } from "./render";
import type { Hit } from "./types";

export const DEBOUNCE_MS = 250;

export interface ModalActions {
  search(query: string): Promise<Hit[]>;
  thumbnails: Thumbnails;
  open(hit: Hit): Promise<void>;
  insert(hit: Hit): void;
  explain(error: unknown): string;
}

export class SearchModal extends Modal {
  private input!: HTMLInputElement;
  private list!: HTMLElement;
  private message!: HTMLElement;
  private hits: Hit[] = [];
  private selected = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private asked = 0; // answers to older queries are dropped

  constructor(app: App, private readonly actions: ModalActions,
              private readonly fixed: Hit[] | null = null, private readonly heading = "") {
    super(app);
  }

  onOpen(): void {
    const doc = this.contentEl.ownerDocument;
    this.contentEl.empty();
    this.contentEl.addClass("vaultlens-modal");
    if (this.fixed === null) {
      this.input = doc.createElement("input");
      this.input.type = "search";
      this.input.placeholder = "Search notes, screenshots and PDFs…";
      this.input.className = "vaultlens-input";
      this.input.addEventListener("input", () => this.schedule());
      this.contentEl.append(this.input);
    } else if (this.heading) {
      const title = doc.createElement("div");
      title.className = "vaultlens-heading";
      title.textContent = this.heading;
      this.contentEl.append(title);
    }
    this.message = doc.createElement("div");
    this.message.className = "vaultlens-message";
    this.list = doc.createElement("div");
    this.list.className = "vaultlens-results";
    const help = doc.createElement("div");
    help.className = "vaultlens-help";
    help.textContent = `↑↓ choose · ↵ open · ${Platform.isMacOS ? "⌘" : "Ctrl"}+↵ insert at cursor`;
    this.contentEl.append(this.message, this.list, help);
    this.modalEl.addEventListener("keydown", (evt) => this.key(evt));
    if (this.fixed !== null) this.show(this.fixed);
    this.input?.focus();
  }

  onClose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.asked += 1;
    this.contentEl.empty();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(this.input.value), DEBOUNCE_MS);
  }

  /** Search now (the debounce calls this). */
  async run(query: string): Promise<void> {
    const ticket = ++this.asked;
    if (!query.trim()) {
      this.show([]);
      return;
    }
    this.message.textContent = "Searching…";
    try {
      const hits = await this.actions.search(query);
      if (ticket === this.asked) this.show(hits, hits.length ? "" : "No results.");
    } catch (error) {
      if (ticket === this.asked) this.show([], this.actions.explain(error));
    }
  }

  private show(hits: Hit[], message = ""): void {
    this.hits = hits;
    this.selected = 0;
    this.message.textContent = message;
    this.list.empty();
    hits.forEach((hit, n) => {
      const row = renderHit(this.list, hit, this.actions.thumbnails);
      row.addEventListener("click", (evt) => void this.choose(n, evt.ctrlKey || evt.metaKey));
    });
    this.highlight();
  }

  private highlight(): void {
    Array.from(this.list.children).forEach((row, n) =>
      row.toggleClass("is-selected", n === this.selected));
  }

  private key(evt: KeyboardEvent): void {
    if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
      evt.preventDefault();
      const step = evt.key === "ArrowDown" ? 1 : -1;
      this.selected = Math.max(0, Math.min(this.hits.length - 1, this.selected + step));
      this.highlight();
    } else if (evt.key === "Enter" && this.hits.length) {
      evt.preventDefault();
      void this.choose(this.selected, evt.ctrlKey || evt.metaKey);
    }
  }

  private async choose(n: number, insert: boolean): Promise<void> {
    const hit = this.hits[n];
    if (!hit) return;
    this.close();
    if (insert) this.actions.insert(hit);
    else await this.actions.open(hit);
  }
}
