import type { Hit } from "../src/types";

export function hit(over: Partial<Hit> = {}): Hit {
  return {
    id: 1, kind: "note", path: "Notes/Sync.md", line: 12, end_line: 14, page: null, score: 1,
    text: "Exclude a folder in selective sync settings", highlights: [[21, 27]],
    headings: ["Sync", "Selective sync"], links: [], images: [], more_links: 0, more_images: 0,
    matched: "words", context_text: "", context_highlights: [], ...over,
  };
}

export const imageHit = (over: Partial<Hit> = {}): Hit => hit({
  id: 2, kind: "image", path: "Attachments/chart.png", line: null, end_line: null, text: "Q3 chart",
  highlights: [], headings: [],
  links: [{ note: "Work/Chart.md", line: 5, headings: ["Chart"], context: [
    { start: 5, end: 5, text: "![[chart.png]]", role: "containing" },
    { start: 3, end: 3, text: "A purple chart comparing two tools.", role: "before" }] }],
  ...over,
});
