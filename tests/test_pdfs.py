"""PDF pages in a child process: text, renders, page cap, and skip reasons for bad files."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from documents import make_pdf
from vaultlens.extract import pdfs
from vaultlens.extract.pdfs import PdfError, read_pdf


def test_text_and_renders(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "d.pdf", ["quarterly friction cost", "", "third page"])
    result = read_pdf(path, render="textless")
    assert result.page_count == 3
    assert [p.number for p in result.pages] == [1, 2, 3]
    assert "friction cost" in result.pages[0].text
    assert result.pages[0].image is None  # it has text: no render needed for OCR
    blank = result.pages[1].image
    assert blank is not None and max(blank.size) <= 1600


def test_render_all_caps_resolution(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "d.pdf", ["a"])
    (page,) = read_pdf(path, render="all").pages
    assert page.image is not None and max(page.image.size) <= 1600


def test_page_cap(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "long.pdf", [f"page {i}" for i in range(12)])
    result = read_pdf(path, max_pages=5, render="none")
    assert len(result.pages) == 5 and result.page_count == 12


def test_encrypted_is_skipped_with_reason(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "secret.pdf", ["hidden"], encryption=pymupdf.PDF_ENCRYPT_AES_256,
                    owner_pw="o", user_pw="u")
    with pytest.raises(PdfError, match="encrypted"):
        read_pdf(path)


@pytest.mark.parametrize("data", [b"%PDF-1.7\n this is not really a pdf", bytes(range(256)) * 8])
def test_broken_file_is_skipped_with_reason(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)
    with pytest.raises(PdfError, match="not a readable PDF"):
        read_pdf(path)


def test_timeout_kills_the_reader(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "d.pdf", ["x"] * 3)
    with pytest.raises(PdfError, match="longer than"):
        read_pdf(path, timeout=0.01)


@pytest.mark.parametrize("answer", [
    {"pages": [{"number": 1, "text": "", "image": "../secret.png"}], "page_count": 1},
    {"pages": [{"number": 1, "text": "", "image": "/etc/passwd"}], "page_count": 1},
    {"pages": [{"number": "1", "text": "", "image": None}], "page_count": 1},
    {"pages": "all", "page_count": 1},
    ["not", "a", "dict"],
])
def test_a_malformed_answer_from_the_reader_is_a_skip(tmp_path: Path, answer: object) -> None:
    """The reader parses hostile files: the parent takes its answer only in the shape the
    reader gives, and never opens a render outside its own folder."""
    outside = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(outside)
    folder = tmp_path / "renders"
    folder.mkdir()
    with pytest.raises(PdfError, match="malformed"):
        pdfs._checked(answer, folder)


def test_a_well_formed_answer_is_read(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "page-2.png")
    got = pdfs._checked({"pages": [{"number": 2, "text": "hi", "image": "page-2.png"}],
                         "page_count": 3}, tmp_path)
    assert got.page_count == 3 and got.pages[0].text == "hi"
    assert got.pages[0].image is not None and got.pages[0].image.size == (4, 4)
