"""Safe image decoding and thumbnails.

Decompression bombs are errors, EXIF orientation is applied, an animation gives its first frame,
16-bit and float images are scaled to 8 bits, transparency is flattened onto white (screenshots
with alpha would otherwise turn black). A truncated file is probably still being written:
that is a retry, not a failure.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vaultlens.errors import VaultlensError

MAX_PIXELS = 64_000_000  # 8k x 8k: past this, a picture is a bomb, not a screenshot
WORK_SIDE = 2048  # OCR and embedding never need more; bounds memory per image
THUMB_SIDE = 320
# resized without interpolation (bilevel, palette): these become RGB at full size first
_NEAREST_ONLY = frozenset({"1", "P", "PA"})
MIN_ENCODED_SIDE = 64  # encode_for_model's smallest picture, unless its caller asks larger
FIT_ATTEMPTS = 3  # sizes above the smallest that encode_for_model tries before it takes that


class ImageError(VaultlensError):
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
                if max(im.size) > WORK_SIDE and im.mode not in _NEAREST_ONLY:
                    # shrink the decoded pixels before any full-size copy is made (orientation,
                    # flattening, 16 bits to 8 each copy the picture: four copies of an 8000 x
                    # 8000 PNG with alpha are 1 GB). WORK_SIDE bounds both sides, so shrinking
                    # before turning the picture gives the same size
                    im.thumbnail((WORK_SIDE, WORK_SIDE))
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


def encode_for_model(image: Image.Image, max_side: int, max_bytes: int,
                     min_side: int = MIN_ENCODED_SIDE) -> Encoded:
    """The picture at most ``max_side`` on its longer side and ``max_bytes`` long: PNG when it
    fits (text in screenshots stays sharp), else WebP at falling quality, else smaller, but
    never below ``min_side``.

    A picture that does not fit is not shrunk step by step (tens of encodings, seconds for one
    that never fits): the smallest size allowed is tried first, cheaply, and when even that is
    too long the picture is refused at once; else the size that fits is computed from the
    bytes at the two sizes tried, bytes growing as a power of the side. At most
    ``FIT_ATTEMPTS`` sizes above the smallest are encoded."""
    side = min(max_side, max(image.size))
    floor = min(min_side, side)
    low = _fit(_shrunk(image, floor), max_bytes)
    if isinstance(low, int):  # bytes grow with the side: no larger size fits either
        raise ImageError(f"cannot fit the picture in {max_bytes} bytes (it takes {low} "
                         f"at {floor} px)")
    for attempt in range(FIT_ATTEMPTS):
        if side <= floor:
            break
        im = _shrunk(image, side)
        got = _fit(im, max_bytes)
        if not isinstance(got, int):
            return got
        # aim under the estimate, and more so each time it fell short: a smaller picture holds
        # more detail per pixel than the power law says
        now = max(im.size)
        if now <= floor:
            break
        # got > max_bytes >= the smallest's bytes: a positive power, kept from the flat end
        # (a power near 0 would aim at sides past any float)
        power = max(0.5, math.log(got / len(low.data)) / math.log(now / floor))
        aim = (0.9 - 0.15 * attempt) * max_bytes / len(low.data)
        side = min(now - 1, int(floor * aim ** (1 / power))) if aim > 1 else floor
    return low


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) <= side:
        return image
    im = image.copy()
    im.thumbnail((side, side))
    return im


def _fit(im: Image.Image, max_bytes: int) -> Encoded | int:
    """The best encoding within ``max_bytes`` (PNG, else WebP at the best quality that fits),
    or when none fits the fewest bytes any took. WebP at 45 is tried before 85 and 65: when it
    does not fit they, being larger, are not tried."""
    png = _encode(im, "PNG", 0)
    if len(png) <= max_bytes:
        return Encoded(png, "image/png", im.width, im.height)
    lowest = _encode(im, "WEBP", 45)
    if len(lowest) > max_bytes:
        return min(len(png), len(lowest))
    for quality in (85, 65):
        data = _encode(im, "WEBP", quality)
        if len(data) <= max_bytes:
            return Encoded(data, "image/webp", im.width, im.height)
    return Encoded(lowest, "image/webp", im.width, im.height)


def _encode(im: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "PNG":
        im.save(buf, "PNG", optimize=False, compress_level=6)
    else:
        im.save(buf, "WEBP", quality=quality, method=4)
    return buf.getvalue()
