"""Keyword-index test data: a Zipf-shaped catalog, a BM25 computed in plain SQL to check against,
and a highlighter on the index's own stemmer."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from vaultlens.index.catalog import Catalog
from vaultlens.index.keyword_index import KeywordIndex
from vaultlens.search.highlights import Highlighter
from vaultlens.search.keywords import fts_query

WORDS = [f"w{i}" for i in range(40)] + ["running", "runs", "设置", "同步"]


def zipf_catalog(path: Path, seed: int = 7, long_every: int = 0) -> Catalog:
    """300 items whose three fields hold words of very different frequencies (Zipf);
    ``long_every``: every so many items, a text field of up to 400 words (more than 127
    tokens: two-byte sizes in FTS5's docsize records)."""
    rng = random.Random(seed)
    weights = [1 / (n + 1) for n in range(len(WORDS))]

    def field(most: int) -> str:
        return " ".join(rng.choices(WORDS, weights, k=rng.randint(0, most)))

    cat = Catalog.open(path)
    with cat.transaction():
        fid = cat.upsert_file("n.md", "note", 1, 1, "h", "indexed", None)
        _, ids = cat.replace_items(fid, [{"kind": "section", "text": "x", "content_hash": str(n)}
                                         for n in range(300)])
        for n, i in enumerate(ids):
            long = long_every and n % long_every == 0
            cat.set_fts(i, field(400 if long else 60), field(4), field(20))
    return cat


def sql_bm25(cat: Catalog, words: list[str]) -> dict[int, float]:
    return {int(r[0]): -float(r[1]) for r in cat._conn.execute(
        "SELECT rowid, bm25(items_fts) FROM items_fts WHERE items_fts MATCH ?",
        (fts_query(words),))}


def highlighter() -> Highlighter:
    """With the index's own stemmer, on a connection of its own (no index needed)."""
    return Highlighter(KeywordIndex(sqlite3.connect(":memory:")).stems)
