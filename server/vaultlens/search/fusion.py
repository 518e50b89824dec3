"""How a search's evidence becomes one score per candidate: the fusion strategy.

Every candidate has three signals: BM25 (keyword rank quality, divided by length), coverage
(the IDF-weighted share of the query's words it holds, in any field) and its cosine to the
query. Each is put on a scale of its own query, so that no constant depends on the model:

- keyword = (1 - coverage) * BM25 / best BM25 + coverage * covered share;
- vector = (cosine - reference) / (best cosine - reference), at least 0, where the
  reference is the cosine of the vector search's deepest neighbour: what "unrelated" looks like
  for this query and this model (MiniLM's unrelated texts sit near 0.1, E5's near 0.75).

The two are added with weights that depend on the query: how much of the query's word weight
(IDF) its best keyword candidate holds, ``matched`` (the best coverage). A paraphrase shares
few words with its answer, and then BM25's best is a word match, not an answer: the vector
weight is ``vector`` when nothing holds the query's words and moves linearly to
``vector_matched`` when one item holds them all (words read in a screenshot, a slide's title);
the keyword weight is the rest. An image or PDF
page is then lent ``context`` of the best paragraph around it (the paragraph it was pasted
into finds it), and keeps the larger of its own score and the lent one plus ``lent_rest`` of
the smaller (its own keyword match mostly comes from the same paragraph's words).

The weights are fitted on labelled queries (bench/fit_fusion.py) and judged on folds they were
not fitted on; docs/decisions/0001-fusion.md has the method and the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FusionWeights:
    """Fitted with bench/fit_fusion.py on 278 labelled queries over the three shared vaults
    (model e5-small); figures in docs/decisions/0001-fusion.md."""

    vector: float = 0.4  # the vector signal's weight when no item holds the query's words
    vector_matched: float = 0.3  # ... and when one holds them all; keywords get the rest
    coverage: float = 0.5  # share of the keyword signal from coverage, not BM25
    context: float = 0.9  # share of the best paragraph around it that an image inherits
    lent_rest: float = 0.5  # ... and of the smaller of its own score and the lent one
    floor: float = 0.2  # cosines under this are noise whatever the reference says
    relative: bool = True  # vector scale from the deepest neighbour's cosine, not ``floor``
    absolute: bool = False  # BM25 over the most the query's words could score, not the best
    keep_firsts: int = 3  # each signal's own best is among the first this many hits (0: off)


@dataclass
class Evidence:
    """What a search knows of its candidates before combining: every candidate is a key of
    ``cosine`` (when the query has a vector) or of ``bm25`` (when it has words)."""

    bm25: dict[int, float] = field(default_factory=dict)  # keyword candidates only
    coverage: dict[int, float] = field(default_factory=dict)  # of the best BM25 matches
    cosine: dict[int, float] = field(default_factory=dict)  # every candidate's
    reference: float | None = None  # the cosine at the vector search's depth
    idf: float = 0.0  # the query's ranking words' IDF, added up
    around: dict[int, set[int]] = field(default_factory=dict)  # paragraph → its images
    # (file, headings, start, end) of every candidate that is a note section, when read
    places: dict[int, tuple[int, str, int, int]] | None = None

    def candidates(self) -> set[int]:
        out = set(self.bm25) | set(self.cosine)
        for images in self.around.values():
            out |= images
        return out


@dataclass
class Parts:
    """One candidate's score, as built: for ``explain``."""

    keyword: float = 0.0
    vector: float = 0.0
    own: float = 0.0
    lent: float = 0.0
    lent_from: int | None = None
    score: float = 0.0


class Fusion:
    def __init__(self, weights: FusionWeights | None = None) -> None:
        self.weights = weights or FusionWeights()

    def vector_weight(self, ev: Evidence) -> float:
        """The vector signal's weight for this query (keywords get the rest); 0 without a
        vector (a CJK query for an English-only model: keywords alone)."""
        if not ev.cosine:
            return 0.0
        w = self.weights
        matched = max(ev.coverage.values()) if ev.coverage else 0.0
        return w.vector + (w.vector_matched - w.vector) * matched

    def parts(self, ev: Evidence) -> dict[int, Parts]:
        w = self.weights
        out = {i: Parts() for i in ev.candidates()}
        if ev.bm25:
            best = max(ev.bm25.values()) or 1.0
            if w.absolute and ev.idf > 0:
                # each word adds at most IDF x (k1 + 1) to BM25 (FTS5's k1 = 1.2): a match of
                # all the query's rare words scores near 1, of a few common ones near 0
                best = max(best, 2.2 * ev.idf)
            for i, s in ev.bm25.items():
                out[i].keyword = (1 - w.coverage) * s / best + w.coverage * ev.coverage.get(i, 0.0)
        if ev.cosine:
            top = max(ev.cosine.values())
            low = w.floor
            if w.relative and ev.reference is not None:
                low = max(low, ev.reference)
            low = min(low, top - 1e-6)
            for i, c in ev.cosine.items():
                out[i].vector = max(0.0, c - low) / (top - low)
        vector_weight = self.vector_weight(ev)
        keyword_weight = 1 - vector_weight
        for p in out.values():
            p.own = p.score = keyword_weight * p.keyword + vector_weight * p.vector
        for section, images in ev.around.items():
            lent = w.context * out[section].own
            for image in images:
                if lent > out[image].lent:
                    out[image].lent, out[image].lent_from = lent, section
        for p in out.values():
            if p.lent:
                p.score = max(p.own, p.lent) + w.lent_rest * min(p.own, p.lent)
        return out

    def combine(self, ev: Evidence) -> dict[int, float]:
        """Every candidate's score; those with nothing for them are left out."""
        return {i: p.score for i, p in self.parts(ev).items() if p.score > 0}

    def firsts(self, ev: Evidence) -> list[int]:
        """The candidates the fused ranking must keep near the top: the best by BM25 alone and
        by cosine alone (a signal sure of its answer is not outvoted: see ``keep_firsts``)."""
        if not self.weights.keep_firsts:
            return []
        out = []
        for values in (ev.bm25, ev.cosine):
            if values:
                out.append(max(values, key=lambda i: (values[i], -i)))
        return out

    def explain(self, ev: Evidence, ids: list[int]) -> dict[int, dict[str, Any]]:
        """For each of ``ids``: every signal's value and its rank among the candidates
        (1-based; None where the candidate has no such signal), and how the score was built."""
        parts = self.parts(ev)
        ranks = {name: _ranks(values) for name, values in (
            ("bm25", ev.bm25), ("coverage", ev.coverage), ("cosine", ev.cosine),
            ("keyword", {i: p.keyword for i, p in parts.items() if p.keyword}),
            ("vector", {i: p.vector for i, p in parts.items() if p.vector}),
            ("score", {i: p.score for i, p in parts.items() if p.score}))}
        out: dict[int, dict[str, Any]] = {}
        for i in ids:
            p = parts.get(i)
            if p is None:
                out[i] = {"candidate": False}
                continue
            out[i] = {
                "candidate": True,
                "bm25": _signal(ev.bm25, ranks["bm25"], i),
                "coverage": _signal(ev.coverage, ranks["coverage"], i),
                "cosine": _signal(ev.cosine, ranks["cosine"], i),
                "keyword": {"value": round(p.keyword, 4), "rank": ranks["keyword"].get(i)},
                "vector": {"value": round(p.vector, 4), "rank": ranks["vector"].get(i)},
                "vector_weight": round(self.vector_weight(ev), 4),
                "own": round(p.own, 4),
                "lent": round(p.lent, 4), "lent_from": p.lent_from,
                "score": round(p.score, 4), "rank": ranks["score"].get(i),
            }
        return out


def _ranks(values: dict[int, float]) -> dict[int, int]:
    order = sorted(values, key=lambda i: (-values[i], i))
    return {i: n for n, i in enumerate(order, start=1)}


def _signal(values: dict[int, float], ranks: dict[int, int], i: int) -> dict[str, Any]:
    value = values.get(i)
    return {"value": None if value is None else round(value, 4), "rank": ranks.get(i)}
