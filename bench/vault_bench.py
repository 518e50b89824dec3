"""Scan + parse + link throughput on a synthetic vault, on one core, with peak memory.

    .venv/bin/python bench/vault_bench.py [--notes 10000] [--keep DIR]

Generates a vault (10k notes, thousands of embeds, a few thousand image files), then in a
child process pinned to one core measures, over the same notes:
  - baseline: read every note and run markdown-it-py's full CommonMark parse (what a
    straightforward implementation does), and
  - vaultlens: scan the vault, parse every note into sections/embeds/tags, resolve every embed
    and build its context,
and prints notes/s for each, the ratio, and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "vault note screenshot chart friction cost sync plugin graph canvas storm pier coffee "
    "export import template daily meeting roadmap budget design review latency index search "
    "语义 搜索 截图 笔记"
).split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_note(rng: random.Random, i: int, images: list[str]) -> str:
    parts = []
    if rng.random() < 0.6:
        parts.append(f"---\ntags: [t{i % 50}, project]\ncreated: 2024-0{1 + i % 9}-1{i % 9}\n"
                     f"rating: {i % 5}\n---")
    parts.append(f"# Note {i}")
    for h in range(rng.randint(1, 4)):
        parts.append(f"## Section {h}")
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            if r < 0.5:
                parts.append(" ".join(sentence(rng, rng.randint(5, 20)) for _ in range(3)))
            elif r < 0.65:
                parts.append("\n".join(f"- {sentence(rng, 6)} #tag{rng.randint(0, 9)}"
                                       for _ in range(rng.randint(2, 6))))
            elif r < 0.72:
                parts.append(f"> [!note] {sentence(rng, 3)}\n> {sentence(rng, 12)}")
            elif r < 0.77:
                parts.append("```python\nprint('![[not-an-embed.png]]')\n```")
            elif r < 0.82:
                parts.append("| a | b |\n|---|---|\n| 1 | `code` |\n| 2 | 3 |")
            elif images:
                img = rng.choice(images)
                name = img.rsplit("/", 1)[-1]
                style = rng.random()
                if style < 0.6:
                    parts.append(f"![[{name}|{rng.choice([200, 300, 640])}]]")
                elif style < 0.85:
                    parts.append(f"{sentence(rng, 8)} ![[{name}]] {sentence(rng, 5)}")
                else:
                    parts.append(f"![{sentence(rng, 3)}](<{img}>)")
    return "\n\n".join(parts) + "\n"


def generate(root: Path, notes: int, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    images = []
    for i in range(notes // 3):
        folder = "Attachments" if i % 3 else f"Projects/P{i % 40}/img"
        name = f"Pasted image 2024{1 + i % 12:02d}1{i % 9}1234{i % 60:02d} {i}.png" if i % 4 == 0 \
            else f"shot-{i}.png"
        images.append(f"{folder}/{name}")
    for img in images:
        path = root / img
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG\r\n\x1a\n")
    for i in range(notes):
        path = root / f"Area{i % 20}" / f"Topic{i % 7}" / f"Note {i}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make_note(rng, i, images), encoding="utf-8")
    (root / ".obsidian").mkdir(exist_ok=True)
    (root / ".obsidian" / "app.json").write_text('{"attachmentFolderPath": "Attachments"}')
    return {"notes": notes, "images": len(images)}


def measure(root: Path, which: str) -> dict[str, float]:
    """Runs in the child, pinned to one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    start = time.perf_counter()
    if which == "baseline":
        from markdown_it import MarkdownIt

        md = MarkdownIt("commonmark").enable("table")
        paths = sorted(root.rglob("*.md"))
        for path in paths:
            md.parse(path.read_text(encoding="utf-8"))
        count = len(paths)
        extra: dict[str, float] = {}
    else:
        from vaultlens.vault.context import link_vault
        from vaultlens.vault.notes import NoteParser
        from vaultlens.vault.scan import scan

        linked = link_vault(scan(root), NoteParser(), 1500)
        count = len(linked.notes)
        extra = {"embeds_linked": len(linked.links),
                 "unresolved": sum(1 for x in linked.links if x.target is None)}
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"notes": count, "seconds": seconds, "notes_per_s": count / seconds,
            "peak_rss_mb": peak_mb, **extra}


def child(root: Path, which: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(root), "--which", which],
        check=True, capture_output=True, text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--notes", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--which", default="vaultlens", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.which)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "vault"
        root.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        made = generate(root, args.notes)
        print(f"generated {made['notes']} notes, {made['images']} images "
              f"in {time.perf_counter() - t:.1f} s")
        child(root, "baseline")  # warm the page cache so both runs read from memory
        base = child(root, "baseline")
        ours = child(root, "vaultlens")
    print(f"baseline  (read + markdown-it full parse): {base['notes_per_s']:8.0f} notes/s  "
          f"{base['seconds']:.2f} s  peak RSS {base['peak_rss_mb']:.0f} MB")
    print(f"vaultlens (scan + parse + link + context):  {ours['notes_per_s']:8.0f} notes/s  "
          f"{ours['seconds']:.2f} s  peak RSS {ours['peak_rss_mb']:.0f} MB")
    print(f"embeds linked: {ours['embeds_linked']:.0f}, unresolved: {ours['unresolved']:.0f}")
    print(f"vaultlens / baseline throughput: {ours['notes_per_s'] / base['notes_per_s']:.2f}x")


if __name__ == "__main__":
    main()
