"""The catalog: migrations, refusal of newer schemas, CJK full-text search, caches."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vaultlens.index.catalog import SCHEMA_VERSION, Catalog, CatalogError
from vaultlens.index.vectors import VectorIndex
from vaultlens.search.searcher import Searcher
from vaultlens.text import cjk_grams


def test_migrations_apply_once_and_are_named(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "c.sqlite")
    assert cat.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert cat.get_meta("migration:0001_initial") == "applied"
    cat.close()
    again = Catalog.open(tmp_path / "c.sqlite")  # no error: nothing left to apply
    assert again._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "c.sqlite")
    with cat.transaction():
        cat.set_meta("schema_version", str(SCHEMA_VERSION + 5))
    cat.close()
    with pytest.raises(CatalogError, match="newer vaultlens"):
        Catalog.open(tmp_path / "c.sqlite")


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "c.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match=r"c\.sqlite"):
        Catalog.open(tmp_path / "c.sqlite")


def test_cjk_grams() -> None:
    assert cjk_grams("插入文件") == " 插入 入文 文件 插 入 文 件 "
    assert cjk_grams("用 Obsidian 写") == " 用  Obsidian  写 "


def test_fts_finds_chinese_words_and_english_stems(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "c.sqlite")
    with cat.transaction():
        fid = cat.upsert_file("n.md", "note", 1, 1, "h", "indexed", None)
        _, ids = cat.replace_items(fid, [
            {"kind": "section", "text": "你可以在笔记中插入图片", "content_hash": "a"},
            {"kind": "section", "text": "Embedding images in notes", "content_hash": "b"},
        ])
        for i, (text, _) in zip(ids, [("你可以在笔记中插入图片", 0), ("Embedding images", 0)],
                                strict=True):
            cat.set_fts(i, text, "", "")

    def match(q: str) -> list[int]:
        return [r[0] for r in cat._conn.execute(
            "SELECT rowid FROM items_fts WHERE items_fts MATCH ?", (q,))]

    assert match('"图片"') == [ids[0]]
    assert match('"插入" AND "笔记"') == [ids[0]]
    assert match('"image"') == [ids[1]]  # porter stemming: image ~ images
    with cat.transaction():
        cat.delete_file(fid)
    assert match('"图片"') == [] and cat.counts()["items"] == 0


def test_embedding_cache_round_trip(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "c.sqlite")
    v = np.arange(4, dtype=np.float32)
    with cat.transaction():
        cat.store_vectors("sig", {"h1": v})
    assert set(cat.cached_vectors(["h1", "h2"], "sig")) == {"h1"}
    np.testing.assert_array_equal(cat.cached_vectors(["h1"], "sig")["h1"], v)
    assert cat.cached_vectors(["h1"], "other-model") == {}


def test_transaction_rolls_back(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "c.sqlite")
    with pytest.raises(RuntimeError), cat.transaction():
        cat.upsert_file("a.md", "note", 1, 1, "h", "indexed", None)
        raise RuntimeError("boom")
    assert cat.files() == {}
    with pytest.raises(sqlite3.IntegrityError), cat.transaction():
        cat._conn.execute("INSERT INTO items(file_id, kind, text, content_hash)"
                         " VALUES (999, 'x', '', '')")  # no such file: foreign key


def test_term_frequencies_use_the_index_stemming(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "c.sqlite")
    texts = ["running the vault", "runs in the vault", "a quiet vault", "an orchid"]
    with cat.transaction():
        fid = cat.upsert_file("n.md", "note", 1, 1, "h", "indexed", None)
        _, ids = cat.replace_items(fid, [{"kind": "section", "text": t, "content_hash": t}
                                         for t in texts])
        for i, t in zip(ids, texts, strict=True):
            cat.set_fts(i, t, "", "")
    freqs = dict(cat.keyword_index.term_frequencies(["vault", "run", "orchids", "absent"]))
    assert freqs == {"vault": 3, "run": 2, "orchids": 1, "absent": 0}


def keyword_searcher(tmp_path: Path, texts: list[str]) -> tuple[Searcher, list[int]]:
    """A searcher over one note whose sections hold ``texts``, with no vectors."""
    cat = Catalog.open(tmp_path / "c.sqlite")
    with cat.transaction():
        fid = cat.upsert_file("n.md", "note", 1, 1, "h", "indexed", None)
        _, ids = cat.replace_items(fid, [{"kind": "section", "text": t, "content_hash": str(n)}
                                         for n, t in enumerate(texts)])
        for i, t in zip(ids, texts, strict=True):
            cat.set_fts(i, t, "", "")
    return Searcher(cat, VectorIndex(tmp_path / "v", 8, "s"), None), ids  # type: ignore[arg-type]


def test_common_words_do_not_drive_keyword_ranking(tmp_path: Path) -> None:
    texts = [f"vault note number {i}" for i in range(30)] + ["vault orchid greenhouse"]
    searcher, ids = keyword_searcher(tmp_path, texts)
    # "vault" is everywhere: it does not rank
    assert list(searcher.keyword_scores("vault orchid", 10).bm25) == [ids[-1]]
    # every word common: the two rarest still rank, so such a query still finds things
    assert len(searcher.keyword_scores("vault note", 50).bm25) == 31


def test_properties_migration_reads_old_files_again(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import vaultlens.index.catalog as catalog_module

    monkeypatch.setattr(catalog_module, "MIGRATIONS", catalog_module.MIGRATIONS[:3])
    monkeypatch.setattr(catalog_module, "SCHEMA_VERSION", 3)
    old = Catalog.open(tmp_path / "c.sqlite")
    with old.transaction():  # as version 3 wrote them (no retry_at yet)
        old._conn.executemany(
            "INSERT INTO files(path, kind, size, mtime_ns, hash, status) VALUES (?, ?, 1, 1, ?,"
            " 'indexed')", [("n.md", "note", "hash-n"), ("a.png", "image", "hash-a")])
    old.close()
    monkeypatch.undo()
    cat = Catalog.open(tmp_path / "c.sqlite")
    assert cat.get_meta("schema_version") == str(SCHEMA_VERSION)
    # every file is read once more (for properties and the new keyword fields); caches stay
    assert {p: r.hash for p, r in cat.files().items()} == {"n.md": None, "a.png": None}
    with cat.transaction():
        cat.set_properties(cat.files()["n.md"].id, [("ctr", "5", 5.0)])
    assert cat._conn.execute("SELECT name, number FROM properties").fetchall()[0][:] == ("ctr", 5.0)


def test_term_counts_count_as_the_index_counts(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "c.sqlite")
    rows = [("Running exports, run!", "", ""), ("", "exported-file", ""),
            ("", "", "同步设置 in context"), ("nothing here", "", "")]
    with cat.transaction():
        fid = cat.upsert_file("n.md", "note", 1, 1, "h", "indexed", None)
        _, ids = cat.replace_items(fid, [{"kind": "section", "text": r[0], "content_hash": str(n)}
                                         for n, r in enumerate(rows)])
        for i, r in zip(ids, rows, strict=True):
            cat.set_fts(i, *r)
    stems = cat.keyword_index.stems(["exports", "running", "设置", "absent", "odd"])
    assert stems["exports"] == "export" and stems["running"] == "run"
    counts, lengths = cat.keyword_index.term_counts(ids, list(stems.values()))
    assert counts == {ids[0]: {"export": 1, "run": 2}, ids[1]: {"export": 1},
                      ids[2]: {"设置": 1}}
    # lengths in tokens over all fields, CJK as bigrams and characters (同步 步设 设置 同 步 设
    # 置): what bm25() divides by
    assert lengths == {ids[0]: 3, ids[1]: 2, ids[2]: 9, ids[3]: 2}
    assert cat.keyword_index.term_counts(ids[1:2], ["export", "设置"])[0] == {ids[1]: {"export": 1}}
    assert cat.keyword_index.totals() == (4, 16)


def test_an_image_holding_most_query_words_beats_a_paragraph_holding_few(tmp_path: Path) -> None:
    """BM25 divides by length: a long OCR text with every query word lost to a short paragraph
    with one of them. Coverage of the query's words puts the screenshot first."""
    from dataclasses import replace

    from vaultlens.search.fusion import Fusion, FusionWeights

    noise = " ".join(f"menu{i} button{i} label{i}" for i in range(60))
    texts = ([f"filler paragraph {i} about other things" for i in range(40)]
             + ["Webhook settings are under the integrations tab.",
                "Integrations settings: add a webhook. " + noise
                + " Send a test payload to the endpoint URL."])
    searcher, ids = keyword_searcher(tmp_path, texts)
    paragraph, screenshot_text = ids[-2], ids[-1]
    query = "webhook test payload endpoint url"
    searcher.fusion = Fusion(replace(FusionWeights(), coverage=0.0))  # BM25 alone: short wins
    bm25 = searcher.scores(query, 50, None)
    assert bm25[paragraph] > bm25[screenshot_text]
    searcher.fusion = Fusion(replace(FusionWeights(), coverage=0.5))
    scores = searcher.scores(query, 50, None)
    assert scores[screenshot_text] > scores[paragraph]


def raw(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def test_deleted_rows_are_zeroed_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """secure_delete: a deleted file's text (here many pages of it, no keyword rows) leaves
    no copy in the catalog's free pages, on a SQLite whose default is to leave it there (the
    library's own default; Debian builds it with deletes zeroed)."""
    connect = sqlite3.connect

    def lax(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", lax)
    cat = Catalog.open(tmp_path / "c.sqlite")
    with cat.transaction():
        fid = cat.upsert_file("n.md", "note", 1, 1, "h", "indexed", None)
        cat.replace_items(fid, [{"kind": "section", "text": "narwhalicious " * 4000,
                                 "content_hash": "a"}])
    cat._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with cat.transaction():
        cat.delete_file(fid)
    cat._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"narwhalicious" not in raw(tmp_path)
    cat.close()


def test_clean_up_forgets_what_no_file_holds_and_scrubs_the_keyword_index(
        tmp_path: Path) -> None:
    """Extracts of a hash no file holds go (a PDF page's OCR, "hash:page", with them), those
    of a held hash stay; a deleted file's words leave the keyword index's segments and the
    WAL, with another connection open; the mark that asked for it is cleared."""
    from vaultlens.index.cleanup import forget_gone

    gone, kept = "a" * 64, "b" * 64
    cat = Catalog.open(tmp_path / "c.sqlite")
    reader = Catalog.open(tmp_path / "c.sqlite")  # as a search thread: the WAL stays
    with cat.transaction():
        ids = []
        for path, h, word in (("x.png", gone, "okapiberry"), ("y.png", kept, "lemur")):
            fid = cat.upsert_file(path, "image", 1, 1, h, "indexed", None)
            _, new = cat.replace_items(fid, [{"kind": "image", "text": word,
                                              "content_hash": h}])
            cat.set_fts(new[0], word, "", "")
            cat.store_extract(h, "ocr", word)
            cat.store_extract(f"{h}:2", "ocr", word)
            ids.append(fid)
    assert reader._conn.execute("SELECT COUNT(*) FROM items_fts").fetchone()[0] == 2
    with cat.transaction():
        cat.delete_file(ids[0])
    assert cat.get_meta("scrub") == "fts"
    done = forget_gone(cat, tmp_path / "thumbs")
    assert (done.extracts, done.scrubbed) == (2, True)
    assert [r[0] for r in cat._conn.execute("SELECT file_hash FROM extracts")] == [kept,
                                                                                 f"{kept}:2"]
    assert cat.get_meta("scrub") is None
    data = raw(tmp_path).lower()
    # the index holds the stem ("okapiberri"), after what it shares with the term before it
    assert b"kapiber" not in data and b"lemur" in data
    assert [r[0] for r in reader._conn.execute(
        "SELECT rowid FROM items_fts WHERE items_fts MATCH 'lemur'")] != []
    reader.close()
    cat.close()
