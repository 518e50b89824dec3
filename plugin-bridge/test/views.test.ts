import { describe, expect, it } from "vitest";
import { App, WorkspaceLeaf } from "./obsidian-mock";
import { paragraphAt, RelatedView } from "../src/related-view";
import { DEFAULTS, SECRET_ID, TokenStore } from "../src/settings";
import { hit, imageHit } from "./fixtures";

describe("Related view", () => {
  it("takes the paragraph around the cursor", () => {
    const lines = ["# Title", "", "first line", "second line", "", "other"];
    expect(paragraphAt(lines, 3)).toBe("first line\nsecond line");
    expect(paragraphAt(lines, 1)).toBe("");
    expect(paragraphAt(["x".repeat(900)], 0)).toHaveLength(500);
  });

  it("shows related hits but not the spot the cursor is in", async () => {
    const asked: string[] = [];
    const view = new RelatedView(new WorkspaceLeaf() as never, {
      search: async (q) => {
        asked.push(q);
        return [hit({ path: "Notes/Sync.md", line: 12, end_line: 14 }), imageHit()];
      },
      thumbnails: async () => null,
      open: async () => undefined,
      explain: (e) => String(e),
    });
    await view.onOpen();
    await view.update("selective sync", "Notes/Sync.md", 13);
    const shown = [...view.contentEl.querySelectorAll(".vaultlens-where")].map((e) => e.textContent);
    expect(shown).toEqual(["Attachments/chart.png"]);
    await view.update("selective sync", "Notes/Sync.md", 13); // same spot: no new request
    expect(asked).toEqual(["selective sync"]);
  });

  it("says what went wrong instead of staying empty", async () => {
    const view = new RelatedView(new WorkspaceLeaf() as never, {
      search: async () => { throw new Error("down"); },
      thumbnails: async () => null,
      open: async () => undefined,
      explain: () => "vaultlens: no daemon",
    });
    await view.update("text", "a.md", 1);
    expect(view.contentEl.textContent).toBe("vaultlens: no daemon");
  });
});

describe("token storage", () => {
  it("uses Obsidian's secret storage where the app has it", () => {
    const app = new App() as unknown as { secretStorage: unknown };
    const secrets = new Map<string, string>();
    app.secretStorage = {
      getSecret: (id: string) => secrets.get(id) ?? null,
      setSecret: (id: string, value: string) => void secrets.set(id, value),
    };
    const settings = { ...DEFAULTS };
    const store = new TokenStore(app as never, settings);
    store.set(" s3cret ");
    expect(secrets.get(SECRET_ID)).toBe("s3cret");
    expect(settings.token).toBe(""); // never in data.json then
    expect(store.get()).toBe("s3cret");
  });

  it("falls back to the plugin's data on older Obsidian", () => {
    const settings = { ...DEFAULTS };
    const store = new TokenStore(new App() as never, settings);
    store.set("t");
    expect(store.usesSecretStorage).toBe(false);
    expect(settings.token).toBe("t");
    expect(store.get()).toBe("t");
  });
});
