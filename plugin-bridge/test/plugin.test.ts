import { afterEach, describe, expect, it, vi } from "vitest";
import { App, MarkdownView, Menu, notices, TFile, WorkspaceLeaf } from "./obsidian-mock";
import { RELATED_VIEW } from "../src/related-view";
import VaultlensPlugin from "../src/main";
import { DEBOUNCE_MS } from "../src/search-modal";
import { duration, statusLine } from "../src/status";
import type { Status } from "../src/types";
import { hit, imageHit } from "./fixtures";

type Answer = (path: string, body: unknown) => unknown;

async function plugin(answer: Answer | "down") {
  const app = new App();
  const calls: { path: string; body: unknown }[] = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    const path = new URL(url).pathname;
    const body = init.body ? JSON.parse(init.body as string) : undefined;
    calls.push({ path, body });
    if (answer === "down") throw new TypeError("fetch failed");
    return new Response(JSON.stringify(answer(path, body)), { status: 200 });
  });
  const p = new VaultlensPlugin(app as never, {} as never);
  await p.onload();
  return { app, p, calls };
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
  notices.length = 0;
});

const statusOf = { ok: true, vault: "/v", model: "minilm:x", visual_search: false,
  vector_search_ready: true, notice: null, counts: {}, vectors: 0, state: "indexing",
  indexing: true, queue: 0, problem: null, failures: [], ignored: {},
  partial: true, partial_reason: "indexing", indexed_share: 0.33,
  progress: { done: 3, total: 9, current: null, files_per_s: 2.5, eta_s: 130, eta: null } };

describe("search modal", () => {
  it("renders results as you type, after a pause", async () => {
    vi.useFakeTimers();
    const { p, calls } = await plugin((path) => path === "/api/search"
      ? { ok: true, results: [hit(), imageHit()], partial: false, took_ms: 3 } : statusOf);
    const modal = p.openSearch();
    const input = modal.contentEl.querySelector("input")!;
    input.value = "sync";
    input.dispatchEvent(new Event("input"));
    input.value = "selective sync";
    input.dispatchEvent(new Event("input"));
    await vi.advanceTimersByTimeAsync(DEBOUNCE_MS + 10);
    const searches = calls.filter((c) => c.path === "/api/search");
    expect(searches.map((c) => (c.body as { query: string }).query)).toEqual(["selective sync"]);
    const rows = modal.contentEl.querySelectorAll(".vaultlens-hit");
    expect(rows).toHaveLength(2);
    expect(rows[0].classList.contains("is-selected")).toBe(true);
  });

  it("Enter opens the note at the hit's line; Ctrl+Enter inserts a link instead", async () => {
    const { app, p } = await plugin((path) => path === "/api/search"
      ? { ok: true, results: [hit(), imageHit()], partial: false, took_ms: 3 } : statusOf);
    app.vault.add("Notes/Sync.md");
    app.vault.add("Attachments/chart.png");
    const here = app.vault.add("Today.md");
    const inserted: string[] = [];
    app.workspace.active = new MarkdownView(here, { replaceSelection: (t: string) => inserted.push(t) });
    let modal = p.openSearch();
    await modal.run("sync");
    modal.modalEl.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    await Promise.resolve();
    expect(app.workspace.leaf.opened).toHaveLength(1);
    expect(app.workspace.leaf.opened[0].file.path).toBe("Notes/Sync.md");
    expect(app.workspace.leaf.opened[0].state).toEqual({ eState: { line: 11 } }); // 0-based
    expect((modal as unknown as { isOpen: boolean }).isOpen).toBe(false);

    modal = p.openSearch();
    await modal.run("chart");
    modal.modalEl.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
    modal.modalEl.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", ctrlKey: true }));
    expect(inserted).toEqual(["![[Attachments/chart.png]]"]);
    expect(app.workspace.leaf.opened).toHaveLength(1);
  });

  it("a dead daemon gives a notice that says how to start it, and the modal stops waiting", async () => {
    const { p } = await plugin("down");
    const modal = p.openSearch();
    await modal.run("anything");
    const message = modal.contentEl.querySelector(".vaultlens-message")!.textContent!;
    expect(message).toContain("vaultlens serve --vault");
    expect(notices.some((n) => n.includes("vaultlens serve --vault"))).toBe(true);
    expect(message).not.toContain("Searching");
  });

  it("a wrong token says where to find the right one", async () => {
    const app = new App();
    vi.stubGlobal("fetch", async () => new Response(
      JSON.stringify({ ok: false, error: { code: "unauthorized", message: "no" } }), { status: 401 }));
    const p = new VaultlensPlugin(app as never, {} as never);
    await p.onload();
    expect(await p.testConnection()).toContain("vaultlens token --vault");
  });
});

describe("paste hook", () => {
  it("asks the daemon to index a pasted picture at once, with its note", async () => {
    const { app, calls } = await plugin(() => ({ ok: true, queued: "x" }));
    const note = app.vault.add("Today.md");
    app.workspace.trigger("editor-paste", new Event("paste"), {}, { file: note });
    app.vault.trigger("create", new TFile("Attachments/Pasted image 20240101.png"));
    await vi.waitFor(() => expect(calls.filter((c) => c.path === "/api/reindex")).toHaveLength(2));
    expect(calls.filter((c) => c.path === "/api/reindex").map((c) => c.body)).toEqual([
      { path: "Attachments/Pasted image 20240101.png" }, { path: "Today.md" }]);
  });

  it("leaves files created without a paste to the daemon's watcher", async () => {
    const { p, calls } = await plugin(() => ({ ok: true }));
    expect(await p.onCreate("Attachments/synced.png")).toEqual([]);
    expect(calls.filter((c) => c.path === "/api/reindex")).toHaveLength(0);
  });
});

describe("status bar and commands", () => {
  it("shows the model, visual search and progress, or offline", async () => {
    const { p } = await plugin(() => statusOf);
    await p.refreshStatus();
    expect((p as unknown as { statusEl: HTMLElement }).statusEl.textContent)
      .toBe("vaultlens ✓ minilm · visual off · indexing 3/9 · 2.5 files/s · 2m 10s left");
    const down = await plugin("down");
    await down.p.refreshStatus();
    expect((down.p as unknown as { statusEl: HTMLElement }).statusEl.textContent).toBe("vaultlens ✗ offline");
  });

  it("says what the daemon is doing in every state", () => {
    const at = (state: string, extra: object = {}) =>
      statusLine({ ...statusOf, state, indexing: state === "indexing", ...extra } as Status);
    expect(at("loading")).toBe("vaultlens ✓ minilm · visual off · loading the model (keywords only)");
    expect(at("starting")).toBe("vaultlens ✓ minilm · visual off · starting");
    expect(at("idle")).toBe("vaultlens ✓ minilm · visual off");
    expect(at("indexing", { progress: { ...statusOf.progress, eta_s: null, eta: "estimating" } }))
      .toBe("vaultlens ✓ minilm · visual off · indexing 3/9 · 2.5 files/s · ETA estimating");
    expect(at("idle", { queue: 2 })).toBe("vaultlens ✓ minilm · visual off · 2 queued");
    expect(at("indexing", { progress: { done: 0, total: 9, current: "a.md", files_per_s: null,
      eta_s: null } })).toBe("vaultlens ✓ minilm · visual off · indexing 0/9");
    expect(at("idle", { problem: "the data dir is full" }))
      .toBe("vaultlens ✓ minilm · visual off · ⚠ index problem");
    expect(duration(5400)).toBe("1h 30m");
  });

  it("registers its commands without default hotkeys", async () => {
    const { p } = await plugin(() => statusOf);
    const commands = (p as unknown as { commands: { id: string; hotkeys?: unknown }[] }).commands;
    expect(commands.map((c) => c.id)).toEqual(["search", "similar-images", "related"]);
    expect(commands.every((c) => c.hotkeys === undefined)).toBe(true);
  });

  it("finds similar images for the embed under the cursor", async () => {
    const { app, p, calls } = await plugin((path) => path === "/api/similar" ? { ok: true, results: [imageHit()] } : statusOf);
    app.vault.add("Attachments/board.png");
    const note = app.vault.add("Today.md");
    const editor = { getCursor: () => ({ line: 0, ch: 3 }), getLine: () => "![[board.png]] and text" };
    const command = (p as unknown as { commands: { id: string; editorCheckCallback: Function }[] })
      .commands.find((c) => c.id === "similar-images")!;
    expect(command.editorCheckCallback(true, editor, { file: note })).toBe(true);
    command.editorCheckCallback(false, editor, { file: note });
    await vi.waitFor(() => expect(calls.some((c) => c.path === "/api/similar")).toBe(true));
    expect(calls.find((c) => c.path === "/api/similar")!.body).toEqual({ path: "Attachments/board.png", k: 20 });
    const plain = { getCursor: () => ({ line: 0, ch: 0 }), getLine: () => "no picture here" };
    expect(command.editorCheckCallback(true, plain, { file: note })).toBe(false);
    // and from the context menu, in the editor and in the file explorer
    const menu = new Menu();
    app.workspace.trigger("editor-menu", menu, editor, { file: note });
    app.workspace.trigger("editor-menu", menu, plain, { file: note });
    app.workspace.trigger("file-menu", menu, app.vault.getFileByPath("Attachments/board.png"));
    app.workspace.trigger("file-menu", menu, note);
    expect(menu.items.map((i) => i.title)).toEqual(["Find similar images", "Find similar images"]);
  });
});


describe("thumbnails", () => {
  it("are fetched once, and at most 200 are kept (older object URLs revoked)", async () => {
    const revoked: string[] = [];
    const realRevoke = URL.revokeObjectURL;
    URL.revokeObjectURL = (u: string) => void revoked.push(u);
    const app = new App();
    let fetched = 0;
    vi.stubGlobal("fetch", async (url: string) => {
      if (url.includes("/thumbnail")) fetched += 1;
      return new Response(url.includes("/thumbnail") ? new Blob(["x"]) : JSON.stringify(statusOf));
    });
    const p = new VaultlensPlugin(app as never, {} as never);
    await p.onload();
    const first = await p.thumbnail(1);
    expect(await p.thumbnail(1)).toBe(first);
    expect(fetched).toBe(1);
    for (let id = 2; id <= 201; id++) await p.thumbnail(id);
    await Promise.resolve();
    expect(revoked).toEqual([first]);
    URL.revokeObjectURL = realRevoke;
  });
});

describe("related view", () => {
  it("sends the paragraph at the cursor as prose, not as query syntax", async () => {
    const { p, calls } = await plugin((path) => path === "/api/search"
      ? { ok: true, results: [hit()], partial: false, took_ms: 3 } : statusOf);
    const make = (p as unknown as { views: Map<string, (leaf: unknown) => any> }).views
      .get(RELATED_VIEW)!;
    const view = make(new WorkspaceLeaf());
    const prose = 'We said "storm" kind:of after:lunch -pier and left.';
    await view.update(prose, "Today.md", 3);
    const sent = calls.filter((c) => c.path === "/api/search").map((c) => c.body);
    expect(sent).toEqual([{ query: prose, k: expect.any(Number), literal: true }]);
  });
});
