import { describe, expect, it } from "vitest";
import { place, renderHit } from "../src/render";
import { hit, imageHit } from "./fixtures";

describe("renderHit", () => {
  it("marks the query's words from the daemon's spans, as text", () => {
    const box = document.createElement("div");
    renderHit(box, hit({ text: "<b>folder</b> sync", highlights: [[14, 18]] }), async () => null);
    const snippet = box.querySelector(".vaultlens-snippet")!;
    expect(snippet.querySelector("mark")!.textContent).toBe("sync");
    expect(snippet.querySelector("b")).toBeNull(); // markup in notes stays text
    expect(snippet.textContent).toBe("<b>folder</b> sync");
  });

  it("shows a picture's thumbnail and the paragraph it was pasted beside", async () => {
    const box = document.createElement("div");
    renderHit(box, imageHit(), async (id) => `blob:thumb-${id}`);
    await Promise.resolve();
    expect(box.querySelector("img")!.getAttribute("src")).toBe("blob:thumb-2");
    expect(box.querySelector(".vaultlens-context")!.textContent)
      .toBe("← Work/Chart.md:5 — A purple chart comparing two tools.");
  });

  it("says where a hit is", () => {
    expect(place(hit())).toBe("Notes/Sync.md:12-14");
    expect(place(hit({ end_line: 12 }))).toBe("Notes/Sync.md:12");
    expect(place(hit({ kind: "pdf", path: "a.pdf", page: 3, line: null }))).toBe("a.pdf p. 3");
  });
});
