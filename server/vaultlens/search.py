"""Search: vector similarity and BM25 keyword matches, fused by reciprocal rank.

Vectors find what a query means; the full-text index keeps exact words matching (names, error
messages, OCR'd labels). Each hit carries what an editor needs to open it: the vault path, the
line or page, and for images and PDF pages the notes and lines that embed them.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from vaultlens.catalog import Catalog, cjk_bigrams
from vaultlens.embedders import Embedder
from vaultlens.vectors import VectorIndex

RRF_K = 60
COMMON_SHARE = 0.10  # a word in more of the items than this is dropped from keyword ranking
_TOKEN = re.compile(r"\w+", re.UNICODE)
KINDS = {"section": "note", "image": "image", "page": "pdf"}


@dataclass
class Hit:
    id: int
    kind: str  # note | image | pdf
    path: str
    line: int | None  # 1-based start line, for notes
    end_line: int | None
    page: int | None  # 1-based, for PDFs
    score: float
    text: str  # a snippet
    headings: list[str] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fts_tokens(query: str) -> list[str]:
    """The query's words (CJK as bigrams), lower-cased, once each."""
    return list(dict.fromkeys(t.lower() for t in _TOKEN.findall(cjk_bigrams(query))))


def fts_query(tokens: list[str]) -> str | None:
    """Any of the words, each quoted so that FTS5 syntax in a query cannot break it."""
    return " OR ".join(f'"{t}"' for t in tokens) if tokens else None


def snippet(text: str, query: str, width: int = 240) -> str:
    flat = " ".join(text.split())
    lowered = flat.lower()
    positions = [lowered.find(t.lower()) for t in _TOKEN.findall(query) if len(t) > 2]
    found = [p for p in positions if p >= 0]
    start = max(0, min(found) - width // 4) if found else 0
    cut = flat[start : start + width]
    return ("…" if start else "") + cut + ("…" if start + width < len(flat) else "")


@dataclass(frozen=True)
class Filters:
    path: str | None = None  # a vault folder or file: hits at or under it
    kind: str | None = None  # note | image | pdf
    tag: str | None = None  # notes with this tag, and images/pages those notes embed

    @property
    def active(self) -> bool:
        return bool(self.path or self.kind or self.tag)


class Searcher:
    def __init__(self, catalog: Catalog, vectors: VectorIndex, embedder: Embedder) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder

    def vector_ranking(self, query: str, pool: int) -> list[int]:
        vector = self.embedder.embed_texts([query], "query")[0]
        ids, _ = self.vectors.search(vector, pool)
        return [int(i) for i in ids]

    def keyword_ranking(self, query: str, pool: int) -> list[int]:
        tokens = fts_tokens(query)
        if len(tokens) > 1:
            # Words in a large share of items weigh almost nothing in BM25 (IDF near 0) but
            # make it score every item that has them: rank by the rarer words alone.
            total = max(1, self.catalog.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
            freqs = self.catalog.term_frequencies(tokens)
            rare = [w for w, n in freqs if n <= COMMON_SHARE * total]
            tokens = rare or [w for w, _ in sorted(freqs, key=lambda x: x[1])[:2]]
        match = fts_query(tokens)
        if match is None:
            return []
        try:
            rows = self.catalog.conn.execute(
                "SELECT rowid FROM items_fts WHERE items_fts MATCH ?"
                " ORDER BY bm25(items_fts, 1.0, 0.6, 0.4) LIMIT ?", (match, pool)).fetchall()
        except sqlite3.OperationalError:
            return []
        return [int(r[0]) for r in rows]

    def search(self, query: str, k: int = 10, offset: int = 0,
               filters: Filters | None = None, vectors: bool = True) -> list[Hit]:
        """The best k hits after ``offset``, within ``filters``. Filters apply after
        retrieval, so the pool is widened when they are set. ``vectors=False``: keywords only
        (the daemon's first seconds, while the query model loads)."""
        filters = filters or Filters()
        pool = max(50, 5 * (k + offset)) * (4 if filters.active else 1)
        scores: dict[int, float] = {}
        rankings = [self.keyword_ranking(query, pool)]
        if vectors:
            rankings.insert(0, self.vector_ranking(query, pool))
        for ranking in rankings:
            for rank, item_id in enumerate(ranking):
                scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(scores, key=lambda i: -scores[i])
        hits: list[Hit] = []
        skipped = 0
        for item_id in best:
            hit = self.hit(item_id, scores[item_id], query)
            if hit is None or not self.admits(filters, hit):
                continue
            if skipped < offset:
                skipped += 1
                continue
            hits.append(hit)
            if len(hits) == k:
                break
        return hits

    def admits(self, filters: Filters, hit: Hit) -> bool:
        if filters.kind and hit.kind != filters.kind:
            return False
        if filters.path and not (hit.path == filters.path
                                 or hit.path.startswith(filters.path.rstrip("/") + "/")):
            return False
        if filters.tag:
            notes = [hit.path] if hit.kind == "note" else [x["note"] for x in hit.links]
            marks = ",".join("?" * len(notes))
            row = self.catalog.conn.execute(
                f"SELECT 1 FROM tags JOIN files ON files.id = tags.file_id"
                f" WHERE tags.tag = ? AND files.path IN ({marks}) LIMIT 1",
                (filters.tag.lstrip("#"), *notes)).fetchone() if notes else None
            if row is None:
                return False
        return True

    def hit(self, item_id: int, score: float, query: str) -> Hit | None:
        row = self.catalog.item(item_id)
        if row is None:
            return None
        kind = KINDS[row["kind"]]
        links = []
        if kind in ("image", "pdf"):
            for x in self.catalog.links_to(row["path"]):
                if kind == "pdf" and x["page"] not in (None, row["page"]):
                    continue
                links.append({"note": x["note"], "line": x["line"], "headings": x["headings"],
                              "context": x["context"]})
        return Hit(
            id=item_id, kind=kind, path=row["path"], line=row["start_line"],
            end_line=row["end_line"], page=row["page"], score=round(score, 6),
            text=snippet(row["text"], query), headings=json.loads(row["headings"]), links=links,
        )
