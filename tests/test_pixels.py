"""Pictures cut into patches on the model's device equal, bit for bit, what transformers' PIL
image processor gives: the embedder's vectors must not move."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from vaultlens.embedders.base import Input  # noqa: E402
from vaultlens.embedders.pixels import Patches  # noqa: E402
from vaultlens.embedders.qwen3_vl import Qwen3VL  # noqa: E402

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
SIZES = [(512, 512), (1280, 720), (33, 17), (3000, 200), (1, 1), (4000, 3000), (719, 1283)]


def processor() -> object:
    return transformers.Qwen2VLImageProcessorPil(patch_size=16, merge_size=2,
                                                 temporal_patch_size=2)


def noise(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("tokens", "workers"), [(16, 1), (256, 1), (1800, 1), (1800, 3)])
def test_patches_equal_the_processors(device: str, tokens: int, workers: int) -> None:
    unit = 16 * 2
    low, high = min(4 * unit * unit, tokens * unit * unit), tokens * unit * unit
    reference = processor()
    patches = Patches(reference, low, high, workers)
    pictures = [noise(size, n) for n, size in enumerate(SIZES)]
    expected = reference(images=pictures, return_tensors="pt",  # type: ignore[operator]
                         size={"shortest_edge": low, "longest_edge": high})
    pixels, grid = patches(pictures, device)
    assert pixels.device.type == device and pixels.dtype == torch.float32
    assert torch.equal(grid, expected["image_grid_thw"])
    assert torch.equal(pixels.cpu(), expected["pixel_values"])
    assert all(int(g.prod()) // 4 <= max(tokens, 4) for g in grid)


def test_the_embedder_feeds_the_processors_pixels(tiny_qwen_path: Path) -> None:
    """The model gets the processor's pixel values at its own budget, after RGB conversion."""
    model = Qwen3VL(str(tiny_qwen_path), max_image_tokens=64, dtype=torch.float32)
    model.embed([Input(text="load")], "document")
    picture = noise((900, 500), 7).convert("RGBA")
    inputs = model._encode([model._prompt(Input(image=picture), "document")], [[picture]])
    unit = 32
    expected = processor()(images=[picture.convert("RGB")], return_tensors="pt",  # type: ignore[operator]
                           size={"shortest_edge": 4 * unit * unit,
                                 "longest_edge": 64 * unit * unit})
    assert torch.equal(inputs["pixel_values"].cpu(), expected["pixel_values"])
    assert torch.equal(inputs["image_grid_thw"].cpu(), expected["image_grid_thw"])
    pads = int(inputs["mm_token_type_ids"].sum())
    assert pads == int(expected["image_grid_thw"][0].prod()) // 4


# (width, height) → the size the reference pipeline (qwen_vl_utils' resize, then the processor
# with do_resize=False) gives at 256 tokens, worked out by hand from its rule: a side under
# 16 px rounds to 0 in transformers' smart_resize, where the reference keeps it at 32
REFERENCE_SIZES = {(900, 12): (896, 32), (900, 16): (896, 32), (1990, 10): (1984, 32),
                   (12, 900): (32, 896), (900, 17): (896, 32), (240, 320): (256, 320),
                   (1000, 1400): (416, 576)}


@pytest.mark.parametrize("size", sorted(REFERENCE_SIZES))
def test_pictures_are_sized_as_the_reference_sizes_them(size: tuple[int, int]) -> None:
    """Thin strips included; and the pixels are the processor's, not resizing, of the picture
    resized as the reference resizes it (PIL's default filter)."""
    unit = 32
    reference = processor()
    patches = Patches(reference, 4 * unit * unit, 256 * unit * unit)
    picture = noise(size, 3)
    assert patches.size_of(picture) == REFERENCE_SIZES[size]
    resized = picture.resize(REFERENCE_SIZES[size])
    expected = reference(images=[resized], return_tensors="pt",  # type: ignore[operator]
                         do_resize=False)
    pixels, grid = patches([picture], "cpu")
    assert torch.equal(grid, expected["image_grid_thw"])
    assert torch.equal(pixels, expected["pixel_values"])


def test_a_picture_far_longer_than_wide_is_refused_as_the_reference_refuses_it() -> None:
    patches = Patches(processor(), 4096, 256 * 1024)
    with pytest.raises(ValueError, match="200 times"):
        patches.size_of(noise((2010, 10), 1))
