"""Qwen3-VL-Embedding throughput on a GPU: images/s and texts/s of the local transformers path
across batch sizes (and the reranker's pairs/s), and of a vLLM server when one is given, each
with its share of the FLOP-bound rate (the baseline: what the GPU's bf16 peak would allow).

    .venv/bin/python bench/gpu_bench.py [--model qwen3-vl-2b | --random-weights 2b]
        [--remote http://host:8000] [--reranker NAME] [--batches 1,4,16,32]
        [--images 512x512,1280x720] [--seconds 8] [--baseline-pixels]

``--model`` needs the weights on this machine (`vaultlens model pull qwen3-vl-2b`).
``--random-weights 2b`` (or 8b) builds a model of the published shapes with random weights
instead (tests/tiny_qwen.py, on the GPU, in seconds): the same arithmetic, so the same speed,
with meaningless vectors; its tokenizer splits the bench's texts into about as many tokens as
Qwen's. ``--reranker random`` then measures the reranker on the same weights.

FLOPs are counted from the model's config and each batch's real token and patch counts (padding
not counted): about 1.6 TFLOP per 512x512 screenshot on 2B (1,024 patches, 256 visual tokens),
so about 2 ms at an H200's measured bf16 rate. The time spent preparing inputs on the CPU
(image preprocessing, tokenising) is printed as a share, since the GPU idles meanwhile.
``--baseline-pixels`` measures the images again with transformers' PIL image processor preparing
them (the baseline for embedders/pixels.py, in the same run). Each measurement runs for
--seconds after one warm-up batch; the default run takes 3-4 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "server"))
sys.path.insert(0, str(HERE.parent / "tests"))

from PIL import Image, ImageDraw  # noqa: E402

from vaultlens.embedders.base import Embedder, Input  # noqa: E402

DATASHEET_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
                    "A10": 125.0, "RTX 4090": 165.0}  # dense bf16, from the vendors' sheets
TEXT = ("The slide with the purple chart comparing Notion and Obsidian mentions the friction "
        "cost of switching tools, and the team's notes on sync, plugins and offline search.")
QUERY = "the slide with the purple chart comparing notion and obsidian"
# Qwen3-VL-2B and -8B (the Embedding and Reranker checkpoints share them), from their config.json
SHAPES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "2b": ({"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28,
            "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
            "vocab_size": 151936, "max_position_embeddings": 262144,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0,
                                "mrope_section": [24, 20, 20], "mrope_interleaved": True}},
           {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
            "out_hidden_size": 2048, "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [5, 11, 17]}),
    "8b": ({"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
            "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
            "vocab_size": 151936, "max_position_embeddings": 262144,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0,
                                "mrope_section": [24, 20, 20], "mrope_interleaved": True}},
           {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16,
            "out_hidden_size": 4096, "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [8, 16, 24]}),
    # for trying the bench itself on a CPU
    "small": ({"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
               "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                   "mrope_section": [16, 8, 8], "mrope_interleaved": True}},
              {"depth": 2, "hidden_size": 128, "intermediate_size": 256, "num_heads": 2,
               "out_hidden_size": 256, "deepstack_visual_indexes": [0]}),
}


def screenshot(n: int, size: tuple[int, int]) -> Image.Image:
    picture = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((16, 16, size[0] - 16, 80), fill=(90 + n % 100, 60, 160))
    for line in range((size[1] - 100) // 32):
        draw.text((24, 100 + 32 * line), f"{n} settings row {line}: sync, plugins", fill="black")
    return picture


def random_model(shape: str, folder: Path) -> Path:
    """A checkpoint folder of ``shape`` with random weights, in bfloat16 on a GPU."""
    import torch

    from tiny_qwen import build  # type: ignore[import-not-found]  # tests/, on sys.path

    text, vision = SHAPES[shape]
    words = [TEXT, QUERY, *(f"{n} settings row {line}: sync, plugins" for n in range(40)
                            for line in range(3))]
    gpu = torch.cuda.is_available()
    built: Path = build(folder, text=text, vision=vision, corpus=words, vocab=2000,
                        device="cuda" if gpu else "cpu", dtype=torch.bfloat16 if gpu else None)
    return built


def macs(config: dict[str, Any], patches: Sequence[int], tokens: Sequence[int]) -> float:
    """Multiply-adds of one forward pass: the vision tower over each image's patches (an image
    attends within itself), the language model over each prompt's real tokens (causal attention
    counted as half). The embedder reads no LM head; the reranker two rows of it."""
    v, t = config["vision_config"], config["text_config"]
    h, merge = v["hidden_size"], v["spatial_merge_size"] ** 2
    patch_in = v.get("in_channels", 3) * v["temporal_patch_size"] * v["patch_size"] ** 2
    layer = 4 * h * h + 2 * h * v["intermediate_size"]
    mergers = 1 + len(v.get("deepstack_visual_indexes", []))
    merger = (h * merge) ** 2 + h * merge * v["out_hidden_size"]
    vision = sum(p * (patch_in * h + v["depth"] * layer) + v["depth"] * 2 * p * p * h
                 + mergers * (p // merge) * merger for p in patches)
    d = t["hidden_size"]
    q, kv = t["num_attention_heads"] * t["head_dim"], t["num_key_value_heads"] * t["head_dim"]
    per_token = 2 * d * q + 2 * d * kv + 3 * d * t["intermediate_size"]
    text = sum(t["num_hidden_layers"] * (n * per_token + n * n * q) for n in tokens)
    return float(vision + text)


class Meter:
    """Wraps a checkpoint's input preparation: counts the FLOPs of what each batch really holds
    and the time spent preparing it on the CPU."""

    def __init__(self, model: Any, config: dict[str, Any]) -> None:
        self.flops = self.prepare_s = 0.0
        encode = model._encode

        def measured(prompts: Any, images: Any) -> dict[str, Any]:
            start = time.perf_counter()
            inputs: dict[str, Any] = encode(prompts, images)
            self.prepare_s += time.perf_counter() - start
            grid = inputs.get("image_grid_thw")
            patches = [int(g.prod()) for g in grid] if grid is not None else []
            tokens = [int(n) for n in inputs["attention_mask"].sum(dim=1)]
            self.flops += 2 * macs(config, patches, tokens)
            return inputs

        model._encode = measured

    def reset(self) -> None:
        self.flops = self.prepare_s = 0.0


def rate(run: Callable[[], int], seconds: float, meter: Meter | None
         ) -> tuple[float, float, float, float]:
    """(inputs/s, FLOP/s, share of the time preparing inputs, seconds per call), over at least
    ``seconds`` after one warm-up call."""
    run()
    if meter:
        meter.reset()
    done, calls, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += run()
        calls += 1
    took = time.perf_counter() - start
    if meter is None:
        return done / took, 0.0, 0.0, took / calls
    return done / took, meter.flops / took, meter.prepare_s / took, took / calls


def measured_peak() -> float:
    """bf16 TFLOP/s of a large matrix product on this GPU: the ceiling the rates are shared of."""
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12


def report(label: str, batch: int, figures: tuple[float, float, float, float],
           peaks: list[tuple[str, float]]) -> None:
    per_s, flop_s, prepare, per_call = figures
    line = f"{label:<34} batch {batch:>3}: {per_s:8.1f}/s, {1000 * per_call:8.1f} ms a batch"
    if flop_s:
        line += f", {flop_s / 1e12:6.1f} TFLOP/s"
        line += "".join(f", {100 * flop_s / (p * 1e12):4.1f}% of {name}" for name, p in peaks)
        line += f", preparing inputs {100 * prepare:4.1f}% of the time"
    print(line, flush=True)


class ProcessorPixels:
    """The baseline: pictures prepared by transformers' PIL image processor, on one core, as
    vaultlens did before embedders/pixels.py."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, pictures: Sequence[Image.Image], device: Any) -> tuple[Any, Any]:
        m = self.model
        out = m._images(images=list(pictures), return_tensors="pt",
                        size={"shortest_edge": m._min_pixels, "longest_edge": m._max_pixels})
        return out["pixel_values"].to(device), out["image_grid_thw"]


def documents(model: Embedder, inputs: list[Input]) -> Callable[[], int]:
    return lambda: len(model.embed(inputs, "document"))


def sizes(spec: str) -> list[tuple[int, int]]:
    return [(int(w), int(h)) for w, h in (s.split("x") for s in spec.split(","))]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--model", default="qwen3-vl-2b", help="a model name or folder ('' skips)")
    ap.add_argument("--random-weights", choices=sorted(SHAPES),
                    help="a model of these shapes with random weights, instead of --model")
    ap.add_argument("--reranker", help="a reranker name or folder; 'random' with --random-weights")
    ap.add_argument("--remote", help="a vLLM server's URL, serving Qwen3-VL-Embedding")
    ap.add_argument("--batches", default="1,4,16,32")
    ap.add_argument("--images", default="512x512,1280x720", help="screenshot sizes, WxH")
    ap.add_argument("--max-image-tokens", type=int, help="default: the device's (GPU 1800)")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 datasheet peak")
    ap.add_argument("--baseline-pixels", action="store_true",
                    help="also measure images prepared by transformers' image processor")
    args = ap.parse_args()
    import torch

    gpu = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if gpu else "CPU (no GPU: figures are for this CPU)"
    peaks: list[tuple[str, float]] = []
    if gpu:
        sheet = args.peak_tflops or next(
            (v for k, v in DATASHEET_TFLOPS.items() if k in name), None)
        peaks.append(("measured peak", measured_peak()))
        if sheet:
            peaks.append(("datasheet", sheet))
    print(f"device: {name}; bf16 peaks: " + (", ".join(f"{n} {p:.0f} TFLOP/s" for n, p in peaks)
                                              or "none (CPU)"), flush=True)
    batches = [int(b) for b in args.batches.split(",")]
    folder = args.model
    scratch = tempfile.TemporaryDirectory(prefix="vaultlens-gpu-bench-")
    if args.random_weights:
        start = time.perf_counter()
        folder = str(random_model(args.random_weights, Path(scratch.name) / "model"))
        print(f"random {args.random_weights} model built in {time.perf_counter() - start:.1f} s",
              flush=True)
    models: list[tuple[str, Embedder, Callable[[int], None], Meter | None]] = []
    from vaultlens.embedders.qwen3_vl import Qwen3VL, Qwen3VLCheckpoint

    if folder:
        local = Qwen3VL(folder, max_image_tokens=args.max_image_tokens)
        config = json.loads((local.path / "config.json").read_text())

        def size_local(batch: int, model: Qwen3VL = local) -> None:
            model.batch_size = batch

        models.append(("local", local, size_local, Meter(local, config)))
        print(f"local: {local.path.name}, {local.max_image_tokens} visual tokens at most, "
              f"{local.count_tokens(TEXT)} tokens in a text", flush=True)
    if args.remote:
        from vaultlens.embedders.remote import Remote

        remote = Remote(args.remote, max_image_tokens=args.max_image_tokens or 1800)

        def size_remote(batch: int, model: Remote = remote) -> None:
            model.parallel = batch  # requests in flight

        models.append((f"vLLM {remote.location}", remote, size_remote, None))
    for label, model, size, meter in models:
        start = time.perf_counter()
        model.embed([Input(text=TEXT)], "document")  # loads the weights
        print(f"{label}: ready in {time.perf_counter() - start:.1f} s", flush=True)
        for batch in batches:
            size(batch)
            for w, h in sizes(args.images):
                images = [Input(image=screenshot(n, (w, h))) for n in range(batch)]
                report(f"{label}, {w}x{h} images", batch,
                       rate(documents(model, images), args.seconds, meter), peaks)
                if args.baseline_pixels and isinstance(model, Qwen3VLCheckpoint):
                    ours = model._patches
                    model._patches = ProcessorPixels(model)  # type: ignore[assignment]
                    report("  baseline: processor's pixels", batch,
                           rate(documents(model, images), args.seconds, meter), peaks)
                    model._patches = ours
            texts = [Input(text=f"{n}: {TEXT}") for n in range(batch)]
            report(f"{label}, texts", batch, rate(documents(model, texts), args.seconds, meter),
                   peaks)
        model.close()
    if args.reranker:
        rerank(args, folder if args.reranker == "random" else args.reranker, batches, peaks)
    scratch.cleanup()


def rerank(args: argparse.Namespace, folder: str, batches: list[int],
           peaks: list[tuple[str, float]]) -> None:
    """Pairs/s of the reranker: a text query against screenshots, as a search reranks."""
    from vaultlens.search.reranker import Qwen3VLReranker

    model = Qwen3VLReranker(folder, max_image_tokens=args.max_image_tokens)
    meter = Meter(model, json.loads((model.path / "config.json").read_text()))
    query = Input(text=QUERY)
    w, h = sizes(args.images)[0]
    for batch in batches:
        model.batch_size = batch
        pages = [Input(text=TEXT, image=screenshot(n, (w, h))) for n in range(batch)]

        def judge(xs: list[Input] = pages) -> int:
            return len(model.scores(query, xs))

        report(f"reranker, {w}x{h} screenshots", batch, rate(judge, args.seconds, meter), peaks)


if __name__ == "__main__":
    main()
