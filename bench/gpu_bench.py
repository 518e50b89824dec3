"""Qwen3-VL-Embedding throughput on a GPU: images/s and texts/s of the local transformers path
across batch sizes, and of a vLLM server when one is given, each with its share of the
FLOP-bound rate (the baseline: what the GPU's peak would allow).

    .venv/bin/python bench/gpu_bench.py [--model qwen3-vl-2b] [--remote http://host:8000]
        [--batches 1,4,16,32] [--seconds 15] [--peak-tflops N]

Needs the model's weights on this machine (`vaultlens model pull qwen3-vl-2b`) for the local
path; a GPU for figures worth having (it runs on a CPU too, slowly, with a small --seconds).
Images are 512x512 screenshots (256 visual tokens); one costs about 1.3 TFLOP on 2B
(--flops-per-image), about 1.6 ms at an H200's dense bf16 rate. Each measurement runs for
--seconds after one warm-up batch: the default run takes about three minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "server"))

from PIL import Image, ImageDraw  # noqa: E402

from vaultlens.embedders.base import Embedder, Input  # noqa: E402

PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
               "A10": 125.0, "RTX 4090": 165.0}  # dense bf16, from the vendors' sheets
TEXT = ("The slide with the purple chart comparing Notion and Obsidian mentions the friction "
        "cost of switching tools, and the team's notes on sync, plugins and offline search.")


def screenshot(n: int) -> Image.Image:
    picture = Image.new("RGB", (512, 512), (250, 250, 250))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((16, 16, 496, 80), fill=(90 + n % 100, 60, 160))
    for line in range(12):
        draw.text((24, 100 + 32 * line), f"{n} settings row {line}: sync, plugins", fill="black")
    return picture


def rate(embed: Callable[[Sequence[Input]], object], inputs: list[Input], seconds: float
         ) -> float:
    """Inputs per second, over at least ``seconds`` after one warm-up call."""
    embed(inputs)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        embed(inputs)
        done += len(inputs)
    return done / (time.perf_counter() - start)


def peak_for(device_name: str, given: float | None) -> float | None:
    if given:
        return given
    return next((v for k, v in PEAK_TFLOPS.items() if k in device_name), None)


def report(label: str, batch: int, per_s: float, flops: float | None, peak: float | None
           ) -> None:
    share = ""
    if flops and peak:
        share = f", {100 * per_s * flops / (peak * 1e12):.1f}% of the FLOP-bound rate"
    print(f"{label:<28} batch {batch:>3}: {per_s:8.1f}/s{share}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen3-vl-2b", help="a model name or folder ('' skips)")
    ap.add_argument("--remote", help="a vLLM server's URL, serving Qwen3-VL-Embedding")
    ap.add_argument("--batches", default="1,4,16,32")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--flops-per-image", type=float, default=1.3e12)
    ap.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak")
    args = ap.parse_args()
    import torch

    gpu = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if gpu else "CPU (no GPU: figures are for this CPU)"
    peak = peak_for(name, args.peak_tflops) if gpu else None
    print(f"device: {name}; peak {peak or '?'} TFLOPS bf16; "
          f"{args.flops_per_image / 1e12:.2f} TFLOP per 512x512 image")
    batches = [int(b) for b in args.batches.split(",")]
    models: list[tuple[str, Embedder, Callable[[int], None]]] = []
    if args.model:
        from vaultlens.embedders.qwen3_vl import Qwen3VL

        local = Qwen3VL(args.model, max_image_tokens=256)

        def size_local(batch: int, model: Qwen3VL = local) -> None:
            model.batch_size = batch

        models.append(("local transformers", local, size_local))
    if args.remote:
        from vaultlens.embedders.remote import Remote

        remote = Remote(args.remote, max_image_tokens=256)

        def size_remote(batch: int, model: Remote = remote) -> None:
            model.parallel = batch  # requests in flight

        models.append((f"vLLM {remote.location}", remote, size_remote))
    for label, model, size in models:
        def documents(xs: Sequence[Input], m: Embedder = model) -> object:
            return m.embed(xs, "document")

        for batch in batches:
            size(batch)
            images = [Input(image=screenshot(n)) for n in range(batch)]
            report(f"{label}, images", batch, rate(documents, images, args.seconds),
                   args.flops_per_image, peak)
            texts = [Input(text=f"{n}: {TEXT}") for n in range(batch)]
            report(f"{label}, texts", batch, rate(documents, texts, args.seconds), None, None)


if __name__ == "__main__":
    main()
