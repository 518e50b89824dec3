// The vaultlens plugin: thin. It searches through the local daemon, shows hits the way Obsidian
// users expect, and gets every pasted screenshot indexed at once. Requests go only to the
// configured daemon on this machine.

import { MarkdownView, Menu, Notice, Plugin, TFile, WorkspaceLeaf } from "obsidian";
import { imageAtCursor, insertHit, openHit } from "./actions";
import { VaultlensClient } from "./client";
import { explain } from "./messages";
import { PasteWatcher } from "./paste";
import { paragraphAt, RELATED_VIEW, RelatedView } from "./related-view";
import { SearchModal } from "./search-modal";
import { DEFAULTS, Settings, TokenStore, VaultlensSettingTab } from "./settings";
import { OFFLINE, statusLine } from "./status";
import type { Hit } from "./types";

const IMAGE = /\.(png|jpe?g|gif|webp|bmp|avif|tiff?)$/i;
const STATUS_EVERY_MS = 10_000;
const RELATED_EVERY_MS = 1_500;
const MAX_THUMBNAILS = 200;

export default class VaultlensPlugin extends Plugin {
  settings: Settings = { ...DEFAULTS };
  tokens!: TokenStore;
  private statusEl!: HTMLElement;
  private readonly paste = new PasteWatcher();
  private readonly thumbs = new Map<number, Promise<string | null>>();
  private lastNotice = "";

  async onload(): Promise<void> {
    this.settings = { ...DEFAULTS, ...((await this.loadData()) as Partial<Settings> | null) };
    this.tokens = new TokenStore(this.app, this.settings);
    this.addSettingTab(new VaultlensSettingTab(this.app, this));
    this.statusEl = this.addStatusBarItem();
    this.statusEl.setText("vaultlens …");

    this.addCommand({ id: "search", name: "Search vault", callback: () => this.openSearch() });
    this.addCommand({
      id: "similar-images",
      name: "Find similar images",
      editorCheckCallback: (checking, editor, view) => {
        const file = view.file ? imageAtCursor(this.app, editor, view.file) : null;
        if (checking) return file !== null;
        if (file) void this.showSimilar(file);
        return true;
      },
    });
    this.addCommand({ id: "related", name: "Open related view", callback: () => this.openRelated() });
    // an image's context menu: in the file explorer, and in the editor on an image embed
    const similarItem = (menu: Menu, file: TFile) => menu.addItem((item) => item
      .setTitle("Find similar images").setIcon("images").onClick(() => void this.showSimilar(file)));
    this.registerEvent(this.app.workspace.on("file-menu", (menu, file) => {
      if (file instanceof TFile && IMAGE.test(file.path)) similarItem(menu, file);
    }));
    this.registerEvent(this.app.workspace.on("editor-menu", (menu, editor, info) => {
      const file = info.file ? imageAtCursor(this.app, editor, info.file) : null;
      if (file) similarItem(menu, file);
    }));

    this.registerView(RELATED_VIEW, (leaf: WorkspaceLeaf) => new RelatedView(leaf, {
      // the paragraph at the cursor is prose, not a typed query: "quotes" and after:lunch are words
      search: async (q) => (await this.client().search({ query: q, k: this.settings.relatedResults,
        literal: true })).results,
      thumbnails: (id) => this.thumbnail(id),
      open: (hit) => this.open(hit),
      explain: (e) => explain(e, this.settings.url),
    }));
    this.registerInterval(window.setInterval(() => void this.updateRelated(), RELATED_EVERY_MS));

    // a pasted or dropped picture is indexed at once, with the note it went into
    const arm = (_evt: unknown, _editor: unknown, info: { file?: TFile | null }) =>
      this.paste.arm(info.file?.path ?? null);
    this.registerEvent(this.app.workspace.on("editor-paste", arm));
    this.registerEvent(this.app.workspace.on("editor-drop", arm));
    this.app.workspace.onLayoutReady(() => {
      this.registerEvent(this.app.vault.on("create", (file) => void this.onCreate(file.path)));
    });

    this.registerInterval(window.setInterval(() => void this.refreshStatus(), STATUS_EVERY_MS));
    void this.refreshStatus();
  }

  onunload(): void {
    for (const url of this.thumbs.values()) void url.then((u) => u && URL.revokeObjectURL(u));
    this.thumbs.clear();
  }

  async save(): Promise<void> {
    await this.saveData(this.settings);
    void this.refreshStatus();
  }

  client(): VaultlensClient {
    return new VaultlensClient({ url: this.settings.url, token: this.tokens.get() });
  }

  /** Tell the user once per distinct problem, not on every keystroke or poll. */
  notify(error: unknown): string {
    const message = explain(error, this.settings.url);
    if (message !== this.lastNotice) new Notice(message, 8000);
    this.lastNotice = message;
    return message;
  }

  async testConnection(): Promise<string> {
    try {
      const status = await this.client().status();
      this.lastNotice = "";
      return `vaultlens: connected to ${status.vault} (${statusLine(status)})`;
    } catch (error) {
      return explain(error, this.settings.url);
    }
  }

  async refreshStatus(): Promise<void> {
    try {
      const status = await this.client().status();
      this.statusEl.setText(statusLine(status));
      this.statusEl.setAttr("aria-label", status.notice ?? "");
    } catch (error) {
      this.statusEl.setText(OFFLINE);
      this.statusEl.setAttr("aria-label", explain(error, this.settings.url));
    }
  }

  async onCreate(path: string): Promise<string[]> {
    const paths = this.paste.created(path);
    for (const p of paths) {
      try {
        await this.client().reindex({ path: p });
      } catch (error) {
        this.notify(error);
        break;
      }
    }
    return paths;
  }

  openSearch(): SearchModal {
    const modal = new SearchModal(this.app, {
      search: async (q) => (await this.client().search({ query: q, k: 20 })).results,
      thumbnails: (id) => this.thumbnail(id),
      open: (hit) => this.open(hit),
      insert: (hit) => {
        if (!insertHit(this.app, hit)) new Notice("vaultlens: open a note to insert a link into it");
      },
      explain: (e) => this.notify(e),
    });
    modal.open();
    return modal;
  }

  async showSimilar(file: TFile): Promise<SearchModal | null> {
    let hits: Hit[];
    try {
      hits = await this.client().similar({ path: file.path, k: 20 });
    } catch (error) {
      this.notify(error);
      return null;
    }
    const modal = new SearchModal(this.app, {
      search: async () => hits,
      thumbnails: (id) => this.thumbnail(id),
      open: (hit) => this.open(hit),
      insert: (hit) => void insertHit(this.app, hit),
      explain: (e) => this.notify(e),
    }, hits, `Similar to ${file.path}`);
    modal.open();
    return modal;
  }

  async open(hit: Hit): Promise<void> {
    try {
      await openHit(this.app, hit);
    } catch (error) {
      new Notice(`vaultlens: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  thumbnail(id: number): Promise<string | null> {
    let url = this.thumbs.get(id);
    if (url) {
      this.thumbs.delete(id); // most recently used last
    } else {
      // no thumbnail (not made yet, daemon down) is not an error worth a notice
      url = this.client().thumbnail(id).then((blob) => URL.createObjectURL(blob)).catch(() => null);
    }
    this.thumbs.set(id, url);
    for (const [old, oldUrl] of this.thumbs) {
      if (this.thumbs.size <= MAX_THUMBNAILS) break;
      this.thumbs.delete(old); // object URLs hold their images in memory until revoked
      void oldUrl.then((u) => u && URL.revokeObjectURL(u));
    }
    return url;
  }

  async openRelated(): Promise<void> {
    const existing = this.app.workspace.getLeavesOfType(RELATED_VIEW)[0];
    const leaf = existing ?? this.app.workspace.getRightLeaf(false);
    if (!leaf) return;
    if (!existing) await leaf.setViewState({ type: RELATED_VIEW, active: true });
    void this.app.workspace.revealLeaf(leaf);
  }

  private async updateRelated(): Promise<void> {
    const leaf = this.app.workspace.getLeavesOfType(RELATED_VIEW)[0];
    const view = this.app.workspace.getActiveViewOfType(MarkdownView);
    if (!leaf || !(leaf.view instanceof RelatedView) || !view?.file) return;
    const line = view.editor.getCursor().line;
    const text = paragraphAt(view.editor.getValue().split("\n"), line) || view.file.basename;
    await leaf.view.update(text, view.file.path, line + 1);
  }
}
