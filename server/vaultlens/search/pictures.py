"""The picture behind an image or PDF-page item, decoded (PDF pages rendered in a child process),
ready to be downscaled for a model or a browser."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from PIL.Image import Image

from vaultlens.errors import VaultlensError
from vaultlens.extract.documents import ItemKind
from vaultlens.extract.images import ImageError, open_image
from vaultlens.extract.pdfs import PdfError, render_page
from vaultlens.index.reader import Reader
from vaultlens.vault.vault import Refused, check_file, is_vector

MAX_IMAGE_BYTES = 512 * 1024  # per image sent to a model or a client (what Claude accepts well)
# decoded pictures kept, by every search thread together (a pack and the image URLs in it
# reuse them): a 2048 px screenshot is 12 MB decoded, so about ten of the largest
CACHED_PICTURE_BYTES = 128 * 2**20
Key = tuple[str, str, int]  # path, content hash, page (0 for an image)


class PictureCache:
    """Decoded pictures, least recently used out first, shared by every search thread and
    bounded by their pixels' bytes (3 a pixel: they are RGB). The pictures are shared too:
    callers only read them (resizing and encoding make copies or read)."""

    def __init__(self, limit: int = CACHED_PICTURE_BYTES) -> None:
        self.limit = limit
        self.held = 0  # bytes of the pictures in ``_pictures``
        self._pictures: OrderedDict[Key, Image] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key) -> Image | None:
        with self._lock:
            picture = self._pictures.get(key)
            if picture is not None:
                self._pictures.move_to_end(key)
            return picture

    def put(self, key: Key, picture: Image) -> None:
        size = _bytes(picture)
        if size > self.limit:
            return  # kept by no one: it would empty the cache for itself alone
        with self._lock:
            old = self._pictures.pop(key, None)
            self.held -= _bytes(old) if old is not None else 0
            self._pictures[key] = picture
            self.held += size
            while self.held > self.limit:
                _, dropped = self._pictures.popitem(last=False)
                self.held -= _bytes(dropped)


def _bytes(picture: Image) -> int:
    return picture.width * picture.height * len(picture.getbands())


SHARED = PictureCache()


class PictureError(VaultlensError):
    """No picture for this item: ``reason`` says why; ``missing`` when the item is not one."""

    def __init__(self, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


class Pictures:
    def __init__(self, catalog: Reader, vault: Path, pdf_timeout: float = 30.0,
                 cache: PictureCache = SHARED) -> None:
        self.catalog = catalog
        self.vault = vault
        self.pdf_timeout = pdf_timeout
        self.cache = cache

    def load(self, item_id: int) -> Image:
        """The item's picture in RGB (at most 2048 px for images, 1600 for PDF pages)."""
        row = self.catalog.picture(item_id)
        if row is None or row.kind not in (ItemKind.IMAGE, ItemKind.PAGE):
            raise PictureError(f"item {item_id} is not an image or a PDF page", missing=True)
        key = (row.path, str(row.hash), int(row.page or 0))
        try:
            # as the scan would take it now: a link out of the vault made since it was indexed
            # serves nothing, from the cache or the disk
            check_file(self.vault, key[0])
        except Refused as exc:
            raise PictureError(str(exc)) from exc
        except OSError:
            pass  # gone: decoding says so, in its own words
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        path = self.vault / row.path
        try:
            if row.kind == ItemKind.IMAGE and is_vector(row.path):
                picture = render_page(path, 1, self.pdf_timeout)  # an SVG, in the PDF child
            elif row.kind == ItemKind.IMAGE:
                picture = open_image(path).image
            else:
                picture = render_page(path, int(row.page or 1), self.pdf_timeout)
        except ImageError as exc:
            raise PictureError(f"{row.path}: {exc.reason}") from exc
        except PdfError as exc:
            where = "" if row.kind == ItemKind.IMAGE else f" page {row.page}"
            raise PictureError(f"{row.path}{where}: {exc.reason}") from exc
        self.cache.put(key, picture)
        return picture
