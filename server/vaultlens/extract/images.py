"""Safe image decoding and thumbnails.

Decompression bombs are errors, EXIF orientation is applied, an animation gives its first frame,
16-bit and float images are scaled to 8 bits, transparency is flattened onto white (screenshots
with alpha would otherwise turn black). A truncated file is probably still being written:
that is a retry, not a failure.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 64_000_000  # 8k x 8k: past this, a picture is a bomb, not a screenshot
WORK_SIDE = 2048  # OCR and embedding never need more; bounds memory per image
THUMB_SIDE = 320


class ImageError(Exception):
    """The image cannot be used: ``reason`` says why, ``retry`` whether to try again later."""

    def __init__(self, reason: str, retry: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


@dataclass(frozen=True)
class Picture:
    image: Image.Image  # RGB, at most WORK_SIDE on its longer side
    width: int  # the original size
    height: int
    frames: int


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(scaled.astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def open_image(source: Path | bytes) -> Picture:
    """Decode an image file (or an upload's bytes); raises ImageError with the reason, never
    anything else."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Invalid APNG": odd, still usable
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            fp = io.BytesIO(source) if isinstance(source, bytes) else source
            with Image.open(fp) as opened:
                im: Image.Image = opened
                width, height = im.size
                if width * height > MAX_PIXELS:
                    raise ImageError(f"{width}x{height} pixels is over the {MAX_PIXELS:,} limit")
                frames = int(getattr(im, "n_frames", 1) or 1)
                im.seek(0)
                if im.format == "JPEG":
                    im.draft("RGB", (WORK_SIDE, WORK_SIDE))  # decode big JPEGs at lower scale
                im.load()
                im = ImageOps.exif_transpose(im) or im
                im = _to_rgb(im)
                im.thumbnail((WORK_SIDE, WORK_SIDE))
                return Picture(im, width, height, frames)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"decompression bomb refused ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError("not an image format Pillow can read") from exc
    except FileNotFoundError as exc:
        raise ImageError("file vanished before it could be read", retry=True) from exc
    except OSError as exc:
        message = str(exc)
        if "truncated" in message.lower() or "premature end" in message.lower():
            raise ImageError("image is truncated (still being written?)", retry=True) from exc
        raise ImageError(f"cannot decode: {message}") from exc
    except (ValueError, TypeError, SyntaxError, EOFError, MemoryError, IndexError,
            KeyError, ZeroDivisionError, AttributeError, NotImplementedError) as exc:
        # Pillow's plugins raise all of these on hostile files
        raise ImageError(f"cannot decode ({type(exc).__name__}: {exc})") from exc


def thumbnail_bytes(image: Image.Image, side: int = THUMB_SIDE) -> bytes:
    """A small WebP of the picture, for result lists."""
    thumb = image.copy()
    thumb.thumbnail((side, side))
    buf = io.BytesIO()
    thumb.save(buf, "WEBP", quality=80)
    return buf.getvalue()


@dataclass(frozen=True)
class Encoded:
    data: bytes
    mime: str
    width: int
    height: int


def encode_for_model(image: Image.Image, max_side: int, max_bytes: int) -> Encoded:
    """The picture at most ``max_side`` on its longer side and ``max_bytes`` long: PNG when it
    fits (text in screenshots stays sharp), else WebP at falling quality, else smaller."""
    im = image.copy()
    im.thumbnail((max_side, max_side))
    while True:
        for fmt, quality in (("PNG", 0), ("WEBP", 85), ("WEBP", 65), ("WEBP", 45)):
            buf = io.BytesIO()
            if fmt == "PNG":
                im.save(buf, "PNG", optimize=False, compress_level=6)
            else:
                im.save(buf, "WEBP", quality=quality, method=4)
            if buf.tell() <= max_bytes:
                return Encoded(buf.getvalue(), f"image/{fmt.lower()}", im.width, im.height)
        if max(im.size) <= 64:
            raise ImageError(f"cannot fit the picture in {max_bytes} bytes")
        im = im.resize((max(1, im.width * 3 // 4), max(1, im.height * 3 // 4)))
