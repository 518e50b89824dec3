"""The picture behind an image or PDF-page item, decoded (PDF pages rendered in a child process),
ready to be downscaled for a model or a browser."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PIL.Image import Image

from vaultlens.extract.images import ImageError, open_image
from vaultlens.extract.pdfs import PdfError, render_page
from vaultlens.index.catalog import Catalog

MAX_IMAGE_BYTES = 512 * 1024  # per image sent to a model or a client (what Claude accepts well)
CACHED_PICTURES = 16  # decoded pictures kept: a pack and the image URLs in it reuse them


class PictureError(Exception):
    """No picture for this item: ``reason`` says why; ``missing`` when the item is not one."""

    def __init__(self, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


class Pictures:
    def __init__(self, catalog: Catalog, vault: Path, pdf_timeout: float = 30.0) -> None:
        self.catalog = catalog
        self.vault = vault
        self.pdf_timeout = pdf_timeout
        self._cache: OrderedDict[tuple[str, str, int], Image] = OrderedDict()

    def load(self, item_id: int) -> Image:
        """The item's picture in RGB (at most 2048 px for images, 1600 for PDF pages)."""
        row = self.catalog.conn.execute(
            "SELECT items.kind, items.page, files.path, files.hash FROM items"
            " JOIN files ON files.id = items.file_id WHERE items.id = ?", (item_id,)).fetchone()
        if row is None or row["kind"] not in ("image", "page"):
            raise PictureError(f"item {item_id} is not an image or a PDF page", missing=True)
        key = (str(row["path"]), str(row["hash"]), int(row["page"] or 0))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        path = self.vault / row["path"]
        try:
            if row["kind"] == "image":
                picture = open_image(path).image
            else:
                picture = render_page(path, int(row["page"] or 1), self.pdf_timeout)
        except ImageError as exc:
            raise PictureError(f"{row['path']}: {exc.reason}") from exc
        except PdfError as exc:
            raise PictureError(f"{row['path']} page {row['page']}: {exc.reason}") from exc
        self._cache[key] = picture
        while len(self._cache) > CACHED_PICTURES:
            self._cache.popitem(last=False)
        return picture
