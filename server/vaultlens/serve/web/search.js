// A search as the page shows it: the hits under the chosen kind chip, up to a limit, and for
// each chip the number of hits it shows. Each chip's number comes from the same search with
// that chip's kind (the server filters before it ranks), so a chip never counts hits from a
// different list than the one it shows.
import { call } from "./api.js";

export const PAGE = 30;  // hits shown at first, and added by each "Show more"
export const KINDS = ["note", "image", "pdf"];
const MAX_K = 100;  // the API's bounds on k and offset (serve/requests.py)
const MAX_OFFSET = 1000;
export const MAX_SHOWN = MAX_OFFSET + MAX_K - 1;

const key = (h) => `${h.kind}:${h.id}:${h.path}:${h.line}:${h.page}`;

// up to `want` hits of one search, fetched in slices of at most MAX_K; the first answer's
// fields (partial, ...) come along
async function upTo(body, want, signal) {
  const hits = [];
  const seen = new Set();
  let first = null;
  for (let offset = 0; offset < want && offset <= MAX_OFFSET; offset += MAX_K) {
    const k = Math.min(MAX_K, want - offset);
    const answer = await call("/api/search", { ...body, k, offset }, signal);
    first = first || answer;
    for (const h of answer.results) if (!seen.has(key(h))) { seen.add(key(h)); hits.push(h); }
    if (answer.results.length < k) break;
  }
  return { ...first, results: hits };
}

// the hits to show under `kind` ("" for all), at most `limit`, whether there are more, and
// each chip's number as it reads ("12", or "30+" when the chip would offer "Show more")
export async function find(body, kind, limit, signal) {
  const chips = ["", ...KINDS];
  const answers = await Promise.all(chips.map((c) => {
    const cap = c === kind ? limit : PAGE;  // one more than shown tells whether there are more
    return upTo(c ? { ...body, kind: c } : body, cap + 1, signal);
  }));
  const counts = {};
  chips.forEach((c, i) => {
    const cap = c === kind ? limit : PAGE;
    const n = answers[i].results.length;
    counts[c] = n > cap ? `${cap}+` : String(n);
  });
  const shown = answers[chips.indexOf(kind)];
  return { answer: shown, hits: shown.results.slice(0, limit),
           more: shown.results.length > limit && limit < MAX_SHOWN, counts };
}

// what a partial answer means, in a line (empty when the answer is complete); an answer
// without partial_reason is the model still loading
export function partialNote(answer) {
  if (!answer || !answer.partial) return "";
  const reason = answer.partial_reason || "model loading";
  if (reason === "indexing") {
    const share = Number(answer.indexed_share);
    const done = Number.isFinite(share)
      ? ` ${Math.floor(Math.min(Math.max(share, 0), 1) * 100)}% of the vault so far;` : "";
    return `Still indexing:${done} results may be incomplete.`;
  }
  if (reason === "model loading") return "The model is still loading: keyword hits only.";
  if (reason === "index incomplete") {
    return "The last indexing run did not finish (the status below says why): " +
      "results may be incomplete.";
  }
  return "Results may be incomplete.";
}

// a query as long as a search reads, cut where a search cuts it: at the last space before
// `max` characters (search/searcher.py)
export function cutQuery(q, max) {
  if (!max || q.length <= max) return q;
  const head = q.slice(0, max);
  const space = head.lastIndexOf(" ");
  return space > 0 ? head.slice(0, space) : head;
}
