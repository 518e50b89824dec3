"""Search: keyword and vector evidence for every candidate, combined, then lent to images.

1. Candidates: the best BM25 matches (keywords.py: FTS5, CJK as bigrams; in a large vault,
   found through the rarest words) and the nearest vectors, plus the images and PDF pages
   placed in or beside any candidate paragraph.
2. Every candidate gets both scores exactly: its BM25 score (0 when it holds no query word) and
   its cosine to the query. Reciprocal-rank fusion of two lists fails here: an item missing
   from one list gets nothing from it, so a keyword rank of 1 sinks below items that are
   mediocre in both. Scores are put on one scale (BM25 over the best BM25 of the query;
   cosine above a noise floor over the best cosine) and added. Half of the keyword side is
   coverage, the IDF-weighted share of the query's words an item holds: BM25 divides by
   length, so without it a long OCR text with every word loses to a short paragraph with one.
3. An image is lent most of the best score of the paragraphs around it (the ones
   ``context.py`` shows beside it): a query that matches the paragraph a screenshot was pasted
   into finds the screenshot, next to that paragraph. Its score is the larger of its own and
   the lent one, plus half the smaller, so that it does not count the paragraph's words twice.
4. With a text model that is not multilingual, vectors of a CJK query are noise: keywords only.
5. Paragraphs that follow one another under one heading come back as one passage.
6. Path, kind, tag and property filters choose the items ranked (index/lookups.py); dates,
   "phrases" and -excluded words apply to the ranked list, whose pool widens until enough
   hits pass or the index is exhausted.
7. Optionally, a cross-encoder reranks the top hits (reranker.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vaultlens.embedders.base import Embedder, Input, Vectors
from vaultlens.index.postings import Postings
from vaultlens.index.reader import Reader
from vaultlens.index.vectors import Rows, VectorIndex
from vaultlens.search.filters import Admission, passes
from vaultlens.search.fusion import Evidence, Fusion
from vaultlens.search.hits import Hit, HitMaker
from vaultlens.search.keywords import Keywords, Matches
from vaultlens.search.kinds import ITEM_KIND
from vaultlens.search.query import Filters, Query, QueryError, parse
from vaultlens.search.reranker import Rerank
from vaultlens.text import CJK

MAX_QUERY_CHARS = 1000  # a pasted page is searched by its start: a search stays milliseconds
COVERAGE_DEPTH = 100  # keyword candidates whose coverage of the query is counted
EXACT_WITHIN = 5000  # a path/kind filter admitting at most this many items scores them all
# a filter admitting more finds its nearest items by a scan of every vector when the scan's
# depth (the items not allowed, and twice the pool) times this is at most what it admits: a
# scan costs about as much as fetching as many vectors as its depth, plus a floor (a scan of
# every vector costs about as much as fetching a few hundred of them one by one)
SCAN_SHARE = 4
# a query's vector, or a call that waits for it (Searcher._vector_soon), or None: no vectors
VectorSource = Vectors | Callable[[], Vectors | None] | None
# the items a path or kind filter admits, ascending (index/lookups.py); None: no such filter
Allowed = NDArray[np.int64] | None


@dataclass(frozen=True)
class Grouping:
    """Which paragraphs come back as one passage."""

    gap: int = 3  # lines between hits (a blank, a placement, a blank) in one passage
    lines: int = 20  # ... of at most this many lines


def read_query(query: str, literal: bool, is_property: Callable[[str], bool]) -> Query:
    """The query as a search reads it: parsed (unless ``literal``: prose, not syntax), its text
    cut to its first ``MAX_QUERY_CHARS``."""
    parsed = Query(" ".join(query.split())) if literal else parse(query, is_property)
    if len(parsed.text) > MAX_QUERY_CHARS:
        parsed = replace(parsed, text=parsed.text[:MAX_QUERY_CHARS].rsplit(" ", 1)[0])
    return parsed


def embeds(text: str, multilingual: bool) -> bool:
    """Whether a search embeds this text: not when it is empty, nor when it is Chinese or
    Japanese and the model is not multilingual (its vectors would be noise)."""
    return bool(text.strip()) and not (CJK.search(text) and not multilingual)


def _yes(_: str) -> bool:
    return True


def _no(_: str) -> bool:
    return False


def text_to_embed(query: str, literal: bool, multilingual: bool) -> str | None:
    """The text a text search for ``query`` will embed, told without the catalog (the daemon
    announces it while the search waits for a thread: coalesce.py). None when nothing will be
    embedded, or when that depends on which of its names are properties in this vault."""
    if len(query) > 2 * MAX_QUERY_CHARS:  # told on the event loop: a pasted page is not
        return None  # parsed there (its search reads it in a search thread)
    try:
        texts = {read_query(query, literal, answer).text for answer in (_yes, _no)}
    except QueryError:
        return None
    text = texts.pop()
    return text if not texts and embeds(text, multilingual) else None


class Searcher:
    def __init__(self, catalog: Reader, vectors: VectorIndex, embedder: Embedder,
                 fusion: Fusion | None = None, rerank: Rerank | None = None,
                 postings: Postings | None = None, grouping: Grouping | None = None) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.fusion = fusion or Fusion()
        self.grouping = grouping or Grouping()
        self.rerank = rerank
        self.hits = HitMaker(catalog)
        self.keywords = Keywords(catalog, postings)

    # the two rankers ----------------------------------------------------------------------
    def weighted_terms(self, text: str) -> dict[str, float]:
        """The query's words that rank, each with its IDF (see keywords.py)."""
        return self.keywords.terms(text)

    def keyword_scores(self, text: str, pool: int, allowed: Allowed = None,
                       terms: dict[str, float] | None = None) -> Matches:
        """BM25 (higher is better) of the best ``pool`` items holding any query word (among
        ``allowed`` items, when given). ``terms``: the query's from :meth:`weighted_terms`."""
        return self.keywords.matches(self.weighted_terms(text) if terms is None else terms, pool,
                                     allowed)

    def query_vector(self, text: str, image: Any = None) -> Vectors | None:
        """The query's vector, or None when vectors cannot help (no text and no image, or a
        CJK query for a model that is not multilingual)."""
        # JSON lets a lone surrogate ("\ud800") through; no tokenizer takes one
        text = text.encode("utf-8", "replace").decode("utf-8")
        if image is not None:
            vectors = self.embedder.embed([Input(text=text or None, image=image)], "query")
        elif not embeds(text, self.embedder.multilingual):
            return None
        else:
            vectors = self.embedder.embed_texts([text], "query")
        vector: Vectors = vectors[0]
        return vector

    def _vector_soon(self, text: str, image: Any) -> VectorSource:
        """The query's vector, computed in a thread of its own while the search scores the
        words: the query model works in a worker process (or in torch) without Python's
        lock, so the keyword side no longer adds to a search's time. The call returned waits
        for it, and raises what the model raised. None when no vector will be asked for."""
        if image is None and not embeds(text, self.embedder.multilingual):
            return None
        future: Future[Vectors | None] = Future()

        def run() -> None:
            try:
                future.set_result(self.query_vector(text, image))
            except BaseException as exc:  # handed to the search, which decides
                future.set_exception(exc)

        threading.Thread(target=run, name="query-vector", daemon=True).start()
        return future.result

    # combining ----------------------------------------------------------------------------
    def evidence(self, text: str, pool: int, vector: VectorSource,
                 allowed: Allowed = None) -> Evidence:
        """The candidates of the query's words and vector (None: keywords only; a call: the
        vector when it is ready, asked for once the words are scored) and every signal of
        each: see fusion.py. ``allowed``: rank among these items only (a path or kind filter,
        ascending): exact, however few they are."""
        ev = Evidence()
        terms = self.weighted_terms(text) if text.strip() else {}
        matches = self.keyword_scores(text, pool, allowed, terms) if terms else Matches()
        ev.bm25, ev.idf = matches.bm25, sum(terms.values())
        if ev.bm25 and self.fusion.weights.coverage:
            # coverage of the best BM25 matches only: a path filter ranks thousands exactly
            ranked = sorted(ev.bm25, key=lambda i: -ev.bm25[i])[:COVERAGE_DEPTH]
            ev.coverage = self.keywords.coverage(ranked, terms, matches.counts)
        candidates = set(ev.bm25)
        # a filter admitting at most the pool: all its items are candidates, known before the
        # query's vector is, so their places, the images around them and their vectors are
        # read while the query model works (None: not known yet)
        every = (sorted(candidates.union(allowed.tolist())) if vector is not None
                 and allowed is not None and len(allowed) <= pool else None)
        ahead = None if every is None else self._around(every, fetch=True)
        if callable(vector):
            vector = vector()
        if vector is not None and allowed is None:
            ids, sims = self.vectors.search(vector, pool)
            candidates.update(ids.tolist())
            if len(sims) >= pool:  # the pool's depth reached: what "unrelated" looks like
                ev.reference = float(np.min(sims))
        elif vector is not None and allowed is not None and every is not None:
            candidates.update(every)
        elif vector is not None and allowed is not None:
            nearest, ev.reference = self.nearest_allowed(vector, allowed, pool)
            candidates.update(nearest)
        if ahead is None or vector is None:
            ahead = self._around(sorted(candidates), fetch=False)
        ev.places, ev.around, lent, rows = ahead
        candidates |= lent
        if vector is not None and candidates:
            ordered = sorted(candidates)
            cosines = (self.vectors.similarities(vector, ordered) if rows is None
                       else rows.cosines(vector))
            ev.cosine = dict(zip(ordered, cosines.tolist(), strict=True))
            if allowed is not None and every is not None and len(allowed) >= pool:
                # the pool's depth: the least of their cosines
                ev.reference = min(ev.cosine[i] for i in allowed.tolist())
        return ev

    def _around(self, candidates: list[int], fetch: bool
                ) -> tuple[dict[int, tuple[int, str, int, int]], dict[int, set[int]], set[int],
                           Rows | None]:
        """The places of the candidates that are sections, the images around those (as
        Evidence holds them), those images not among the candidates, and (``fetch``) the
        vectors of all of them, by id. The places are read once: the images around them, and
        passages, need them."""
        places = self.catalog.section_places(candidates)
        around = self.catalog.images_around(candidates, places)
        lent = {i for found in around.values() for i in found}.difference(candidates)
        places.update(self.catalog.section_places(lent))  # a placed note is sections
        rows = self.vectors.rows(sorted({*candidates, *lent})) if fetch else None
        return places, around, lent, rows

    def nearest_allowed(self, vector: Vectors, allowed: NDArray[np.int64], pool: int
                        ) -> tuple[list[int], float]:
        """The ``pool`` allowed items nearest the query by their exact cosines (an item
        without a vector: 0), and the least of those cosines. When most items are allowed
        (kind:note), a scan of every vector in usearch deep enough to pass every item not
        allowed finds the nearest allowed ones, instead of fetching all their vectors; their
        cosines are computed again, as for any other candidate. The scan's order is the
        cosine's to about 1e-5, so its best ``2 * pool`` hold the exact best ``pool``."""
        scan = len(self.vectors) - len(allowed) + 2 * pool
        if SCAN_SHARE * scan <= len(allowed):
            ids, _ = self.vectors.search(vector, scan, exact=True)
            found = ids.astype(np.int64)
            # the scan's allowed items are the best of all allowed, in order: a prefix
            inside = found[np.isin(found, allowed, assume_unique=True)][: 2 * pool]
            if len(inside) == 2 * pool:
                sims = self.vectors.similarities(vector, inside.tolist())
                best = np.argsort(-sims)[:pool]
                # above 0: no allowed item without a vector (cosine 0) belongs among them
                if sims[best[-1]] > 0:
                    return inside[best].tolist(), float(sims[best[-1]])
        sims = self.vectors.similarities(vector, allowed.tolist())
        nearest = np.argsort(-sims)[:pool]
        return allowed[nearest].tolist(), float(sims[nearest[-1]])

    def scores(self, text: str, pool: int, vector: VectorSource,
               allowed: Allowed = None) -> dict[int, float]:
        """Every candidate's combined score (fusion.py)."""
        if not text.strip() and vector is None:
            return self.browse(pool, allowed)
        return self.fusion.combine(self.evidence(text, pool, vector, allowed))

    def browse(self, pool: int, allowed: Allowed = None) -> dict[int, float]:
        """A query of filters alone ("kind:image tag:trip"): items in path and line order."""
        ids = self.catalog.browse(pool, None if allowed is None else allowed.tolist())
        return {i: 1.0 - n / (len(ids) + 1) for n, i in enumerate(ids)}

    def search(self, query: str, k: int = 10, offset: int = 0, filters: Filters | None = None,
               vectors: bool = True, image: Any = None, literal: bool = False) -> list[Hit]:
        """The best k hits after ``offset``. ``query`` may hold filters (see query.py);
        ``filters`` adds more. ``vectors=False``: keywords only (the daemon's first seconds,
        while the query model loads). ``image``: a picture to search by, with the text, for a
        visual model. ``literal``: the query is prose, not syntax (quotes, -words and
        name:value are words like any other)."""
        parsed = read_query(query, literal, self._is_property)
        admission = Admission(self.catalog, parsed.filters.merged(filters or Filters()),
                              parsed.phrases)
        strict = admission.filters.active or bool(parsed.phrases or admission.excluded)
        rerank = self.rerank if vectors else None  # not while the daemon is still loading
        want = max(k + offset, rerank.top) if rerank else k + offset
        allowed = self.admitted(admission)
        vector = self._vector_soon(parsed.text, image) if vectors else None
        total = len(self.vectors) + 1
        pool = max(50, 5 * want) * (4 if strict else 1)
        if allowed is not None and len(allowed) <= EXACT_WITHIN:
            pool = max(pool, len(allowed))  # score every allowed item: one exact pass
        while True:
            ranked = self.ranked(parsed.text, pool, vector, allowed)
            hits = self._page(ranked, parsed.text, admission, want)
            exhausted = (pool >= len(allowed) if allowed is not None
                         else pool >= total and pool >= self._item_count())
            if len(hits) == want or not strict or exhausted:
                break
            pool *= 4
        if rerank is not None:
            hits = rerank.apply(Input(text=parsed.text or None, image=image), hits)
        return hits[offset : offset + k]

    def admitted(self, admission: Admission) -> Allowed:
        """The items the query's path, kind, tag and property filters admit, ascending (None:
        no such filter). Without the scopes' table (the items change between searches) tag
        and property filters are left to ``admission``, which checks each hit."""
        f = admission.filters
        scopes = self.catalog.scopes
        allowed = scopes.items_in(f.paths, f.not_paths, [ITEM_KIND[x] for x in f.kinds],
                                  [ITEM_KIND[x] for x in f.not_kinds])
        if f.tags or f.not_tags or f.properties:
            noted = scopes.noted(f.tags, f.not_tags, f.properties, passes)
            if noted is not None:
                admission.notes_checked = True
                allowed = noted if allowed is None else np.intersect1d(
                    allowed, noted, assume_unique=True)
        return allowed

    def explain(self, query: str, ids: list[int], k: int = 10, literal: bool = False,
                hits: Sequence[Hit] = ()) -> dict[int, dict[str, Any]]:
        """How the plain search for ``query`` (no filters, ``k`` hits) scored each of ``ids``:
        every signal's value and rank among the candidates, and how they were combined
        (fusion.py); ``{"candidate": False}`` for an item the search never considered. With a
        reranker on, ``hits`` (that search's) give each its ``reranker`` score."""
        parsed = read_query(query, literal, self._is_property)
        vector = self.query_vector(parsed.text)
        if not parsed.text.strip() and vector is None:
            out: dict[int, dict[str, Any]] = {i: {"candidate": False} for i in ids}
        else:
            out = self.fusion.explain(self.evidence(parsed.text, max(50, 5 * k), vector), ids)
        if self.rerank is not None:
            reranked = {h.id: h.score for h in hits}
            for i in ids:
                out[i]["reranker"] = reranked.get(i)
        return out

    def parse(self, query: str) -> Query:
        return parse(query, self._is_property)

    def _is_property(self, name: str) -> bool:
        return self.catalog.has_property(name)

    def _item_count(self) -> int:
        return self.catalog.keyword_index.item_count()

    def passages(self, scores: dict[int, float],
                 places: dict[int, tuple[int, str, int, int]] | None = None
                 ) -> list[tuple[float, list[int]]]:
        """Hits ranked as passages (see :func:`passages`). ``places``: those of the sections
        among ``scores``, when read already."""
        return passages(scores, self.catalog.section_places(scores) if places is None else places,
                        self.grouping)

    def ranked(self, text: str, pool: int, vector: VectorSource,
               allowed: Allowed = None) -> list[tuple[float, list[int]]]:
        """Passages in their final order: fused, grouped, each signal's best kept near the
        top (fusion.py)."""
        if not text.strip() and vector is None:
            return self.passages(self.browse(pool, allowed))
        ev = self.evidence(text, pool, vector, allowed)
        return promote(self.passages(self.fusion.combine(ev), ev.places), self.fusion.firsts(ev),
                       self.fusion.weights.keep_firsts)

    def _page(self, ranked: list[tuple[float, list[int]]], text: str, admission: Admission,
              want: int) -> list[Hit]:
        hits: list[Hit] = []
        for score, ids in ranked:
            hit = self.hits.passage(ids, score, text)
            if hit is not None and admission.admits(hit, ids):
                hits.append(hit)
                if len(hits) == want:
                    break
        return hits

    def hit(self, item_id: int, score: float, query: str) -> Hit | None:
        return self.hits.hit(item_id, score, query)


def promote(ranked: list[tuple[float, list[int]]], firsts: list[int], within: int
            ) -> list[tuple[float, list[int]]]:
    """``ranked`` with every passage holding one of ``firsts`` within the first ``within``
    places: those ranked below move up to the last places there, in their own order, and take
    the score of the passage they pass, so that scores still fall down the list."""
    late = [n for n, (_, ids) in enumerate(ranked)
            if n >= within and any(f in ids for f in firsts)]
    if not late or within <= 0:
        return ranked
    rest = [r for n, r in enumerate(ranked) if n not in late]
    at = max(0, within - len(late))
    passed = rest[at][0] if at < len(rest) else None
    moved = [(ranked[n][0] if passed is None else passed, ranked[n][1]) for n in late]
    return rest[:at] + moved + rest[at:]


def passages(scores: dict[int, float], places: dict[int, tuple[int, str, int, int]],
             grouping: Grouping) -> list[tuple[float, list[int]]]:
    """Hits ranked as passages: candidate paragraphs that follow one another under one
    heading (at most ``gap`` lines apart, ``lines`` in all) are one result, because a person
    reads them together. A passage ranks by its best paragraph (adding the others' scores
    favoured long notes, measured). Images and PDF pages stay single. Each passage lists its
    best item first. ``places``: (file, headings, start, end) of each paragraph."""
    runs: dict[tuple[int, str], list[tuple[int, int, int]]] = {}
    ranked: list[tuple[float, list[int]]] = []
    for item_id, score in scores.items():
        place = places.get(item_id)
        if place is None:
            ranked.append((score, [item_id]))
        else:
            runs.setdefault(place[:2], []).append((place[2], place[3], item_id))
    for sections in runs.values():
        sections.sort()
        run = [sections[0]]
        reach = sections[0][1]  # the furthest end line in the run
        for section in sections[1:]:
            if (section[0] <= reach + grouping.gap + 1
                    and section[1] - run[0][0] < grouping.lines):
                run.append(section)
                reach = max(reach, section[1])
            else:
                ranked.append(_passage(run, scores))
                run, reach = [section], section[1]
        ranked.append(_passage(run, scores))
    ranked.sort(key=lambda x: (-x[0], x[1][0]))
    return ranked


def _passage(run: list[tuple[int, int, int]], scores: dict[int, float]
             ) -> tuple[float, list[int]]:
    ids = sorted((i for _, _, i in run), key=lambda i: (-scores[i], i))
    return scores[ids[0]], ids
