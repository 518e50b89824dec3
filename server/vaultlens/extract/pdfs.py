"""PDF pages: text and a rendered image per page, read by pymupdf in a child process.

A hostile PDF can loop, balloon or crash a C library; in a child it costs only that child. The
child caps its own address space and the parent kills it after a timeout. Encrypted and broken
files come back as a skip reason.

Each read has a child of its own (a ``vaultlens.workers`` child, which dies with the daemon):
its hello is its memory cap, its one request the file, the folder for the renders and what to
render; its answer the pages' text and the renders' file names in that folder.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from vaultlens.errors import VaultlensError
from vaultlens.workers import (
    BadFrame,
    Declined,
    Handler,
    Recipe,
    WallClock,
    Worker,
    WorkerDied,
    WorkerTimeout,
    serve,
)

RENDER_SIDE = 1600  # pixels on a page's longer side, at most
RENDER_DPI = 150


class PdfError(VaultlensError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    text: str
    image: Image.Image | None
    error: str | None = None  # why the page could not be read


@dataclass(frozen=True)
class PdfPages:
    pages: list[Page]
    page_count: int  # in the file; more than len(pages) when the cap cut it


def read_pdf(path: Path, max_pages: int = 200, render: str = "all", timeout: float = 60.0,
             memory_mb: int = 2048) -> PdfPages:
    """Read up to ``max_pages`` pages. ``render``: all | textless (pages with no text layer,
    for OCR) | none | page:N (only page N, rendered)."""
    with tempfile.TemporaryDirectory(prefix="vaultlens-pdf-") as tmp:
        # the reading thread waits for the child: it outlives it, as die_with_parent needs
        # (its answer is capped by its memory alone: a PDF's text layers may be large)
        child = Worker(Recipe("vaultlens.extract.pdfs", hello=memory_mb, die_with_parent=True,
                              most=memory_mb * 2**20))
        try:
            result: dict[str, Any] = child.request((str(path), tmp, max_pages, render),
                                                   WallClock(timeout))
        except WorkerTimeout as exc:
            raise PdfError(f"reading took longer than {timeout:.0f} s; skipped") from exc
        except Declined as exc:
            raise PdfError(str(exc)) from exc
        except WorkerDied as exc:
            raise PdfError(_died(exc)) from exc
        except BadFrame as exc:
            raise PdfError(f"the PDF reader answered out of step ({exc})") from exc
        finally:
            child.kill()
        return _checked(result, Path(tmp))


_RENDER_NAME = re.compile(r"page-[0-9]{1,9}\.png")


def _checked(result: object, folder: Path) -> PdfPages:
    """The child's answer, taken only in the shape ``setup`` gives it: the child reads hostile
    files, so a broken one could answer anything (a render named ``../../x`` would have the
    parent open a file outside ``folder``)."""
    if not (isinstance(result, dict) and isinstance(result.get("pages"), list)
            and type(result.get("page_count")) is int):
        raise _malformed(f"not pages and a count: {type(result).__name__}")
    pages = []
    for p in result["pages"]:
        if not (isinstance(p, dict) and type(p.get("number")) is int
                and isinstance(p.get("text"), str)
                and (p.get("image") is None or (isinstance(p["image"], str)
                                                and _RENDER_NAME.fullmatch(p["image"])))
                and (p.get("error") is None or isinstance(p["error"], str))):
            raise _malformed(f"a page as {str(p)[:80]!r}")
        image = None
        if p["image"]:
            with Image.open(folder / p["image"]) as im:
                image = im.convert("RGB")
        pages.append(Page(p["number"], p["text"], image, p.get("error")))
    return PdfPages(pages, result["page_count"])


def _malformed(what: str) -> PdfError:
    return PdfError(f"the PDF reader's answer was malformed ({what}); skipped")


def _died(exc: WorkerDied) -> str:
    """Why the reader ended without an answer (out of memory, a crash, an error)."""
    code = exc.returncode
    if code is None or code < 0 or "MemoryError" in exc.tail:
        return f"the PDF reader died (code {code}) {exc.last_words}".strip()
    return exc.last_words or f"reader failed ({code})"


def render_page(path: Path, number: int, timeout: float = 30.0) -> Image.Image:
    """Page ``number`` (1-based) rendered, at most RENDER_SIDE pixels on its longer side."""
    pages = read_pdf(path, render=f"page:{number}", timeout=timeout).pages
    if not pages or pages[0].image is None:
        raise PdfError(f"page {number} could not be rendered")
    return pages[0].image


def setup(memory_mb: int) -> Handler:
    """The child's side: its address space capped, then pymupdf loaded."""
    import resource

    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import pymupdf

    def read(request: tuple[str, str, int, str]) -> dict[str, Any]:
        path, out, max_pages, render = request
        try:
            doc = pymupdf.open(path)
        except MemoryError:
            raise  # the reader dies of it: the parent says so
        except Exception as exc:
            raise Declined(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
        if doc.needs_pass:
            raise Declined("encrypted (password protected); skipped")
        count = doc.page_count
        wanted = range(min(count, max_pages))
        if render.startswith("page:"):
            only = int(render[5:]) - 1
            if not 0 <= only < count:
                raise Declined(f"no page {only + 1} (the PDF has {count})")
            wanted, render = range(only, only + 1), "all"
        pages = [_page(pymupdf, doc, i, out, render) for i in wanted]
        return {"pages": pages, "page_count": count}

    return read


def _page(pymupdf: Any, doc: Any, i: int, out: str, render: str) -> dict[str, Any]:
    """Page ``i`` (0-based): its text, and its render's file name in ``out`` when asked for."""
    try:
        page = doc.load_page(i)
        text = page.get_text("text").strip()
    except Exception as exc:
        return {"number": i + 1, "text": "", "image": None,
                "error": f"{type(exc).__name__}: {exc}"}
    image = None
    if render == "all" or (render == "textless" and not text):
        w, h = page.rect.width, page.rect.height
        scale = min(RENDER_DPI / 72, RENDER_SIDE / max(w, h, 1))
        try:
            pix = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False)
            image = f"page-{i + 1}.png"
            pix.save(os.path.join(out, image))
        except Exception:
            image = None  # the text is still worth keeping
    return {"number": i + 1, "text": text, "image": image}


if __name__ == "__main__":
    serve(setup)
