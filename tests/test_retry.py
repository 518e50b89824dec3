"""A failure costs a file nothing for good: what can be indexed of it is, it shows with its
reason, and it is tried again later (with a backoff and a cap) until it succeeds."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from indexing import VAULT, Run
from vaultlens.cli import main
from vaultlens.embedders.base import Input, Role, Vectors
from vaultlens.embedders.minilm import MiniLM
from vaultlens.extract.ocr import OCR, OCRError
from vaultlens.extract.pdfs import Page, PdfPages


@pytest.fixture
def run(make_vault: Any, tmp_path: Path) -> Iterator[Run]:
    yield Run(make_vault(VAULT), tmp_path / "data")


def status_of(run: Run, path: str) -> tuple[str, str | None, int]:
    with sqlite3.connect(run.config.data_dir / "catalog.sqlite") as conn:  # type: ignore[operator]
        row = conn.execute("SELECT status, reason, tries FROM files WHERE path = ?",
                           (path,)).fetchone()
    return row[0], row[1], row[2]


def time_passes(run: Run) -> None:
    with sqlite3.connect(run.config.data_dir / "catalog.sqlite") as conn:  # type: ignore[operator]
        conn.execute("UPDATE files SET retry_at = 0")


@pytest.mark.slow
def test_an_embedding_failure_keeps_the_text_and_is_retried(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    real = MiniLM.embed

    def flaky(self: MiniLM, inputs: Sequence[Input], role: Role) -> Vectors:
        if role == "document" and any("storm" in (i.text or "") for i in inputs):
            raise RuntimeError("CUDA out of memory")
        return real(self, inputs, role)

    monkeypatch.setattr(MiniLM, "embed", flaky)
    first = run.index()
    assert [x["path"] for x in first.partial] == ["Trips/Pier.md"]
    status, reason, tries = status_of(run, "Trips/Pier.md")
    assert status == "partial" and "embedding failed" in (reason or "") and tries == 1
    assert ("note", "Trips/Pier.md", 3) in run.search("storm pier")  # its words are searchable
    # not due yet: the next run leaves it alone
    assert run.index().indexed == 0
    monkeypatch.setattr(MiniLM, "embed", real)
    time_passes(run)
    again = run.index()
    assert again.indexed == 1 and again.partial == [] and again.embedded > 0
    assert status_of(run, "Trips/Pier.md") == ("indexed", None, 0)
    # the vectors are in now: a paraphrase with no shared word finds it
    assert run.search("thunder above the jetty after dark")[0][1] == "Trips/Pier.md"


@pytest.mark.slow
def test_retries_stop_after_the_cap(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: MiniLM, inputs: Sequence[Input], role: Role) -> Vectors:
        raise RuntimeError("model hiccup")

    monkeypatch.setattr(MiniLM, "embed", broken)
    for _ in range(5):
        run.index()
        time_passes(run)
    status, reason, tries = status_of(run, "Sync.md")
    assert (status, tries) == ("partial", 5) and "gave up after 5 tries" in (reason or "")
    assert run.index().indexed == 0  # out of tries: left alone until the file changes
    (run.config.vault / "Sync.md").write_text("# Sync\n\nEdited.\n")
    monkeypatch.undo()
    assert run.index().indexed == 1 and status_of(run, "Sync.md")[0] == "indexed"


@pytest.mark.slow
def test_an_ocr_failure_is_visible_and_retried(run: Run, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    real = OCR.read

    def failing(self: OCR, image: Image.Image) -> str:
        raise OCRError("the OCR worker died: ImportError: libonnxruntime.so")

    monkeypatch.setattr(OCR, "read", failing)
    first = run.index()
    assert [x["path"] for x in first.partial] == ["Attachments/board.png"]
    status, reason, _ = status_of(run, "Attachments/board.png")
    assert status == "partial" and "OCR failed" in (reason or "")
    # found meanwhile by the paragraph around it, and listed by `vaultlens status`
    assert ("image", "Attachments/board.png", None) in run.search("harbour office board")
    assert main(["status", "--vault", str(run.config.vault), "--data-dir",
                 str(run.config.data_dir), "--model", "minilm"]) == 0
    assert "Attachments/board.png: OCR failed" in capsys.readouterr().out
    monkeypatch.setattr(OCR, "read", real)
    time_passes(run)
    assert run.index().partial == []
    assert run.search("zebra metrics")[0][1] == "Attachments/board.png"


def test_the_ocr_worker_says_why_it_died(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         ) -> None:
    fake = tmp_path / "fake" / "rapidocr_onnxruntime"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ImportError('libonnxruntime.so.1: cannot open shared object file')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    ocr = OCR(timeout=30)
    try:
        with pytest.raises(OCRError, match="cannot open shared object file"):
            ocr.read(Image.new("RGB", (40, 20), "white"))
    finally:
        ocr.close()


def test_failed_pdf_pages_are_reported_and_not_cached(make_vault: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import vaultlens.index.extractor as extractor

    run = Run(make_vault({"Deck.pdf": b"%PDF-1.4 not read: read_pdf is replaced below",
                          "Notes.md": "# Notes\n\n![[Deck.pdf]]\n"}), tmp_path / "data")
    calls = []

    def pages(path: Path, *args: Any, **kw: Any) -> PdfPages:
        calls.append(path)
        failed = None if len(calls) > 1 else "ValueError: bad xref in page 2"
        return PdfPages([Page(1, "Quarterly friction cost", None),
                         Page(2, "" if failed else "Roadmap", None, failed)], 2)

    monkeypatch.setattr(extractor, "read_pdf", pages)
    first = run.index()
    assert [x["path"] for x in first.partial] == ["Deck.pdf"]
    assert "page 2: ValueError: bad xref" in (status_of(run, "Deck.pdf")[1] or "")
    assert run.search("quarterly friction")[0][1] == "Deck.pdf"  # page 1 is in meanwhile
    time_passes(run)
    assert run.index().partial == [] and len(calls) == 2  # read again, not from the cache
    assert run.search("roadmap")[0][1] == "Deck.pdf"
