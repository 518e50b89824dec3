// The daemon's API as TypeScript types. Each request and result type has a list of its field
// names that the compiler holds to exactly the type's keys (`satisfies`); a test holds the lists
// to the daemon's /api/openapi.json. So a field added on either side fails a check.

export type Kind = "note" | "image" | "pdf";

export interface SearchRequest {
  query: string;
  k?: number;
  offset?: number;
  path?: string;
  kind?: Kind;
  tag?: string;
  before?: string;
  after?: string;
  where?: string;
  exclude?: string;
  image?: string;
  /** the query is prose (a paragraph), not syntax: no filters, phrases or -words */
  literal?: boolean;
}

export interface SimilarRequest {
  path: string;
  k?: number;
}

export interface ReindexRequest {
  path: string;
}

export interface ContextBlock {
  start: number;
  end: number;
  text: string;
  role: string;
}

/** Where an image or PDF page is embedded. */
export interface Place {
  note: string;
  line: number;
  headings: string[];
  context: ContextBlock[];
}

/** An image or PDF a paragraph embeds. */
export interface Embedded {
  path: string;
  line: number;
  page: number | null;
  caption: string | null;
  item: number | null;
}

export interface Hit {
  id: number;
  kind: Kind;
  path: string;
  line: number | null;
  end_line: number | null;
  page: number | null;
  score: number;
  text: string;
  highlights: [number, number][];
  headings: string[];
  links: Place[];
  images: Embedded[];
  /** places past the daemon's cap per hit, counted and not listed in `links` */
  more_links: number;
  /** pictures past the cap, counted and not listed in `images` */
  more_images: number;
  /** why it matched: query words in its own text (for a picture, read in it), in the
   * paragraphs around a picture, or by meaning alone */
  matched: "words" | "context" | "meaning";
  /** an image or PDF page's paragraph at its first place, as plain text ("" for a note) */
  context_text: string;
  /** the query's words in `context_text`, as `highlights` */
  context_highlights: [number, number][];
}

/** Whether an answer may miss something: the query model is loading (keywords alone), or
 * files are still to be indexed; `indexed_share` is 1 when the index is complete. */
export interface Coverage {
  partial: boolean;
  partial_reason: "model loading" | "indexing" | "index incomplete" | null;
  indexed_share: number;
}

export interface SearchAnswer extends Coverage {
  ok: true;
  results: Hit[];
  took_ms: number;
}

export interface Status extends Coverage {
  ok: true;
  vault: string;
  model: string;
  visual_search: boolean;
  vector_search_ready: boolean;
  notice: string | null;
  counts: Record<string, number>;
  vectors: number;
  /** loading: the query model (searches are keyword-only); starting: the first run has
   * not begun; indexing; idle */
  state: "loading" | "starting" | "indexing" | "idle";
  indexing: boolean;
  queue: number;
  progress: {
    done: number;
    total: number;
    current: string | null;
    files_per_s: number | null;
    eta_s: number | null;
    /** "estimating" until the pace is known well enough for `eta_s` */
    eta: "estimating" | null;
  };
  problem: string | null;
  /** real problems, the most serious first */
  failures: { path: string; status: "skipped" | "retry" | "partial"; reason: string | null }[];
  /** files of a kind nobody searches, never read: counted by extension ("css": 3) */
  ignored: Record<string, number>;
}

type Fields<T> = { [K in keyof Required<T>]: K };

export const SEARCH_FIELDS = Object.keys({
  query: "query", k: "k", offset: "offset", path: "path", kind: "kind", tag: "tag",
  before: "before", after: "after", where: "where", exclude: "exclude", image: "image",
  literal: "literal",
} satisfies Fields<SearchRequest>);

export const SIMILAR_FIELDS = Object.keys({ path: "path", k: "k" } satisfies Fields<SimilarRequest>);

export const REINDEX_FIELDS = Object.keys({ path: "path" } satisfies Fields<ReindexRequest>);

export const HIT_FIELDS = Object.keys({
  id: "id", kind: "kind", path: "path", line: "line", end_line: "end_line", page: "page",
  score: "score", text: "text", highlights: "highlights", headings: "headings",
  links: "links", images: "images", more_links: "more_links", more_images: "more_images",
  matched: "matched", context_text: "context_text", context_highlights: "context_highlights",
} satisfies Fields<Hit>);
