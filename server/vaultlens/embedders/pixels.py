"""Pictures into Qwen3-VL's rows of patches, on the model's device.

transformers' PIL image processor does this in numpy on one CPU core: rescaling, normalising
and cutting a screenshot into patches took two thirds of the time of an embedding batch on an
H200, the GPU waiting meanwhile (bench/gpu_bench.py). Here only the resize stays with PIL; the
pixels travel to the device as bytes and the rest is a few tensor operations there. The numbers
are the processor's own, bit for bit (tests/test_pixels.py compares them), so the vectors are
unchanged: the same resize, then for each byte value the processor's arithmetic (rescaling in
float64, then float32, normalising in float32), done once into a table of 3 x 256.

Sizes follow the reference pipeline (QwenLM/Qwen3-VL-Embedding resizes with qwen_vl_utils, then
calls the processor without resizing), not the processor's own rule: the two differ for a side
of 16 px or less, which the processor rounds to 0 before scaling the whole picture up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL.Image import Image

MAX_RATIO = 200  # the reference refuses pictures longer than this many times their width


def reference_size(height: int, width: int, factor: int, min_pixels: int, max_pixels: int
                   ) -> tuple[int, int]:
    """(height, width) the reference resizes a picture to: each side a multiple of ``factor``
    and at least one ``factor``, the area within [min_pixels, max_pixels], the shape kept as
    nearly as those allow. Raises ValueError for a picture more than ``MAX_RATIO`` times as
    long as it is wide, as the reference does."""
    if max(height, width) > MAX_RATIO * max(1, min(height, width)):
        raise ValueError(f"a {width}x{height} picture is more than {MAX_RATIO} times as long "
                         "as it is wide")
    h = max(factor, round(height / factor) * factor)  # a thin side stays one factor wide
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        shrink = math.sqrt(height * width / max_pixels)
        # at least one factor: the reference's floor gives 0 for a long strip under a small
        # budget (and then fails); nowhere else does this differ from it
        h = max(factor, math.floor(height / shrink / factor) * factor)
        w = max(factor, math.floor(width / shrink / factor) * factor)
    elif h * w < min_pixels:
        grow = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * grow / factor) * factor
        w = math.ceil(width * grow / factor) * factor
    return h, w


class Patches:
    """The patch rows and grid of pictures, as ``processor`` (a Qwen2VLImageProcessorPil) would
    give them for this pixel budget."""

    def __init__(self, processor: Any, min_pixels: int, max_pixels: int, workers: int = 1
                 ) -> None:
        self.patch = int(processor.patch_size)
        self.merge = int(processor.merge_size)
        self.temporal = int(processor.temporal_patch_size)
        self.resample = processor.resample
        self.scale = float(processor.rescale_factor) if processor.do_rescale else None
        self.mean = list(processor.image_mean) if processor.do_normalize else None
        self.std = list(processor.image_std) if processor.do_normalize else None
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self._tables: dict[str, Any] = {}
        # PIL resizes without the GIL: beside a GPU, resizing a batch's pictures one after the
        # other on one core was most of what was left of the preparation
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None

    def size_of(self, picture: Image) -> tuple[int, int]:
        """(width, height) the picture is resized to: a multiple of patch x merge each way,
        within the pixel budget."""
        height, width = reference_size(picture.height, picture.width, self.patch * self.merge,
                                       self.min_pixels, self.max_pixels)
        return int(width), int(height)

    def __call__(self, pictures: Sequence[Image], device: Any) -> tuple[Any, Any]:
        """(pixel_values: float32 [patches, 3 x temporal x patch x patch] on ``device``,
        image_grid_thw: int64 [pictures, 3]) for RGB pictures."""
        import torch

        if self.workers > 1 and len(pictures) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="pixels")
            resized = list(self._pool.map(self._resized, pictures))
        else:
            resized = [self._resized(picture) for picture in pictures]
        rows = [self._patchify(torch.from_numpy(pixels).to(device).permute(2, 0, 1))
                for pixels in resized]
        grids = [[1, pixels.shape[0] // self.patch, pixels.shape[1] // self.patch]
                 for pixels in resized]
        return torch.cat(rows), torch.tensor(grids, dtype=torch.int64)

    def _resized(self, picture: Image) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """The picture's bytes [H, W, 3] at the size it is cut at."""
        size = self.size_of(picture)
        if size != picture.size:
            picture = picture.resize(size, resample=self.resample)
        return np.array(picture, dtype=np.uint8)

    def _values(self, device: Any) -> Any:
        """What each byte value of each channel becomes, [3, 256] float32: the processor's
        arithmetic done once per value, so a picture is one lookup."""
        import torch

        key = str(device)
        if key not in self._tables:
            values = torch.arange(256, dtype=torch.float64)
            values = values * self.scale if self.scale is not None else values
            table = values.float().expand(3, 256)
            if self.mean is not None and self.std is not None:
                mean = torch.tensor(self.mean, dtype=torch.float32)
                std = torch.tensor(self.std, dtype=torch.float32)
                table = (table - mean[:, None]) / std[:, None]
            self._tables[key] = table.contiguous().to(device)
        return self._tables[key]

    def _patchify(self, pixels: Any) -> Any:
        """One picture's bytes [3, H, W] into rows ordered as the processor orders them: by
        merge block, then by patch within the block; each row channel, time, y, x."""
        import torch

        channels, height, width = pixels.shape
        table = self._values(pixels.device)
        image = torch.gather(table, 1, pixels.reshape(channels, -1).long())
        p, m = self.patch, self.merge
        blocks = image.reshape(channels, height // p // m, m, p, width // p // m, m, p)
        blocks = blocks.permute(1, 4, 2, 5, 0, 3, 6)  # (gh, gw, mh, mw, C, ph, pw)
        blocks = blocks.unsqueeze(5).expand(*blocks.shape[:5], self.temporal, p, p)
        return blocks.reshape(-1, channels * self.temporal * p * p)
