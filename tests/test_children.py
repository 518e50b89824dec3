"""The daemon's children (the query worker, the PDF reader, the OCR workers) never import from
the directory the daemon was started in: it may be the vault, and a `numpy.py` there would
run as code in them."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest

from documents import make_pdf
from documents import text_picture as screenshot
from vaultlens.embedders.minilm_numpy import NumpyMiniLM
from vaultlens.embedders.process import InWorker
from vaultlens.extract.ocr import OCR
from vaultlens.extract.pdfs import read_pdf

# modules every child imports early: numpy (the query and OCR workers), json (the PDF reader
# and OCR worker). Each writes its name to the marker file when it runs.
SHADOWED = ("numpy", "json")


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory is a vault holding hostile modules; returns the file they write
    when imported."""
    vault = tmp_path / "vault"
    vault.mkdir()
    ran = tmp_path / "ran"
    for name in SHADOWED:
        (vault / f"{name}.py").write_text(
            f"open({str(ran)!r}, 'a').write({name!r} + ' ran from the vault\\n')\n")
    monkeypatch.chdir(vault)
    return ran


def ran_nothing(marker: Path) -> None:
    assert not marker.exists(), marker.read_text()


def test_the_query_worker_imports_nothing_from_the_working_directory(marker: Path) -> None:
    worker = InWorker(NumpyMiniLM(), partial(NumpyMiniLM), timeout=30)
    try:
        vector = worker.embed_texts(["sync settings"], "query")
    finally:
        worker.close()
    ran_nothing(marker)
    np.testing.assert_allclose(vector, NumpyMiniLM().embed_texts(["sync settings"], "query"),
                               atol=1e-6)


def test_the_pdf_reader_imports_nothing_from_the_working_directory(marker: Path,
                                                                   tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "d.pdf", ["quarterly friction cost"])
    pages = read_pdf(path, render="none").pages
    ran_nothing(marker)
    assert "friction cost" in pages[0].text


def test_the_ocr_worker_imports_nothing_from_the_working_directory(marker: Path) -> None:
    ocr = OCR(timeout=60)
    try:
        text = ocr.read(screenshot("zebra crossing"))
    finally:
        ocr.close()
    ran_nothing(marker)
    assert "zebra" in text.lower()
