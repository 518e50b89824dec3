"""Reading one file into items: a note (parsed and linked), an image (decoded, OCR'd,
thumbnailed) or a PDF (pages read in a child process). OCR and PDF text are cached in the
catalog by file hash, so a renamed or re-indexed file is never read by OCR again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PIL.Image import Image

from vaultlens.extract.documents import Document, image_document, note_document, pdf_document
from vaultlens.extract.images import open_image, thumbnail_bytes
from vaultlens.extract.ocr import OCR, OCRError
from vaultlens.extract.pdfs import read_pdf
from vaultlens.index.catalog import Catalog
from vaultlens.index.datadir import DataDir
from vaultlens.index.report import Summary
from vaultlens.vault.context import link_note
from vaultlens.vault.links import Resolver
from vaultlens.vault.notes import NoteParser
from vaultlens.vault.vault import VaultFile


class SkipFile(Exception):
    """A file that cannot be indexed, with the reason."""


class Extractor:
    def __init__(self, data: DataDir, catalog: Catalog, ocr: OCR | None, visual: bool,
                 context_chars: int, max_pdf_pages: int, pdf_timeout: float) -> None:
        self.data = data
        self.catalog = catalog
        self.ocr = ocr
        self.visual = visual
        self.context_chars = context_chars
        self.max_pdf_pages = max_pdf_pages
        self.pdf_timeout = pdf_timeout
        self.parser = NoteParser()

    def note(self, f: VaultFile, path: Path, resolver: Resolver, kinds: dict[str, str]
             ) -> tuple[Document, list[dict[str, Any]], str | None]:
        note = self.parser.parse_bytes(path.read_bytes(), f.path)
        if note.problems and not note.sections:
            raise SkipFile("; ".join(note.problems))
        links = [x.to_json() for x in link_note(note, resolver, kinds,
                                                 self.context_chars)
                 if x.kind != "external"]
        return note_document(note), links, ("; ".join(note.problems) or None)

    def image(self, f: VaultFile, h: str, path: Path, summary: Summary
              ) -> tuple[Document, str | None]:
        """The image's document, and why part of it failed (OCR), to be tried again."""
        picture = open_image(path)
        failure = None
        try:
            ocr_text = self.ocr_text(h, picture.image, summary)
        except OCRError as exc:  # still findable by its name and the notes around it
            ocr_text, failure = "", f"OCR failed: {exc}"
        self.data.save_thumb(h, thumbnail_bytes(picture.image))
        doc = image_document(f.path, h, ocr_text, picture.image,
                             self.catalog.links_to(f.path), self.visual)
        return doc, failure

    def ocr_text(self, h: str, image: Any, summary: Summary) -> str:
        if self.ocr is None:
            return ""
        cached = self.catalog.extract(h, self.ocr.signature)
        if cached is not None:
            return str(cached)
        start = time.perf_counter()
        try:
            text = self.ocr.read(image)
        finally:
            summary.timed("ocr", start)
            summary.ocr_images += 1
        with self.catalog.transaction():
            self.catalog.store_extract(h, self.ocr.signature, text)
        return text

    def pdf(self, f: VaultFile, h: str, path: Path, summary: Summary
            ) -> tuple[Document, str | None]:
        """The PDF's document, and why some pages failed (to be tried again). Pages read in
        full are cached by file hash; a PDF with failed pages is not, so a retry reads it."""
        key = f"pdf:{self.max_pdf_pages}:{self.ocr.signature if self.ocr else 'no-ocr'}"
        cached = None if self.visual else self.catalog.extract(h, key)
        pages: list[tuple[int, str, Image | None]]
        failures: list[str] = []
        if cached is not None:
            pages = [(int(n), str(t), None) for n, t in cached]
        else:
            render = "all" if self.visual else ("textless" if self.ocr else "none")
            start = time.perf_counter()
            try:
                result = read_pdf(path, self.max_pdf_pages, render,
                                  self.pdf_timeout)
            finally:
                summary.timed("pdf", start)
            if not result.pages:
                raise SkipFile("the PDF has no pages")
            pages = []
            for p in result.pages:
                text = p.text
                if p.error:
                    failures.append(f"page {p.number}: {p.error}")
                if not text and p.image is not None:
                    try:
                        text = self.ocr_text(f"{h}:{p.number}", p.image, summary)
                    except OCRError as exc:
                        text = ""
                        failures.append(f"OCR of page {p.number} failed: {exc}")
                pages.append((p.number, text, p.image))
                if p.image is not None and p.number == 1:
                    self.data.save_thumb(h, thumbnail_bytes(p.image))
            if not failures:
                with self.catalog.transaction():
                    self.catalog.store_extract(h, key, [(n, t) for n, t, _ in pages])
        doc = pdf_document(f.path, pages, self.catalog.links_to(f.path), self.visual, h)
        more = f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""
        return doc, ("; ".join(failures[:3]) + more) if failures else None
