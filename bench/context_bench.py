"""Context packs: assembly latency at 100k items, with and without pictures, and what MCP over
stdio adds on top of the API.

    .venv/bin/python bench/context_bench.py [--items 100000] [--root /tmp/vl-ctx] [--runs 30]

- The index is daemon_bench's synthetic one (notes of random Zipf words, random vectors signed
  as MiniLM), plus a folder of four screenshots with words rendered into them and a note that
  embeds them, which the daemon indexes with the real MiniLM and OCR at start. ``--root``
  keeps it between runs.
- Baseline in the same run: ``/api/search`` for the same queries over the same daemon.
- Packs: ``/api/context`` without pictures (max_images 0) and with four (decode, downscale,
  encode), as URLs and inline.
- MCP: the ``context`` tool through ``vaultlens mcp`` (stdio, through the daemon) against the
  same inline request made to the API directly.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from daemon_bench import Daemon, build_index, pct, vocabulary


def slide(title: str, seed: int) -> bytes:
    import io

    rng = random.Random(seed)
    im = Image.new("RGB", (1600, 900), "white")
    draw = ImageDraw.Draw(im)
    draw.text((80, 80), title, fill="black", font_size=64)
    for n in range(6):  # bars: a chart, so the picture is not one flat colour
        h = rng.randint(100, 500)
        draw.rectangle((200 + n * 200, 800 - h, 320 + n * 200, 800), fill=(120, 60, 200))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def add_slides(vault: Path) -> None:
    folder = vault / "Slides"
    if folder.exists():
        return
    folder.mkdir()
    titles = ["FRICTION COST BY TOOL", "SYNC CONFLICTS PER WEEK", "PLUGIN LOAD TIME",
              "GRAPH VIEW USAGE"]
    lines = ["# Tool review slides", ""]
    for n, title in enumerate(titles):
        (folder / f"slide-{n}.png").write_bytes(slide(title, n))
        lines += [f"Slide {n}: the chart of {title.lower()} from the review.", "",
                  f"![[slide-{n}.png]]", ""]
    (folder / "Review.md").write_text("\n".join(lines))


def timed(daemon: Daemon, path: str, body: dict[str, Any], runs: int) -> tuple[list[float], Any]:
    took, answer = [], None
    for _ in range(runs):
        start = time.perf_counter()
        answer = daemon.call(path, body)
        took.append(1000 * (time.perf_counter() - start))
    return took, answer


async def mcp_context_ms(vault: Path, data: Path, body: dict[str, Any], runs: int
                         ) -> list[float]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "vaultlens", "mcp", "--vault", str(vault), "--data-dir", str(data),
        "--model", "minilm"])
    took = []
    async with Client(params) as client:
        await client.call_tool("context", body)  # warm
        for _ in range(runs):
            start = time.perf_counter()
            result = await client.call_tool("context", body)
            took.append(1000 * (time.perf_counter() - start))
            assert not result.is_error
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--root", type=Path, default=Path("/tmp/vl-ctx"))
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    words, weights = vocabulary()
    vault, data = args.root / f"vault-{args.items}", args.root / f"data-{args.items}"
    if not (data / "catalog.sqlite").exists():
        start = time.perf_counter()
        vault, data = build_index(args.root, args.items, words, weights)
        print(f"built {args.items} items in {time.perf_counter() - start:.0f} s")
    add_slides(vault)
    daemon = Daemon(vault, data)
    try:
        daemon.wait_ready()
        daemon.wait_idle()
        queries = [" ".join(random.Random(i).choices(words, weights, k=3)) for i in range(10)]
        rows: list[tuple[str, list[float]]] = []
        search: list[float] = []
        pack0: list[float] = []
        slide_query = "chart friction cost sync conflicts plugin load graph view slides"
        for q in queries:
            search += timed(daemon, "/api/search", {"query": q, "k": 20}, args.runs // 10)[0]
            pack0 += timed(daemon, "/api/context", {"query": q, "max_images": 0},
                           args.runs // 10)[0]
        pack4, answer = timed(daemon, "/api/context", {"query": slide_query}, args.runs)
        inline4, answer = timed(daemon, "/api/context", {"query": slide_query, "inline": True},
                                args.runs)
        shown = [e for e in answer["pack"]["entries"] if e["type"] == "image"]
        rows += [("search k=20 (baseline)", search), ("context, no images", pack0),
                 (f"context, {len(shown)} images as URLs", pack4),
                 (f"context, {len(shown)} images inline", inline4)]
        mcp_body = {"query": slide_query}
        mcp = asyncio.run(mcp_context_ms(vault, data, mcp_body, args.runs))
        rows.append(("MCP stdio context (via daemon)", mcp))
        base = pct(search, 95)
        print(f"\n{args.items} items; p50/p95 in ms; ratio = p95 / search p95 in this run")
        for name, values in rows:
            print(f"  {name:<34} p50 {pct(values, 50):7.1f}  p95 {pct(values, 95):7.1f}  "
                  f"x{pct(values, 95) / base:5.2f}")
        print(f"  MCP over the API (inline pack): +{pct(mcp, 50) - pct(inline4, 50):.1f} ms "
              f"p50, +{pct(mcp, 95) - pct(inline4, 95):.1f} ms p95")
        print(f"  images in the pack: {[(e['path'], e['image']['width'], e['image']['height'], e['image']['bytes']) for e in shown]}")  # noqa: E501
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
