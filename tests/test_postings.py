"""Keyword postings in memory (index/postings.py): the scores must be bm25()'s, and what is
kept must never outlive a change to the index."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from keyword_data import WORDS, sql_bm25, zipf_catalog
from vaultlens.index import postings as postings_module
from vaultlens.index.catalog import Catalog
from vaultlens.index.postings import Postings, decode_sizes
from vaultlens.search.keywords import Keywords


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return zipf_catalog(tmp_path / "c.sqlite", seed=11, long_every=50)


def warm(finder: Keywords, words: list[str], pool: int = 1000) -> dict[int, float]:
    """The numpy ranking: the first search only notes the index's state, the second reads."""
    terms = finder.terms(" ".join(words))
    finder.matches(terms, pool)
    return finder.matches(terms, pool).bm25


@pytest.mark.parametrize("words", [["w0"], ["w3", "w17"], ["w1", "w30", "running"],
                                   ["runs", "running", "设置"], ["w39", "同步", "w2", "w5"]])
def test_scores_are_bm25s(catalog: Catalog, words: list[str]) -> None:
    finder = Keywords(catalog, Postings())
    ours = warm(finder, words)
    exact = sql_bm25(catalog, list(finder.terms(" ".join(words))))  # CJK: characters too
    assert finder.postings is not None and len(finder.postings._ids) == 300
    assert ours.keys() == exact.keys()
    for i, score in exact.items():
        assert ours[i] == pytest.approx(score, rel=1e-9)


def test_the_best_come_first_with_their_word_counts(catalog: Catalog) -> None:
    finder = Keywords(catalog, Postings())
    words = ["w2", "w9", "w33"]
    terms = finder.terms(" ".join(words))
    finder.matches(terms, 20)
    found = finder.matches(terms, 20)
    exact = sql_bm25(catalog, list(terms))
    best = sorted(exact.values(), reverse=True)[:20]
    assert [found.bm25[i] for i in found.bm25] == pytest.approx(best, rel=1e-9)
    # the counts coverage reads are the ones the temporary FTS table gives
    counts, _ = Keywords(catalog)._counts(list(found.bm25), list(terms))
    assert found.counts == counts


def test_a_change_to_the_index_is_seen(catalog: Catalog) -> None:
    finder = Keywords(catalog, Postings())
    assert warm(finder, ["w7"])
    before = len(finder.postings._ids) if finder.postings else 0
    with catalog.transaction():
        fid = catalog.upsert_file("m.md", "note", 1, 1, "h2", "indexed", None)
        _, (new,) = catalog.replace_items(
            fid, [{"kind": "section", "text": "x", "content_hash": "new"}])
        catalog.set_fts(new, "w7 w7 w7", "", "")
    terms = finder.terms("w7")
    stale = finder.matches(terms, 1000).bm25  # the state changed: SQLite ranks this one
    assert new in stale
    fresh = finder.matches(terms, 1000).bm25  # the same state twice: read again
    assert finder.postings is not None and len(finder.postings._ids) == before + 1
    assert fresh == pytest.approx(sql_bm25(catalog, ["w7"]), rel=1e-9)


def test_nothing_is_read_while_the_index_keeps_changing(catalog: Catalog) -> None:
    postings = Postings()
    finder = Keywords(catalog, postings)
    stems = ["w1"]
    held = {"w1": 10}
    for n in range(3):
        assert postings.lookup(catalog._conn, stems, held) is None
        with catalog.transaction():
            catalog.set_fts(1, f"w1 w{n}", "", "")
    assert len(postings._ids) == 0  # no lengths read: every search saw another state
    assert finder.matches(finder.terms("w1"), 10).bm25  # SQLite still answers


def test_a_reader_in_progress_sends_others_to_sqlite(catalog: Catalog) -> None:
    postings = Postings()
    postings.lookup(catalog._conn, ["w1"], {})
    with postings._reading:  # another search thread is reading
        assert postings.lookup(catalog._conn, ["w1"], {}) is None
    assert postings.lookup(catalog._conn, ["w1"], {}) is not None


def test_a_word_in_too_many_items_is_left_to_sqlite(catalog: Catalog,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postings_module, "MAX_WORD_ITEMS", 50)
    postings = Postings()
    for _ in range(2):
        assert postings.lookup(catalog._conn, ["w0"], {"w0": 51}) is None
    postings.lookup(catalog._conn, ["w39"], {"w39": 3})
    assert postings.lookup(catalog._conn, ["w39"], {"w39": 3}) is not None


def test_kept_postings_are_bounded(catalog: Catalog) -> None:
    postings = Postings(max_entries=400)
    held = {w: 0 for w in WORDS}
    postings.lookup(catalog._conn, ["w0"], held)  # notes the state
    for _ in range(2):
        for word in [f"w{i}" for i in range(10)]:
            assert postings.lookup(catalog._conn, [word], held) is not None
    assert postings._entries <= 400 or len(postings._words) == 1
    assert len(postings._words) < 10


def test_searches_share_postings_across_threads(catalog: Catalog, tmp_path: Path) -> None:
    postings = Postings()
    errors: list[BaseException] = []
    results: list[dict[int, float]] = []

    def search() -> None:
        try:
            finder = Keywords(Catalog.open(tmp_path / "c.sqlite"), postings)
            for _ in range(20):
                results.append(finder.matches(finder.terms("w4 w11"), 1000).bm25)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(postings._words) >= {"w4", "w11"}  # the numpy path answered too
    exact = sql_bm25(catalog, ["w4", "w11"])
    for found in results:  # SQLite's answers and the numpy ones are the same ranking
        assert found.keys() == exact.keys()
        assert all(found[i] == pytest.approx(s, rel=1e-9) for i, s in exact.items())


def test_a_damaged_size_record_leaves_the_search_to_sqlite(catalog: Catalog) -> None:
    postings = Postings()
    postings.lookup(catalog._conn, ["w1"], {})
    with catalog.transaction():  # a varint cut short
        catalog._conn.execute("UPDATE items_fts_docsize SET sz = x'0581' WHERE id = 2")
    for _ in range(2):
        assert postings.lookup(catalog._conn, ["w1"], {}) is None
    assert not catalog._conn.in_transaction


def test_sizes_decode_sqlite_varints() -> None:
    # 5, 300 (0x82 0x2c), 16384 (0x81 0x80 0x00) in one row; 0, 127, 128 (0x81 0x00) in another
    blobs = [bytes([5, 0x82, 0x2C, 0x81, 0x80, 0x00]), bytes([0, 0x7F, 0x81, 0x00])]
    assert decode_sizes(blobs, 3).tolist() == [5 + 300 + 16384, 0 + 127 + 128]
    assert decode_sizes([], 3).tolist() == []
    with pytest.raises(ValueError):
        decode_sizes([bytes([1, 2])], 3)
