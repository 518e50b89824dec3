"""The hostile corpus in ../shared/corpus (odd, truncated, corrupt, huge images; broken,
encrypted and ordinary PDFs): indexing finishes, every file is indexed or skipped with a
reason, no file takes more than 30 s, and the process never dies."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import shared_path
from vaultlens.config import Config
from vaultlens.index.report import Progress
from vaultlens.workspace import open_workspace

pytestmark = pytest.mark.slow

PER_FILE_LIMIT = 30.0


def index_timed(vault: Path, data: Path, ocr: bool) -> tuple[dict[str, dict[str, object]],
                                                              dict[str, float]]:
    """Index; return the catalog's file rows by path and the seconds each file took."""
    ws = open_workspace(Config(vault=vault, data_dir=data, model="minilm", ocr=ocr),
                        writer=True)
    took: dict[str, float] = {}
    last: list[tuple[str, float]] = []

    def progress(p: Progress) -> None:
        now = time.monotonic()
        if last and last[0][0]:
            took[last[0][0]] = now - last[0][1]
        last[:] = [(p.path, now)]

    indexer = ws.indexer(progress)
    try:
        indexer.run()
        rows = {path: r.__dict__ for path, r in ws.catalog.files().items()}
    finally:
        indexer.save_vectors()
        indexer.close()
        ws.close()
    return rows, took


def check(vault: Path, rows: dict[str, dict[str, object]], took: dict[str, float]) -> None:
    on_disk = {str(p.relative_to(vault)) for p in vault.rglob("*") if p.is_file()}
    assert set(rows) == on_disk  # every file accounted for
    for path, row in rows.items():
        assert row["status"] in ("indexed", "skipped", "retry", "ignored"), path
        # only a kind nobody searches (or an SVG icon) is ignored; anything else that was
        # not indexed says why
        if row["kind"] == "other":
            assert row["status"] == "ignored", path
        elif row["status"] == "ignored":
            assert path.lower().endswith(".svg"), path
        if row["status"] in ("skipped", "retry"):
            assert row["reason"], f"{path} was {row['status']} with no reason"
    slow = {p: round(s, 1) for p, s in took.items() if s > PER_FILE_LIMIT}
    assert slow == {}


def test_corpus_without_ocr(tmp_path: Path) -> None:
    corpus = shared_path("corpus")
    rows, took = index_timed(corpus, tmp_path / "data", ocr=False)
    check(corpus, rows, took)
    indexed = [r for r in rows.values() if r["status"] == "indexed"]
    assert sum(1 for r in indexed if r["kind"] == "pdf") > 100
    assert sum(1 for r in indexed if r["kind"] == "image") > 500


def test_corpus_sample_with_ocr(tmp_path: Path) -> None:
    """OCR on every 12th image (by name): the OCR worker meets hostile pictures too."""
    images = sorted((shared_path("corpus") / "images").iterdir())
    vault = tmp_path / "vault"
    vault.mkdir()
    for src in images[::12]:
        try:
            os.link(src, vault / src.name)
        except OSError:
            shutil.copy(src, vault / src.name)
    rows, took = index_timed(vault, tmp_path / "data", ocr=True)
    check(vault, rows, took)
    if not any(r["status"] == "indexed" for r in rows.values()):
        pytest.fail("no image of the sample was indexed")
