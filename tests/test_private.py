"""The index is its user's alone (folder 0700, files 0600, whatever the umask), and what leaves
the vault leaves the index: cached OCR and PDF text, thumbnails, and the bytes on disk."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

import vaultlens.index.indexer as indexer_module
from indexing import VAULT, MakeVault, Run, screenshot
from vaultlens.index.datadir import DataDir
from vaultlens.workspace import Workspace


@pytest.fixture
def run(make_vault: MakeVault, tmp_path: Path) -> Run:
    return Run(make_vault(VAULT), tmp_path / "data")


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """A umask that takes nothing away: every mode must come from the code, not from it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def modes(folder: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(folder: Path) -> None:
    found = modes(folder)
    wrong = {name: oct(mode) for name, mode in found.items()
             if mode != (0o700 if (folder / name).is_dir() else 0o600)}
    assert not wrong, wrong


def pdf(text: str) -> bytes:
    doc = pymupdf.open()  # type: ignore[no-untyped-call]  # pymupdf has no type hints
    doc.new_page(width=595, height=842).insert_text((72, 72), text, fontsize=14)
    data: bytes = doc.tobytes()  # type: ignore[no-untyped-call]
    return data


def bytes_of(folder: Path) -> bytes:
    """Every file of the data dir, lower-cased: catalog, WAL, vectors, thumbnails."""
    return b"".join(p.read_bytes().lower() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.slow
def test_the_data_dir_and_every_file_in_it_are_private(run: Run, lax_umask: None) -> None:
    data = run.config.data_dir
    assert data is not None
    run.index()
    DataDir(data).token()
    DataDir(data).write_daemon_info(1, "vault")
    reader = run.reader()  # a reader keeps the -wal and -shm files open
    try:
        names = set(modes(data))
        assert {"catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "vectors.usearch",
                "vectors.json", "writer.lock", "token", "daemon.json", "thumbs"} <= names
        assert any(n.endswith(".webp") for n in names)
        assert_private(data)
    finally:
        reader.close()
    # an update: a new picture, a changed note, a deleted note
    (run.config.vault / "New.png").write_bytes(screenshot("FRESH PIXELS"))
    (run.config.vault / "Sync.md").write_text("# Selective sync\n\nChanged.\n")
    (run.config.vault / "Trips" / "Pier.md").unlink()
    run.index()
    reader = run.reader()
    try:
        assert len(list((data / "thumbs").rglob("*.webp"))) == 2
        assert_private(data)
    finally:
        reader.close()


def test_a_data_dir_of_an_older_version_is_tightened(run: Run) -> None:
    data = run.config.data_dir
    assert data is not None
    run.index()
    DataDir(data).token()
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    old = sqlite3.connect(data / "catalog.sqlite")  # the -wal and -shm, 0644 like the catalog
    try:
        old.execute("SELECT COUNT(*) FROM files").fetchone()
        assert stat.S_IMODE((data / "catalog.sqlite-wal").stat().st_mode) == 0o644
        run.index()
        assert_private(data)
    finally:
        old.close()


def trace_vault() -> dict[str, str | bytes]:
    return {**VAULT,
            "Secret.md": "# Secret\n\nThe quokkazumbrax plan stays between us.\n",
            "Report.pdf": pdf("Budget of the vexillomantic committee"),
            "Shot.png": screenshot("PANGOLIN QUIVER")}


def held(ws: Workspace, sql: str, *args: object) -> list[str]:
    return [str(r[0]) for r in ws.catalog._conn.execute(sql, args)]


@pytest.mark.slow
def test_deleted_files_leave_no_trace_on_disk(make_vault: MakeVault, tmp_path: Path) -> None:
    """A deleted note's, PDF's and screenshot's words are nowhere in the data dir's bytes
    after the run that sees them go, with a reader open all along (as in the daemon: the WAL
    stays); a picture moved in the same run keeps its thumbnail and cached OCR."""
    run = Run(make_vault(trace_vault()), tmp_path / "data")
    data = tmp_path / "data"
    run.index()
    ws = run.reader()
    try:
        hashes = dict(ws.catalog._conn.execute("SELECT path, hash FROM files").fetchall())
        ocr = held(ws, "SELECT data FROM extracts WHERE file_hash = ?", hashes["Shot.png"])
        assert ocr and "pangolin" in ocr[0].lower()
        assert held(ws, "SELECT data FROM extracts WHERE file_hash = ?", hashes["Report.pdf"])
        shot_thumb = DataDir(data).thumb_path(hashes["Shot.png"])
        board_thumb = DataDir(data).thumb_path(hashes["Attachments/board.png"])
        assert shot_thumb.exists() and board_thumb.exists()
        for name in ("Secret.md", "Report.pdf", "Shot.png"):
            (run.config.vault / name).unlink()
        shutil.move(run.config.vault / "Attachments" / "board.png", run.config.vault / "b.png")
        s = run.index()
        assert (s.removed, s.renamed, s.ocr_images) == (4, 1, 0)
        assert not shot_thumb.exists() and board_thumb.exists()
        assert held(ws, "SELECT file_hash FROM extracts") == [hashes["Attachments/board.png"]]
        assert (data / "catalog.sqlite-wal").exists()  # the reader holds it
        raw = bytes_of(data)
        # tails of the words: the keyword index stores a term after the prefix it shares
        # with the one before it
        for word in (b"zumbrax", b"llomant", b"angolin"):
            assert word not in raw, word
        assert b"zebra" in raw  # the moved picture's OCR is still indexed
    finally:
        ws.close()


@pytest.mark.slow
def test_a_run_killed_after_a_delete_leaves_what_the_next_run_clears(
        make_vault: MakeVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between the delete and the clean-up: the mark and the cache survive, no
    reference dangles, and the next run (with nothing else to do) clears them, and a
    thumbnail's temp file that a kill left."""
    run = Run(make_vault(trace_vault()), tmp_path / "data")
    data = tmp_path / "data"
    run.index()
    (run.config.vault / "Shot.png").unlink()
    (run.config.vault / "Secret.md").unlink()
    monkeypatch.setattr(indexer_module, "forget_gone", lambda *_: None, raising=False)
    run.index()  # as if killed right after the files' rows went
    monkeypatch.undo()
    thumbs = sorted((data / "thumbs").rglob("*.webp"))
    assert len(thumbs) == 2  # the board's and the deleted shot's
    stale = thumbs[0].with_name(thumbs[0].name + ".123-456.tmp")
    stale.write_bytes(b"half a thumbnail")
    os.utime(stale, (1, 1))
    ws = run.reader()
    try:
        assert ws.catalog.get_meta("scrub") == "fts"
        assert len(held(ws, "SELECT file_hash FROM extracts")) == 3
    finally:
        ws.close()
    run.index()
    assert len(list((data / "thumbs").rglob("*.webp"))) == 1 and not stale.exists()
    ws = run.reader()
    try:
        assert ws.catalog.get_meta("scrub") is None
        assert len(held(ws, "SELECT file_hash FROM extracts")) == 2  # the board's, the PDF's
    finally:
        ws.close()
    raw = bytes_of(data)
    assert b"zumbrax" not in raw and b"angolin" not in raw


@pytest.mark.slow
def test_free_pages_of_an_older_catalog_are_rewritten_once(run: Run) -> None:
    """A catalog written before deletes were zeroed holds deleted text in its free pages:
    the first full run after the upgrade rewrites it."""
    data = run.config.data_dir
    assert data is not None
    run.index()
    old = sqlite3.connect(data / "catalog.sqlite", isolation_level=None)
    try:  # what an older version left: a deleted row's text in a free page
        old.execute("PRAGMA secure_delete = OFF")
        old.execute("CREATE TABLE leftover (text TEXT)")
        old.execute("INSERT INTO leftover VALUES (?)", ("armadillozest " * 2000,))
        old.execute("DROP TABLE leftover")
        old.execute("DELETE FROM meta WHERE key IN ('scrub', 'migration:0007_scrub_free_pages')")
        old.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    finally:
        old.close()
    assert b"armadillozest" in (data / "catalog.sqlite").read_bytes()
    run.index()
    assert b"armadillozest" not in bytes_of(data)
