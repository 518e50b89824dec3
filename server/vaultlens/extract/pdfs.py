"""PDF pages: text and a rendered image per page, read by pymupdf in a child process.

A hostile PDF can loop, balloon or crash a C library; in a child it costs only that child. The
child caps its own address space and the parent kills it after a timeout. Encrypted and broken
files come back as a skip reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vaultlens.children import child_command

RENDER_SIDE = 1600  # pixels on a page's longer side, at most
RENDER_DPI = 150


class PdfError(Exception):
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
        cmd = child_command("vaultlens.extract.pdfs", str(path), tmp, str(max_pages), render,
                            str(memory_mb))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise PdfError(f"reading took longer than {timeout:.0f} s; skipped") from exc
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [""])[-1]
            if proc.returncode < 0 or "MemoryError" in proc.stderr:
                raise PdfError(f"the PDF reader died (code {proc.returncode}) {last}".strip())
            raise PdfError(last.removeprefix("PdfError: ") or f"reader failed ({proc.returncode})")
        result = json.loads((Path(tmp) / "result.json").read_text(encoding="utf-8"))
        pages = []
        for p in result["pages"]:
            image = None
            if p["image"]:
                with Image.open(Path(tmp) / p["image"]) as im:
                    image = im.convert("RGB")
            pages.append(Page(p["number"], p["text"], image, p.get("error")))
        return PdfPages(pages, result["page_count"])


def render_page(path: Path, number: int, timeout: float = 30.0) -> Image.Image:
    """Page ``number`` (1-based) rendered, at most RENDER_SIDE pixels on its longer side."""
    pages = read_pdf(path, render=f"page:{number}", timeout=timeout).pages
    if not pages or pages[0].image is None:
        raise PdfError(f"page {number} could not be rendered")
    return pages[0].image


def _child(path: str, out: str, max_pages: int, render: str, memory_mb: int) -> None:
    import resource

    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import pymupdf

    try:
        doc = pymupdf.open(path)
    except Exception as exc:
        raise SystemExit(f"PdfError: not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if doc.needs_pass:
        raise SystemExit("PdfError: encrypted (password protected); skipped")
    pages = []
    count = doc.page_count
    wanted = range(min(count, max_pages))
    if render.startswith("page:"):
        only = int(render[5:]) - 1
        if not 0 <= only < count:
            raise SystemExit(f"PdfError: no page {only + 1} (the PDF has {count})")
        wanted, render = range(only, only + 1), "all"
    for i in wanted:
        try:
            page = doc.load_page(i)
            text = page.get_text("text").strip()
        except Exception as exc:
            pages.append({"number": i + 1, "text": "", "image": None,
                          "error": f"{type(exc).__name__}: {exc}"})
            continue
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
        pages.append({"number": i + 1, "text": text, "image": image})
    with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as fh:
        json.dump({"pages": pages, "page_count": count}, fh, ensure_ascii=False)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
