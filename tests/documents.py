"""Files the tests put in vaults: PDFs and plain pictures."""

from __future__ import annotations

from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw


def make_pdf(path: Path, pages: list[str], **save: object) -> Path:
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=595, height=842)
        if text:
            page.insert_text((72, 72), text, fontsize=14)
    doc.save(path, **save)
    return path


def two_page_pdf() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for text in ("Agenda for the quarter", "Friction cost of switching tools"):
        doc.new_page(width=960, height=540).insert_text((60, 200), text, fontsize=36)
    data: bytes = doc.tobytes()
    return data


def picture(colour: str, size: tuple[int, int] = (120, 80), text: str = "") -> Image.Image:
    im = Image.new("RGB", size, colour)
    if text:
        ImageDraw.Draw(im).text((5, 5), text, fill="white")
    return im


def text_picture(text: str) -> Image.Image:
    """A line of black text on white, as the OCR reads it."""
    im = Image.new("RGB", (640, 120), "white")
    ImageDraw.Draw(im).text((20, 40), text, fill="black", font_size=32)
    return im
