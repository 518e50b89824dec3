"""The live path (the urgent lane, reading a file, serving a picture) holds each file to the
scan's rules as they are now: no link out of the vault, no FIFO, no excluded file, no note
over the size cap gets in, and each refusal is a recorded reason, never a hang or a crash."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from indexing import VAULT, MakeVault, Run, screenshot
from vaultlens.config import Config
from vaultlens.index.indexer import Indexer
from vaultlens.index.report import Summary
from vaultlens.search.pictures import PictureError, Pictures
from vaultlens.vault.notefile import MAX_NOTE_BYTES
from vaultlens.vault.vault import LINK_OUT, LINKED_FOLDER, NOT_REGULAR, VaultFile
from vaultlens.workspace import open_workspace

T = TypeVar("T")


@pytest.fixture
def run(make_vault: MakeVault, tmp_path: Path) -> Iterator[Run]:
    r = Run(make_vault(VAULT), tmp_path / "data")
    r.config = Config(**{**r.config.__dict__, "ocr": False})
    yield r


@contextlib.contextmanager
def writer(run: Run) -> Iterator[Indexer]:
    ws = open_workspace(run.config, writer=True)
    indexer = ws.indexer()
    try:
        yield indexer
    finally:
        indexer.save_vectors()
        indexer.close()
        ws.close()


def index_urgent(indexer: Indexer, *paths: str) -> Summary:
    indexer.request_urgent(paths)
    return indexer.run()


def indexed(run: Run) -> set[str]:
    ws = run.reader()
    try:
        return set(ws.catalog.files())
    finally:
        ws.close()


def bounded(call: Callable[[], T], fifo: Path, timeout: float = 30) -> T:
    """``call`` on a thread; if it is still running after ``timeout`` (stuck opening the FIFO),
    a writer opens the FIFO to let it go, and the test fails."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout)
        pytest.fail(f"blocked on the FIFO {fifo.name} for {timeout:.0f} s")
    return out[0]


def test_links_made_after_the_index_are_refused_on_the_urgent_lane(run: Run,
                                                                   tmp_path: Path) -> None:
    run.index()
    vault, outside = run.config.vault, tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nThe cormorant ledger of passwords.\n")
    os.symlink(outside / "secret.md", vault / "passwd.md")
    os.symlink(outside, vault / "ext")
    os.symlink(vault / "Trips", vault / "alias")  # inside: indexed at its real path alone
    with writer(run) as indexer:
        summary = index_urgent(indexer, "passwd.md", "ext/secret.md", "alias/Pier.md")
    assert not indexed(run) & {"passwd.md", "ext/secret.md", "alias/Pier.md"}
    assert {"path": "passwd.md", "reason": LINK_OUT} in summary.skipped
    assert {"path": "ext", "reason": LINK_OUT} in summary.skipped
    assert {"path": "alias", "reason": LINKED_FOLDER} in summary.skipped


def test_a_picture_replaced_by_a_link_out_is_not_served(run: Run, tmp_path: Path) -> None:
    run.index()
    outside = tmp_path / "outside.png"
    outside.write_bytes(screenshot("OUTSIDE SECRET"))
    board = run.config.vault / "Attachments" / "board.png"
    ws = run.reader()
    try:
        item = int(ws.catalog._conn.execute(
            "SELECT items.id FROM items JOIN files ON files.id = items.file_id"
            " WHERE files.path = ? AND items.kind = 'image'",
            ("Attachments/board.png",)).fetchone()[0])
        cached = Pictures(ws.catalog, run.config.vault)
        cached.load(item)  # served while it is the vault's own
        board.unlink()
        os.symlink(outside, board)
        for pictures in (Pictures(ws.catalog, run.config.vault), cached):
            with pytest.raises(PictureError, match="outside the vault"):
                pictures.load(item)
    finally:
        ws.close()


@pytest.mark.slow
def test_a_fifo_never_blocks_indexing(run: Run) -> None:
    run.index()
    fifo = run.config.vault / "pipe.md"
    os.mkfifo(fifo)
    with writer(run) as indexer:
        summary = bounded(lambda: index_urgent(indexer, "pipe.md"), fifo)
        assert {"path": "pipe.md", "reason": NOT_REGULAR} in summary.skipped
        # a FIFO put where the scan saw a note: the reader refuses it too, without blocking
        got = bounded(lambda: indexer.extract.read(VaultFile("pipe.md", "note", 0, 0), None),
                      fifo)
        assert (got.outcome, got.reason) == ("skip", NOT_REGULAR)
    assert "pipe.md" not in indexed(run)
    (run.config.vault / "After.md").write_text("# After\n\nThe osprey count went on.\n")
    assert run.index().indexed == 1  # and indexing goes on


def test_the_urgent_lane_honours_excluded_files_set_since_it_started(run: Run) -> None:
    run.index()
    vault = run.config.vault
    with writer(run) as indexer:
        (vault / ".obsidian").mkdir(exist_ok=True)
        (vault / ".obsidian" / "app.json").write_text(
            json.dumps({"userIgnoreFilters": ["Private/"]}))
        (vault / "Private").mkdir()
        (vault / "Private" / "diary.md").write_text("# Diary\n\nThe heron came back.\n")
        index_urgent(indexer, "Private/diary.md")
    assert "Private/diary.md" not in indexed(run)


def test_a_note_over_the_size_cap_is_skipped_with_a_reason(run: Run) -> None:
    huge = run.config.vault / "Huge.md"
    huge.write_bytes(b"x" * (MAX_NOTE_BYTES + 1))
    reason = f"note larger than {MAX_NOTE_BYTES // 2**20} MB; not indexed"
    with writer(run) as indexer:
        got = indexer.extract.read(VaultFile("Huge.md", "note", MAX_NOTE_BYTES + 1, 0), None)
        assert (got.outcome, got.reason) == ("skip", reason)
        summary = indexer.run()
    assert {"path": "Huge.md", "reason": reason} in summary.skipped
