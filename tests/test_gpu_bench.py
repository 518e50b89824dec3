"""bench/gpu_bench.py's FLOP count (the share of the peak it prints rests on it) against
torch's own count of the operations a real forward pass runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import gpu_bench  # noqa: E402
from vaultlens.embedders.base import Input  # noqa: E402
from vaultlens.embedders.qwen3_vl import Qwen3VL  # noqa: E402


@pytest.mark.slow
def test_the_flop_count_matches_torchs_for_images_and_texts(tmp_path: Path) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    folder = gpu_bench.random_model("small", tmp_path / "model")
    model = Qwen3VL(str(folder), dtype=torch.float32)
    model.embed([Input(text="load")], "document")
    # eager attention is plain matrix products, which torch counts (its CPU sdpa it does not)
    model._model.set_attn_implementation("eager")
    meter = gpu_bench.Meter(model, json.loads((folder / "config.json").read_text()))
    batches = [[Input(image=gpu_bench.screenshot(0, (512, 512)))],
               [Input(text=gpu_bench.TEXT), Input(text=gpu_bench.TEXT)],
               [Input(text="a caption", image=gpu_bench.screenshot(1, (640, 360)))]]
    for items in batches:
        meter.reset()
        with FlopCounterMode(display=False) as counter:
            model.embed(items, "document")
        counted = counter.get_total_flops()
        # torch counts causal attention whole, ours half: within 3 % (no padding here)
        assert meter.flops == pytest.approx(counted, rel=0.03), items
    assert meter.prepare_s > 0
