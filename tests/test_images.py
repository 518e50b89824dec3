"""Safe decoding: bombs refused, orientation applied, first frames, retries for truncated files."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaultlens.extract.images import MAX_PIXELS, ImageError, open_image, thumbnail_bytes


def save(tmp_path: Path, name: str, im: Image.Image, **kw: object) -> Path:
    path = tmp_path / name
    im.save(path, **kw)
    return path


@pytest.mark.parametrize(("side", "message"), [
    (30000, "decompression bomb refused"),  # past twice Pillow's own limit: Pillow refuses
    (9000, "over the 64,000,000 limit"),  # under Pillow's, over ours
])
def test_bomb_by_header_is_refused(tmp_path: Path, side: int, message: str) -> None:
    # a BMP header claiming side x side pixels, with almost no data behind it
    header = struct.pack("<2sIHHI", b"BM", 0, 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, side, side, 1, 24, 0, 0, 2835, 2835, 0, 0)
    path = tmp_path / "bomb.bmp"
    path.write_bytes(header + b"\0" * 64)
    with pytest.raises(ImageError, match=message) as info:
        open_image(path)
    assert not info.value.retry
    assert side * side > MAX_PIXELS


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    pic = open_image(save(tmp_path, "r.jpg", im, exif=exif))
    assert pic.image.size == (20, 40)


def test_animation_gives_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (10, 10), c) for c in ("red", "blue", "green")]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    pic = open_image(path)
    assert pic.frames == 3
    r, g, b = pic.image.getpixel((5, 5))  # type: ignore[misc]
    assert r > 200 and g < 50 and b < 50


def test_truncated_file_is_a_retry(tmp_path: Path) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    path = tmp_path / "half.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError) as info:
        open_image(path)
    assert info.value.retry and "truncated" in info.value.reason


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(b"<html>not a picture</html>")
    with pytest.raises(ImageError, match="not an image format") as info:
        open_image(path)
    assert not info.value.retry


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    arr = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (8, 1))
    path = save(tmp_path, "g.png", Image.fromarray(arr))
    pixels = np.asarray(open_image(path).image)
    assert pixels.min() == 0 and pixels.max() == 255  # a gradient, not a white sheet


def test_transparency_becomes_white(tmp_path: Path) -> None:
    im = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert open_image(save(tmp_path, "t.png", im)).image.getpixel((0, 0)) == (255, 255, 255)


def test_large_images_are_bounded_and_thumbnails_small(tmp_path: Path) -> None:
    pic = open_image(save(tmp_path, "big.png", Image.new("RGB", (5000, 1000), "white")))
    assert (pic.width, pic.height) == (5000, 1000) and max(pic.image.size) == 2048
    with Image.open(io.BytesIO(thumbnail_bytes(pic.image))) as thumb:
        assert max(thumb.size) <= 320


def test_missing_file_is_a_retry(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        open_image(tmp_path / "gone.png")
    assert info.value.retry
