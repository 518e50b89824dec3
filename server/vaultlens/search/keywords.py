"""The keyword side of a search: the query's words, their BM25 scores over the catalog's FTS5
index, and coverage.

While the index stands still, the words' postings are in memory (index/postings.py) and every
item holding any query word is scored in numpy: bm25()'s scores, exactly, in a few
nanoseconds an item. The first search after a change, or with a word in too many items, asks
SQLite, as follows.

FTS5's bm25() costs about 0.75 µs for every item that holds any of the query's words, and it
cannot stop early: at 100,000 items, three common words matched 40,000 items and took 29 ms,
most of a search. So SQLite matches the rarest of the query's words only, as many as keep the
matched items under ``SEED_ROWS``, and returns the best of those items. Python then scores
them on all the words, with FTS5's own formula over FTS5's own totals: the score bm25() would
give them (a test holds the two together). What this gives up is an item that holds only the
common words: it is no keyword candidate (the vector side can still bring it), unless the rare
words are in too few items to fill the pool, when SQLite ranks the common words' items too. When all
the words together match fewer items than ``SEED_ROWS`` (every query in a vault of that size),
or when the pool is so deep that rescoring it would cost more (a filter admitting thousands of
items is ranked exactly), SQLite ranks them all.
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from vaultlens.index.postings import K1, B, Posting, Postings
from vaultlens.index.reader import Reader
from vaultlens.text import cjk_grams

log = logging.getLogger(__name__)
COMMON_SHARE = 0.3  # a word in more of the items than this is dropped from keyword ranking
MAX_QUERY_TOKENS = 96  # a CJK character brings itself and a bigram
SEED_ROWS = 10_000  # items SQLite's bm25() may score for one search (about 7 ms)
SEED_DEPTH = 2  # ... of which it returns this many times the pool, for Python to rescore
RESCORE_COST = 40  # rescoring an item in Python costs about as much as bm25() on 40 matches
# a word as FTS5's unicode61 tokenizer sees one: letters and digits ("_" separates)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_CASE_CHANGE = re.compile(r"(?<=[a-z])(?=[A-Z])")


def fts_tokens(query: str) -> list[str]:
    """The query's words (CJK as bigrams and single characters), lower-cased, once each. A
    word with a case change inside ("macOS", "iPhone") also brings its parts, because notes
    write "Mac OS" as often."""
    words = _TOKEN.findall(cjk_grams(query))
    parts = [p for w in words for p in _CASE_CHANGE.split(w) if p != w and len(p) > 1]
    return list(dict.fromkeys(t.lower() for t in words + parts))[:MAX_QUERY_TOKENS]


def fts_query(tokens: list[str]) -> str | None:
    """Any of the words, each quoted so that FTS5 syntax in a query cannot break it."""
    return " OR ".join(f'"{t}"' for t in tokens) if tokens else None


@dataclass
class Matches:
    """The keyword candidates of one query: BM25 (higher is better) and, for those Python
    scored, how often each holds each word (coverage reuses them)."""

    bm25: dict[int, float] = field(default_factory=dict)
    counts: dict[int, dict[str, int]] = field(default_factory=dict)


class Keywords:
    def __init__(self, catalog: Reader, postings: Postings | None = None) -> None:
        self.index = catalog.keyword_index
        self.postings = postings  # shared by the search threads (postings.py)

    def terms(self, text: str) -> dict[str, float]:
        """The query's words that rank, each with its inverse document frequency. Words in a
        large share of items weigh almost nothing in BM25 (IDF near 0) but make it score every
        item that has them: the rarer words alone rank (the two rarest when all are common)."""
        tokens = fts_tokens(text)
        if not tokens:
            return {}
        total = self.index.item_count() or 1
        freqs = self.index.term_frequencies(tokens)
        rare = [(w, n) for w, n in freqs if n <= COMMON_SHARE * total]
        if not rare:  # every word common (or the only word is): the rarest two still rank
            rare = sorted(freqs, key=lambda x: x[1])[:2]
        return {w: math.log(1 + (total - n + 0.5) / (n + 0.5)) for w, n in rare}

    def matches(self, terms: dict[str, float], pool: int,
                allowed: NDArray[np.int64] | None = None) -> Matches:
        """BM25 of the best ``pool`` items holding any of ``terms`` (among ``allowed`` items,
        ascending, when given)."""
        if not terms:
            return Matches()
        held = dict(self.index.term_frequencies(list(terms)))
        if self.postings is not None:
            stems = self.index.stems(list(terms))
            wanted = sorted({s for s in stems.values() if s})
            kept = self.index.postings(self.postings, wanted,
                                       {stems[w]: held[w] for w in terms})
            if kept is not None:
                return self._numpy_bm25(stems, *kept, pool, allowed)
        within = None if allowed is None else allowed.tolist()
        seeds: list[str] = []
        rows = 0
        for word in sorted(terms, key=lambda w: (held[w], w)):  # the rarest first
            if seeds and rows + held[word] > SEED_ROWS:
                break
            seeds.append(word)
            rows += held[word]
        rest = sum(held[w] for w in terms) - rows  # matches the common words would add
        if len(seeds) == len(terms) or rest <= RESCORE_COST * SEED_DEPTH * pool:
            # SQLite ranks every match: all the words fit, or rescoring a pool this deep
            # (a filter admitting thousands, a phrase widening its pool) would cost more
            return Matches(self._sql_bm25(list(terms), pool, within))
        found = self._sql_bm25(seeds, SEED_DEPTH * pool, within)
        matches = self._python_bm25(list(found), held)
        if matches is None:  # FTS5's totals unreadable: the rare words' score is still BM25
            return Matches(dict(sorted(found.items(), key=lambda x: -x[1])[:pool]))
        scores = dict(matches.bm25)
        if len(found) < pool:
            # the rare words are in too few items to fill the pool ("zebra" in two notes,
            # or a word no note has): the items holding only common words fill it, ranked by
            # SQLite. None of them holds a rare word (those are all in ``found``), so their
            # score over the common words is their whole score: the pool is exact
            common = [w for w in terms if w not in seeds]
            for i, score in self._sql_bm25(common, pool, within).items():
                scores.setdefault(i, score)
        best = sorted(scores, key=lambda i: (-scores[i], i))[:pool]
        return Matches({i: scores[i] for i in best},
                       {i: matches.counts[i] for i in best if i in matches.counts})

    def _numpy_bm25(self, stems: dict[str, str], rows: int, postings: dict[str, Posting],
                    pool: int, allowed: NDArray[np.int64] | None = None) -> Matches:
        """BM25 of every item holding any of the words (of ``allowed``, when given), from their
        postings in memory: the score bm25() gives (FTS5 weighs each word of the query on its
        own, so two words with one stem count twice there and here), and the best ``pool``
        items' word counts. ``rows``: the items in the keyword index (a filter changes no
        word's weight: bm25() weighs over the whole index)."""
        kept = [(w, postings[s]) for w, s in stems.items() if s and len(postings[s].items)]
        if not kept or rows <= 0:
            return Matches()
        items = np.concatenate([p.items for _, p in kept])
        weights = np.concatenate([
            max(math.log((rows - len(p.items) + 0.5) / (len(p.items) + 0.5)), 1e-6) * p.factors
            for _, p in kept])
        if allowed is not None:
            inside = _within(items, allowed)
            items, weights = items[inside], weights[inside]
            if not len(items):
                return Matches()
        totals = np.bincount(items, weights)
        # the best entries, not the best of every id up to the largest: an item is in at
        # most one posting a word, so the best ``pool`` items are among these
        take = pool * len(kept)
        if len(items) > take:
            items = items[np.argpartition(-totals[items], take - 1)[:take]]
        best = sorted(set(items.tolist()), key=lambda i: (-totals[i], i))[:pool]
        counts: dict[int, dict[str, int]] = {i: {} for i in best}
        ids = np.asarray(best, dtype=np.int64)
        for word, posting in kept:
            at = np.minimum(np.searchsorted(posting.items, ids), len(posting.items) - 1)
            for i, n, found in zip(best, posting.counts[at].tolist(),
                                   (posting.items[at] == ids).tolist(), strict=True):
                if found:
                    counts[i][word] = n
        return Matches({i: float(totals[i]) for i in best}, counts)

    def coverage(self, ids: list[int], terms: dict[str, float],
                 counts: dict[int, dict[str, int]]) -> dict[int, float]:
        """The share of the query's word weight (IDF) that each item holds, in any field. BM25
        divides by length, so a long OCR text that holds nearly every word of the query loses
        to a short paragraph that holds one or two; coverage does not divide by length.
        ``counts``: the word counts already read for some of the items."""
        whole = sum(terms.values())
        if not ids or whole <= 0:
            return {}
        missing = [i for i in ids if i not in counts]
        if missing:
            counts = {**counts, **self._counts(missing, list(terms))[0]}
        return {i: sum(terms[w] for w in counts[i]) / whole for i in ids if i in counts}

    def _sql_bm25(self, words: list[str], limit: int, allowed: list[int] | None
                  ) -> dict[int, float]:
        match = fts_query(words)
        if match is None:
            return {}
        try:
            return self.index.bm25(match, limit, allowed)
        except sqlite3.OperationalError:
            # a query FTS5 cannot take should not end a search, but must not vanish either
            log.warning("keyword search failed for %r", match, exc_info=True)
            return {}

    def _counts(self, ids: list[int], words: list[str]
                ) -> tuple[dict[int, dict[str, int]], dict[int, int]]:
        """How often each item holds each word (only the words it holds), and its length."""
        stems = self.index.stems(words)
        by_stem, lengths = self.index.term_counts(ids, list(stems.values()))
        counts = {i: {w: held[s] for w, s in stems.items() if s in held}
                  for i, held in by_stem.items()}
        return {i: counts.get(i, {}) for i in lengths}, lengths

    def _python_bm25(self, ids: list[int], held: dict[str, int]) -> Matches | None:
        """FTS5's bm25() for these items and words (``held``: each word's item count),
        computed here: IDF over FTS5's row count, length over its average, a word's count
        summed over the fields (each weighs 1)."""
        rows, tokens = self.index.totals()
        if rows <= 0 or tokens <= 0:
            return None
        words = list(held)
        idf = {w: max(math.log((rows - held[w] + 0.5) / (held[w] + 0.5)), 1e-6) for w in words}
        average = tokens / rows
        counts, lengths = self._counts(ids, words)
        bm25 = {}
        for i, have in counts.items():
            norm = K1 * (1 - B + B * lengths[i] / average)
            bm25[i] = sum(idf[w] * n * (K1 + 1) / (n + norm) for w, n in have.items())
        return Matches(bm25, counts)


def _within(items: NDArray[np.int64], allowed: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Which of ``items`` are in ``allowed`` (ascending): a binary search each."""
    if not len(allowed):
        return np.zeros(len(items), dtype=bool)
    at = np.minimum(np.searchsorted(allowed, items), len(allowed) - 1)
    found: NDArray[np.bool_] = allowed[at] == items
    return found
