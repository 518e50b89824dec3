"""The fusion strategy (search/fusion.py) on evidence built by hand: how each weight acts, that
a signal sure of its answer is not outvoted, and that explain() tells the score as built."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vaultlens.search.fusion import Evidence, Fusion, FusionWeights
from vaultlens.search.searcher import Grouping, passages, promote

PLAIN = FusionWeights(vector=0.5, vector_matched=0.5, coverage=0.0, keep_firsts=0)


def order(scores: dict[int, float]) -> list[int]:
    return sorted(scores, key=lambda i: (-scores[i], i))


def test_each_signal_is_scaled_within_its_query() -> None:
    # E5's cosines sit close together: above the deepest neighbour's they spread over 0..1
    ev = Evidence(bm25={1: 8.0, 2: 4.0}, cosine={1: 0.86, 2: 0.90, 3: 0.88}, reference=0.84)
    parts = Fusion(PLAIN).parts(ev)
    assert parts[1].keyword == pytest.approx(1.0) and parts[2].keyword == pytest.approx(0.5)
    assert parts[2].vector == pytest.approx(1.0) and parts[1].vector == pytest.approx(1 / 3)
    fixed = Fusion(replace(PLAIN, relative=False)).parts(ev)  # from the 0.2 floor instead
    assert fixed[1].vector == pytest.approx((0.86 - 0.2) / (0.90 - 0.2))


def test_the_vector_weight_follows_how_much_of_the_query_one_item_holds() -> None:
    w = replace(PLAIN, vector=0.6, vector_matched=0.2, coverage=0.5)
    fusion = Fusion(w)
    for best, expected in ((0.0, 0.6), (0.5, 0.4), (1.0, 0.2)):
        ev = Evidence(bm25={1: 1.0}, coverage={1: best}, cosine={1: 0.5, 2: 0.6})
        assert fusion.vector_weight(ev) == pytest.approx(expected)
    assert fusion.vector_weight(Evidence(bm25={1: 1.0}, coverage={1: 0.3})) == 0.0  # no vector


def test_a_paraphrase_lets_the_model_decide_and_a_quoted_screenshot_lets_the_words() -> None:
    fusion = Fusion(replace(PLAIN, vector=0.8, vector_matched=0.1, coverage=0.5))
    # a paraphrase: the keyword best holds a fifth of the query; item 2 is the model's answer
    paraphrase = Evidence(bm25={1: 5.0}, coverage={1: 0.2},
                          cosine={1: 0.70, 2: 0.90, 3: 0.65}, reference=0.6)
    assert order(fusion.combine(paraphrase))[0] == 2
    # words read in a screenshot: item 1 holds them all; the model prefers a paragraph
    quoted = Evidence(bm25={1: 5.0}, coverage={1: 1.0},
                      cosine={1: 0.70, 2: 0.90, 3: 0.65}, reference=0.6)
    assert order(fusion.combine(quoted))[0] == 1


def test_an_image_is_lent_its_paragraphs_score_without_counting_it_twice() -> None:
    w = replace(PLAIN, context=0.9, lent_rest=0.5)
    ev = Evidence(bm25={10: 1.0, 20: 0.1}, around={10: {20}})
    parts = Fusion(w).parts(ev)
    own, lent = parts[20].own, 0.9 * parts[10].own
    assert parts[20].lent == pytest.approx(lent) and parts[20].lent_from == 10
    assert parts[20].score == pytest.approx(max(own, lent) + 0.5 * min(own, lent))
    assert parts[20].score < parts[10].score


def test_each_signals_best_is_kept_in_the_first_hits() -> None:
    # item 7 is the model's clear first, but holds none of the words: fused, it sinks
    bm25 = {i: 10.0 - i for i in range(1, 7)}
    ev = Evidence(bm25=bm25, coverage={i: 0.6 for i in bm25},
                  cosine={**{i: 0.70 for i in bm25}, 7: 0.95}, reference=0.65)
    places: dict[int, tuple[int, str, int, int]] = {}
    off = Fusion(replace(FusionWeights(), keep_firsts=0))
    ranked = passages(off.combine(ev), places, Grouping())
    assert [ids[0] for _, ids in ranked].index(7) >= 3
    on = Fusion(replace(FusionWeights(), keep_firsts=3))
    kept = promote(passages(on.combine(ev), places, Grouping()), on.firsts(ev), 3)
    assert [ids[0] for _, ids in kept][:3] == [1, 2, 7]
    scores = [s for s, _ in kept]
    assert scores == sorted(scores, reverse=True)  # it takes the score of the one it passes
    assert on.firsts(ev) == [1, 7]  # the best by BM25 (already first) and by cosine


def test_both_signals_bests_fit_in_the_first_three_together() -> None:
    ranked = [(9.0, [1]), (8.0, [2]), (7.0, [3]), (6.0, [4]), (5.0, [5]), (4.0, [6])]
    kept = promote(ranked, [6, 4], 3)
    assert [ids[0] for _, ids in kept] == [1, 4, 6, 2, 3, 5]
    assert [s for s, _ in kept] == [9.0, 8.0, 8.0, 8.0, 7.0, 5.0]
    assert promote(ranked, [2, 1], 3) == ranked  # already there
    assert promote(ranked, [6], 0) == ranked  # off
    assert [ids[0] for _, ids in promote(ranked[:2], [2], 1)] == [2, 1]


def test_explain_tells_each_signals_rank_and_the_score_as_built() -> None:
    ev = Evidence(bm25={1: 4.0, 2: 8.0}, coverage={1: 1.0, 2: 0.5},
                  cosine={1: 0.9, 2: 0.5, 3: 0.7}, reference=0.4, around={1: {9}})
    fusion = Fusion(FusionWeights())
    why = fusion.explain(ev, [1, 2, 3, 9, 99])
    scores = fusion.combine(ev)
    assert why[99] == {"candidate": False}
    assert why[2]["bm25"] == {"value": 8.0, "rank": 1} and why[1]["bm25"]["rank"] == 2
    assert why[1]["cosine"]["rank"] == 1 and why[3]["bm25"] == {"value": None, "rank": None}
    assert why[9]["lent_from"] == 1 and why[9]["lent"] > 0
    for i in (1, 2, 3, 9):
        assert why[i]["score"] == pytest.approx(scores[i], abs=1e-4)
        assert why[i]["rank"] == order(scores).index(i) + 1


def test_without_a_vector_the_words_alone_rank() -> None:
    ev = Evidence(bm25={1: 2.0, 2: 6.0}, coverage={1: 1.0, 2: 0.2})
    fusion = Fusion(FusionWeights())
    assert fusion.vector_weight(ev) == 0.0
    scores = fusion.combine(ev)
    parts = fusion.parts(ev)
    assert scores[1] == pytest.approx(parts[1].keyword)
