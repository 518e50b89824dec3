"""The keyword side: BM25 computed in Python must be the score SQLite's bm25() gives, and a
query of common words must still rank its candidates by the whole query."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyword_data import sql_bm25, zipf_catalog
from vaultlens.index.catalog import Catalog
from vaultlens.search import keywords
from vaultlens.search.keywords import Keywords


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return zipf_catalog(tmp_path / "c.sqlite")




@pytest.mark.parametrize("words", [["w0"], ["w3", "w17"], ["w1", "w30", "running"],
                                   ["runs", "running", "设置"], ["w39", "同步", "w2", "w5"]])
def test_python_bm25_is_sqlites(catalog: Catalog, words: list[str]) -> None:
    exact = sql_bm25(catalog, words)
    assert exact  # the words occur
    held = dict(catalog.keyword_index.term_frequencies(words))
    ours = Keywords(catalog)._python_bm25(list(exact), held)
    assert ours is not None
    assert ours.bm25.keys() == exact.keys()
    for i, score in exact.items():
        assert ours.bm25[i] == pytest.approx(score, rel=1e-9)


def test_common_words_rank_by_the_rare_ones_then_all(catalog: Catalog,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """With SQLite allowed few rows, it matches the rarest word only; the candidates it finds
    are then scored on every word, exactly as bm25() scores them."""
    finder = Keywords(catalog)
    words = ["w0", "w1", "w25"]
    held = dict(catalog.keyword_index.term_frequencies(words))
    monkeypatch.setattr(keywords, "SEED_ROWS", held["w25"])  # only w25 fits
    monkeypatch.setattr(keywords, "RESCORE_COST", 0)  # rescoring is always worth it here
    terms = dict.fromkeys(words, 1.0)
    found = finder.matches(terms, 5)
    exact = sql_bm25(catalog, words)
    with_rare = {i for i in exact if i in sql_bm25(catalog, ["w25"])}
    assert len(found.bm25) == 5 and set(found.bm25) <= with_rare
    for i, score in found.bm25.items():
        assert score == pytest.approx(exact[i], rel=1e-9)
    # the best five by the whole query among the items that hold the rare word
    assert sorted(found.bm25) == sorted(sorted(with_rare, key=lambda i: -exact[i])[:5])
    # coverage reuses the counts read for them: no second read
    monkeypatch.setattr(catalog.keyword_index, "term_counts", lambda *a: pytest.fail("read again"))
    assert set(finder.coverage(list(found.bm25), terms, found.counts)) == set(found.bm25)


@pytest.mark.parametrize("rare", ["w39", "nowhere"])
def test_rare_words_in_too_few_items_leave_the_pool_to_the_common_ones(
        catalog: Catalog, monkeypatch: pytest.MonkeyPatch, rare: str) -> None:
    """A rare word in fewer items than the pool (or in none, a typo): the items with common
    words only fill the pool, so a query never comes back empty for want of its rare word,
    and the pool is still exactly bm25()'s best."""
    words = [rare, "w0", "w2"]
    held = dict(catalog.keyword_index.term_frequencies(words))
    pool = held[rare] + 15  # more than the items holding the rare word
    monkeypatch.setattr(keywords, "SEED_ROWS", held[rare])  # only the rare word is a seed
    monkeypatch.setattr(keywords, "RESCORE_COST", 0)
    found = Keywords(catalog).matches(dict.fromkeys(words, 1.0), pool)
    exact = sql_bm25(catalog, words)
    best = sorted(exact, key=lambda i: (-exact[i], i))[:pool]
    assert list(found.bm25) == best
    for i in best:
        assert found.bm25[i] == pytest.approx(exact[i], rel=1e-9)


def test_few_matches_are_ranked_by_sqlite_alone(catalog: Catalog,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog.keyword_index, "term_counts",
                        lambda *a: pytest.fail("python scoring"))
    found = Keywords(catalog).matches({"w30": 1.0, "w31": 1.0}, 10)
    exact = sql_bm25(catalog, ["w30", "w31"])
    assert found.bm25 == {i: exact[i] for i in sorted(exact, key=lambda i: -exact[i])[:10]}


def test_a_deep_pool_is_ranked_by_sqlite_alone(catalog: Catalog,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Rescoring thousands of items (a filter admitting them all) would cost more than bm25()
    on every match: SQLite ranks them, exactly, and items with common words only count."""
    words = ["w0", "w1", "w25"]
    held = dict(catalog.keyword_index.term_frequencies(words))
    monkeypatch.setattr(keywords, "SEED_ROWS", held["w25"])
    monkeypatch.setattr(catalog.keyword_index, "term_counts",
                        lambda *a: pytest.fail("python scoring"))
    found = Keywords(catalog).matches(dict.fromkeys(words, 1.0), 300)
    assert found.bm25 == sql_bm25(catalog, words)


def test_unreadable_totals_fall_back_to_the_rare_words_score(
        catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keywords, "SEED_ROWS", 1)
    monkeypatch.setattr(keywords, "RESCORE_COST", 0)
    monkeypatch.setattr(catalog.keyword_index, "totals", lambda: (0, 0))
    found = Keywords(catalog).matches({"w0": 1.0, "w33": 1.0}, 3)
    assert found.bm25 and found.bm25.items() <= sql_bm25(catalog, ["w33"]).items()
