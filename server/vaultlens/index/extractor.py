"""Reading one file, the slow part of indexing: hashing, parsing a note, decoding and OCR of an
image, reading a PDF's pages in a child process.

This runs on the pipeline's worker threads, several files at once, so it never writes the
catalog and never asks it about links: it returns what it read (an :class:`Extracted`), and
the indexer's thread turns that into a document with the notes' links, embeds it and writes
it. OCR and PDF text are looked up in the catalog's cache by file hash (through a read
connection of its own), and what was read fresh is handed back to be cached in the same
transaction as the file.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from PIL.Image import Image

from vaultlens.extract.images import ImageError, open_image, thumbnail_bytes
from vaultlens.extract.ocr import OCRError, OCRPool
from vaultlens.extract.pdfs import PdfError, read_pdf
from vaultlens.extract.svg import MAX_SVG_BYTES, SvgError, svg_text
from vaultlens.index.catalog import Catalog
from vaultlens.index.datadir import DataDir
from vaultlens.vault.notefile import MAX_NOTE_MB, NoteTooLarge, note_bytes
from vaultlens.vault.notes import Note, NoteParser
from vaultlens.vault.vault import FileKind, Refused, VaultFile, is_vector, open_file

log = logging.getLogger(__name__)
# pictures whose words are kept in memory for their copies (a few hundred KB at most): a read
# ahead holds a few files, so any copy read in the same stretch finds its words here; older
# ones are in the catalog's cache
RECENT_WORDS = 1024


def file_hash(fh: BinaryIO) -> str:
    """The SHA-256 of an open file, read from where it stands to its end, 1 MB at a time."""
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


@dataclass
class Extracted:
    """What reading one file gave. ``outcome``: "read" (go on and index it), "unchanged" (same
    bytes as indexed: only its stat is new), "skip" or "retry" (with ``reason``), or "ignore"
    (an SVG icon: counted, never indexed)."""

    file: VaultFile
    hash: str | None
    outcome: str = "read"
    reason: str | None = None
    failure: str | None = None  # what failed and is worth another try (OCR, PDF pages)
    note: Note | None = None
    ocr_text: str = ""
    image: Image | None = None
    pages: list[tuple[int, str, Image | None]] = field(default_factory=list)
    # fresh OCR and PDF text, to cache with the file: (hash, extractor, data)
    extracts: list[tuple[str, str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    ocr_images: int = 0
    urgent: bool = False

    def timed(self, stage: str, since: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - since


class Extractor:
    """Thread-safe: each call reads one file; OCR goes to a free worker process of ``ocr``."""

    def __init__(self, root: Path, data: DataDir, cache: Catalog, ocr: OCRPool | None, visual: bool,
                 max_pdf_pages: int, pdf_timeout: float) -> None:
        self.root = root
        self.data = data
        self.cache = cache  # a read connection of our own; the lock makes it one reader at once
        self._cache_lock = threading.Lock()
        self.ocr = ocr
        self.visual = visual
        self.max_pdf_pages = max_pdf_pages
        self.pdf_timeout = pdf_timeout
        # the words of pictures read this run, by hash: a copy of a picture (the same
        # screenshot pasted into two notes) is found here before its first copy is written
        # to the catalog's cache, and one read while its first copy is being read waits for
        # that read instead of doing it again
        self._words: OrderedDict[str, str] = OrderedDict()
        self._reading: dict[str, threading.Event] = {}
        self._words_lock = threading.Lock()

    def read(self, f: VaultFile, known: str | None, urgent: bool = False) -> Extracted:
        """``known``: the hash the catalog has for this file when it needs nothing more.

        A file whose reading fails in a way no reader foresaw (a bug meeting odd input) is a
        failure of that file, logged with its traceback and tried again next run: it never
        ends the run for the files after it."""
        try:
            return self._read(f, known, urgent)
        except Exception as exc:
            log.exception("reading %s failed", f.path)
            out = Extracted(f, None, urgent=urgent)
            out.outcome = "retry"
            out.reason = (f"could not be read ({type(exc).__name__}: {exc}); a vaultlens bug: "
                          "the log has the details")
            return out

    def _read(self, f: VaultFile, known: str | None, urgent: bool) -> Extracted:
        """The file is held to the scan's rules again here (a link or a FIFO may have taken its
        place since the scan) and opened without blocking: a refusal is a skip with the
        scan's reason, never a worker stuck on open."""
        path = self.root / f.path
        out = Extracted(f, None, urgent=urgent)
        try:
            with open_file(self.root, f.path) as fh:
                out.hash = file_hash(fh)
                if known == out.hash:
                    out.outcome = "unchanged"
                elif f.kind == FileKind.NOTE:
                    fh.seek(0)
                    self._note(out, fh)
        except Refused as exc:
            out.outcome, out.reason = "skip", exc.of(f.path)
        except OSError as exc:
            out.outcome, out.reason = "skip", f"cannot read: {exc.strerror or exc}"
        if out.outcome != "read" or f.kind == FileKind.NOTE:
            return out
        try:
            if f.kind == FileKind.IMAGE and is_vector(f.path):
                self._svg(out, path)
            elif f.kind == FileKind.IMAGE:
                self._image(out, path)
            elif f.kind == FileKind.PDF:
                self._pdf(out, path)
            else:
                out.outcome = "skip"
                out.reason = f"not a note, image or PDF ({Path(f.path).suffix or 'no extension'})"
        except ImageError as exc:
            out.outcome, out.reason = ("retry" if exc.retry else "skip"), exc.reason
        except (PdfError, SvgError) as exc:
            out.outcome, out.reason = "skip", str(exc)
        except OSError as exc:  # gone or unreadable between the hash and the read
            out.outcome, out.reason = "skip", f"cannot read: {exc.strerror or exc}"
        return out

    def _note(self, out: Extracted, fh: BinaryIO) -> None:
        try:
            data = note_bytes(fh, out.file.path)
        except NoteTooLarge:
            out.outcome = "skip"
            out.reason = f"note larger than {MAX_NOTE_MB} MB; not indexed"
            return
        note = NoteParser().parse_bytes(data, out.file.path)
        if note.problems and not note.sections:
            out.outcome, out.reason = "skip", "; ".join(note.problems)
            return
        out.note = note

    def _image(self, out: Extracted, path: Path) -> None:
        assert out.hash is not None
        if not self.visual and self.data.thumb_path(out.hash).exists():
            # the same bytes were read before (words cached, thumbnail made): nothing needs
            # the pixels, so the picture is not decoded again
            known = self._known_words(out.hash)
            if known is not None:
                out.ocr_text = known
                return
        picture = open_image(path)
        try:
            out.ocr_text = self._ocr(out, out.hash, picture.image)
        except OCRError as exc:  # still findable by its name and the notes around it
            out.failure = f"OCR failed: {exc}"
        self.data.save_thumb(out.hash, thumbnail_bytes(picture.image))
        out.image = picture.image

    def _svg(self, out: Extracted, path: Path) -> None:
        """An SVG's words are its read text (where OCR text goes for a screenshot). Its pixels
        come from the PDF reader's child, which renders SVG too, and only where something
        needs them: the visual model, or OCR of a drawing with no words that is not an icon.
        Otherwise its thumbnail is rendered when first asked for (serve/views.py). An icon,
        or a drawing that will not render, is still a picture, found by its name and the
        notes that place it. An icon (small, wordless) is counted as ignored, never indexed."""
        assert out.hash is not None
        with open_file(self.root, out.file.path) as fh:
            data = fh.read(MAX_SVG_BYTES + 1)
        said = svg_text(data)
        if said.icon:  # an interface glyph: nobody searches for it, and its name
            out.outcome = "ignore"  # ("lucide-case-sensitive") would crowd real answers
            return
        out.ocr_text = said.words
        read_pixels = not said.labels and not said.icon and self.ocr is not None
        if not (self.visual or read_pixels):
            return
        start = time.perf_counter()
        try:
            pages = read_pdf(path, 1, "all", self.pdf_timeout).pages
        except PdfError:
            return  # its words and name still find it
        finally:
            out.timed("svg", start)
        picture = pages[0].image if pages else None
        if picture is None:
            return
        if read_pixels:
            try:
                out.ocr_text = self._ocr(out, out.hash, picture)
            except OCRError as exc:
                out.failure = f"OCR failed: {exc}"
        self.data.save_thumb(out.hash, thumbnail_bytes(picture))
        out.image = picture

    def _cached(self, key: str, extractor: str) -> Any:
        with self._cache_lock:
            return self.cache.extract(key, extractor)

    def _known_words(self, key: str) -> str | None:
        """A picture's words when they were read already: this run, or in the cache."""
        if self.ocr is None:
            return None
        with self._words_lock:
            if key in self._words:
                self._words.move_to_end(key)
                return self._words[key]
        cached = self._cached(key, self.ocr.signature)
        return None if cached is None else str(cached)

    def _ocr(self, out: Extracted, key: str, image: Image) -> str:
        if self.ocr is None:
            return ""
        while True:
            known = self._known_words(key)
            if known is not None:
                return known
            with self._words_lock:
                ahead = self._reading.get(key)
                if ahead is None or out.urgent:  # a paste never waits for a bulk read
                    mine = self._reading.setdefault(key, threading.Event())
                    break
            ahead.wait()  # then its words are known, or its read failed and this one tries
        start = time.perf_counter()
        try:
            text = self.ocr.read(image, urgent=out.urgent)
            with self._words_lock:
                self._words[key] = text
                while len(self._words) > RECENT_WORDS:
                    self._words.popitem(last=False)
        finally:
            out.timed("ocr", start)
            out.ocr_images += 1
            with self._words_lock:
                if self._reading.get(key) is mine:
                    del self._reading[key]
            mine.set()
        out.extracts.append((key, self.ocr.signature, text))
        return text

    def _pdf(self, out: Extracted, path: Path) -> None:
        """Pages read in full are cached by file hash; a PDF with failed pages is not, so a
        retry reads it again."""
        assert out.hash is not None
        key = f"pdf:{self.max_pdf_pages}:{self.ocr.signature if self.ocr else 'no-ocr'}"
        cached = None if self.visual else self._cached(out.hash, key)
        if cached is not None:
            out.pages = [(int(n), str(t), None) for n, t in cached]
            return
        render = "all" if self.visual else ("textless" if self.ocr else "none")
        start = time.perf_counter()
        try:
            result = read_pdf(path, self.max_pdf_pages, render, self.pdf_timeout)
        finally:
            out.timed("pdf", start)
        if not result.pages:
            out.outcome, out.reason = "skip", "the PDF has no pages"
            return
        failures: list[str] = []
        for p in result.pages:
            text = p.text
            if p.error:
                failures.append(f"page {p.number}: {p.error}")
            if not text and p.image is not None:
                try:
                    text = self._ocr(out, f"{out.hash}:{p.number}", p.image)
                except OCRError as exc:
                    text = ""
                    failures.append(f"OCR of page {p.number} failed: {exc}")
            out.pages.append((p.number, text, p.image))
            if p.image is not None and p.number == 1:
                self.data.save_thumb(out.hash, thumbnail_bytes(p.image))
        if failures:
            more = f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""
            out.failure = "; ".join(failures[:3]) + more
        else:
            out.extracts.append((out.hash, key, [(n, t) for n, t, _ in out.pages]))
