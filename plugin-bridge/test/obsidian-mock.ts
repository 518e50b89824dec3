// A stand-in for the "obsidian" module: just enough of the API the plugin uses, recording what
// it is asked to do. Obsidian's DOM helpers (empty, addClass, ...) are added to HTMLElement.

/* eslint-disable @typescript-eslint/no-explicit-any */
type Anyfn = (...args: any[]) => any;

declare global {
  interface HTMLElement {
    empty(): void;
    addClass(...cls: string[]): void;
    toggleClass(cls: string, on: boolean): void;
    setText(text: string): void;
    setAttr(name: string, value: string): void;
  }
}

const proto = HTMLElement.prototype as any;
proto.empty = function (this: HTMLElement) { this.replaceChildren(); };
proto.addClass = function (this: HTMLElement, ...cls: string[]) { this.classList.add(...cls); };
proto.toggleClass = function (this: HTMLElement, cls: string, on: boolean) {
  this.classList.toggle(cls, on);
};
proto.setText = function (this: HTMLElement, text: string) { this.textContent = text; };
proto.setAttr = function (this: HTMLElement, name: string, value: string) {
  this.setAttribute(name, value);
};

// jsdom has no object URLs
let blobs = 0;
URL.createObjectURL ??= () => `blob:test-${++blobs}`;
URL.revokeObjectURL ??= () => undefined;

export const notices: string[] = [];

export class Notice {
  constructor(message: string) {
    notices.push(message);
  }
}

export const Platform = { isMacOS: false };

export class Events {
  private handlers = new Map<string, Anyfn[]>();
  on(name: string, fn: Anyfn): { name: string; fn: Anyfn } {
    this.handlers.set(name, [...(this.handlers.get(name) ?? []), fn]);
    return { name, fn };
  }
  trigger(name: string, ...args: unknown[]): void {
    for (const fn of this.handlers.get(name) ?? []) fn(...args);
  }
}

export class TFile {
  basename: string;
  constructor(public path: string) {
    this.basename = path.split("/").pop()!.replace(/\.[^.]+$/, "");
  }
}

export class WorkspaceLeaf {
  opened: { file: TFile; state: any }[] = [];
  view: any = null;
  async openFile(file: TFile, state?: any): Promise<void> {
    this.opened.push({ file, state });
  }
  async setViewState(): Promise<void> {}
}

export class MarkdownView {
  constructor(public file: TFile | null, public editor: any) {}
}

export class Workspace extends Events {
  leaf = new WorkspaceLeaf();
  active: MarkdownView | null = null;
  getLeaf(): WorkspaceLeaf { return this.leaf; }
  getActiveViewOfType(type: any): any { return this.active instanceof type ? this.active : null; }
  getLeavesOfType(): WorkspaceLeaf[] { return []; }
  getRightLeaf(): WorkspaceLeaf { return this.leaf; }
  async revealLeaf(): Promise<void> {}
  onLayoutReady(fn: Anyfn): void { fn(); }
}

export class Vault extends Events {
  files = new Map<string, TFile>();
  getFileByPath(path: string): TFile | null { return this.files.get(path) ?? null; }
  add(path: string): TFile {
    const file = new TFile(path);
    this.files.set(path, file);
    return file;
  }
}

export class App {
  workspace = new Workspace();
  vault = new Vault();
  metadataCache = {
    getFirstLinkpathDest: (link: string): TFile | null =>
      [...this.vault.files.values()].find((f) => f.path === link || f.path.endsWith("/" + link))
      ?? null,
  };
  fileManager = {
    generateMarkdownLink: (file: TFile, _source: string, sub = ""): string =>
      `[[${file.path}${sub}]]`,
  };
}

export class Modal {
  contentEl: HTMLElement = document.createElement("div");
  modalEl: HTMLElement = document.createElement("div");
  isOpen = false;
  constructor(public app: App) {
    this.modalEl.append(this.contentEl);
  }
  open(): void { this.isOpen = true; (this as any).onOpen?.(); }
  close(): void { this.isOpen = false; (this as any).onClose?.(); }
}

export class ItemView {
  contentEl: HTMLElement = document.createElement("div");
  constructor(public leaf: WorkspaceLeaf) {}
}

export class Plugin {
  commands: any[] = [];
  statusBar = document.createElement("div");
  data: unknown = null;
  events: unknown[] = [];
  intervals: number[] = [];
  views = new Map<string, Anyfn>();
  constructor(public app: App, public manifest: unknown = {}) {}
  addCommand(command: any): any { this.commands.push(command); return command; }
  addStatusBarItem(): HTMLElement { return this.statusBar; }
  addSettingTab(): void {}
  registerEvent(ref: unknown): void { this.events.push(ref); }
  registerInterval(id: number): number { this.intervals.push(id); return id; }
  registerView(type: string, make: Anyfn): void { this.views.set(type, make); }
  async loadData(): Promise<unknown> { return this.data; }
  async saveData(data: unknown): Promise<void> { this.data = data; }
}

export class PluginSettingTab {
  containerEl: HTMLElement = document.createElement("div");
  constructor(public app: App, public plugin: Plugin) {}
}

export class Setting {
  constructor(public containerEl: HTMLElement) {}
  setName(): this { return this; }
  setDesc(): this { return this; }
  addText(): this { return this; }
  addButton(): this { return this; }
}

export type Editor = any;

export class Menu {
  items: { title: string; click: Anyfn }[] = [];
  addItem(make: (item: any) => any): this {
    const entry = { title: "", click: (() => undefined) as Anyfn };
    const item = {
      setTitle: (t: string) => { entry.title = t; return item; },
      setIcon: () => item,
      onClick: (fn: Anyfn) => { entry.click = fn; return item; },
    };
    make(item);
    this.items.push(entry);
    return this;
  }
}
