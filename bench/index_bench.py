"""Index a real vault cold and warm with the bundled stack (MiniLM + OCR), against a baseline.

    .venv/bin/python bench/index_bench.py [--vault ../shared/vaults/obsidian-help-en]

Runs, each in a fresh child process (so peak RSS is that run's own):
  - baseline: the unavoidable model work done the plainest way: OCR every raster image once
    and embed every blank-line block of every note with MiniLM in batches of 32;
  - vaultlens cold: `vaultlens index` into an empty data dir;
  - vaultlens warm: the same command again on the unchanged vault (must embed nothing).
Prints seconds, items/s, OCR images/s, peak RSS, and ratios against the baseline.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_VAULT = HERE.parent.parent / "shared" / "vaults" / "obsidian-help-en"
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif"}


def baseline(vault: Path) -> dict[str, float]:
    """Runs in a child: the plain OCR + embedding work, no catalog, no caches."""
    import numpy as np
    from PIL import Image
    from rapidocr_onnxruntime import RapidOCR

    from vaultlens.embedders.minilm import MiniLM

    start = time.perf_counter()
    engine = RapidOCR()
    images = sorted(p for p in vault.rglob("*") if p.suffix.lower() in IMAGE_EXT
                    and not any(part.startswith(".") for part in p.relative_to(vault).parts))
    ocr_start = time.perf_counter()
    for path in images:
        try:
            with Image.open(path) as im:
                engine(np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1]))
        except Exception:
            pass
    ocr_seconds = time.perf_counter() - ocr_start
    blocks = [b for p in sorted(vault.rglob("*.md"))
              for b in p.read_text(encoding="utf-8", errors="replace").split("\n\n") if b.strip()]
    embed_start = time.perf_counter()
    MiniLM().embed_texts(blocks, "document")
    embed_seconds = time.perf_counter() - embed_start
    return {"seconds": time.perf_counter() - start, "items": len(blocks), "images": len(images),
            "ocr_seconds": ocr_seconds, "embed_seconds": embed_seconds}


def timed_child(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of its largest process, stdout). A fresh wrapper process
    runs the command, so RUSAGE_CHILDREN there covers this command's processes only."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--rss", *cmd], check=True,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_line, _, out = proc.stdout.partition("\n")
    return seconds, float(peak_line), out


def rss_wrapper(cmd: list[str]) -> None:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    print(out, end="")


def main() -> None:
    if sys.argv[1:2] == ["--rss"]:  # internal: run the rest of the line, report its peak RSS
        rss_wrapper(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vault", type=Path, default=DEFAULT_VAULT)
    ap.add_argument("--baseline", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline:
        print(json.dumps(baseline(args.baseline)))
        return
    if not args.vault.is_dir():
        sys.exit(f"{args.vault}: no such vault (../shared is needed for the default)")
    base_s, base_rss, out = timed_child([sys.executable, __file__, "--baseline", str(args.vault)])
    base = json.loads(out)
    with tempfile.TemporaryDirectory() as data:
        cmd = [sys.executable, "-m", "vaultlens", "index", "--vault", str(args.vault),
               "--data-dir", data, "--model", "minilm", "--json"]
        cold_s, cold_rss, out = timed_child(cmd)
        cold = json.loads(out)
        warm_s, _, out = timed_child(cmd)
        warm = json.loads(out)
    t = cold["timings"]
    print(f"vault: {args.vault.name}: {cold['files']} files, {cold['items']} items")
    print(f"baseline (plain OCR + MiniLM, no index): {base_s:7.1f} s   "
          f"{base['items'] / base['embed_seconds']:6.0f} blocks/s embedded   "
          f"{base['images'] / base['ocr_seconds']:5.2f} OCR images/s   peak RSS {base_rss:.0f} MB")
    print(f"vaultlens cold:                          {cold_s:7.1f} s   "
          f"{cold['items'] / cold_s:6.0f} items/s overall   "
          f"{cold['ocr_images'] / max(t.get('ocr', 0), 1e-9):5.2f} OCR images/s   "
          f"peak RSS {cold_rss:.0f} MB")
    print(f"  stages: ocr {t.get('ocr', 0):.1f} s, embed {t.get('embed', 0):.1f} s "
          f"({cold['embedded']} vectors), pdf {t.get('pdf', 0):.1f} s")
    print(f"vaultlens warm:                          {warm_s:7.1f} s   "
          f"embedded {warm['embedded']}, indexed {warm['indexed']}")
    print(f"cold / baseline: {cold_s / base_s:.2f}x   warm / cold: {warm_s / cold_s:.3f}x")


if __name__ == "__main__":
    main()
