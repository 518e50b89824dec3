"""A long run: mixed searches, edits and pastes against the English help vault, with the
daemon's memory and search latency over time.

    .venv/bin/python bench/soak_bench.py [--minutes 30] [--window 60]

Searches run back to back; every few seconds a note gets a new paragraph; every 20 s a
screenshot is pasted with a note that embeds it. Each window prints the daemon's RSS and the
searches' p50/p95. Baseline in the same run: the first window. At the end: RSS growth over
the first and the second half (a leak grows in both; a cache levels off).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from daemon_bench import Daemon, pct, screenshot

SHARED = Path(__file__).resolve().parents[2] / "shared"
QUERIES = ["sync settings", "graph view", "canvas cards", "publish site", "daily notes",
           "templates folder", "backlinks", "search operators", "plugins community",
           "file recovery", "attachments folder", "keyboard shortcuts", "pasted gauge"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--window", type=float, default=60, help="seconds per printed row")
    args = ap.parse_args()
    source = SHARED / "vaults" / "obsidian-help-en"
    if not source.is_dir():
        sys.exit(f"{source} is not here: this bench needs ../shared")
    rng = random.Random(3)
    with tempfile.TemporaryDirectory(prefix="vaultlens-soak-") as tmp:
        vault, data = Path(tmp) / "vault", Path(tmp) / "data"
        shutil.copytree(source, vault)
        notes = sorted(vault.rglob("*.md"))
        daemon = Daemon(vault, data)
        rows: list[tuple[float, float, float, float, int, float]] = []
        try:
            daemon.wait_ready()
            daemon.wait_idle()
            start = time.monotonic()
            next_edit, next_paste, pastes = start, start, 0
            print(f"{'minute':>7} {'RSS MB':>8} {'p50 ms':>8} {'p95 ms':>8} {'searches':>9} "
                  f"{'+workers':>10}")
            while time.monotonic() - start < args.minutes * 60:
                window_end = time.monotonic() + args.window
                took: list[float] = []
                while time.monotonic() < window_end:
                    now = time.monotonic()
                    if now >= next_edit:
                        note = rng.choice(notes)
                        with open(note, "a", encoding="utf-8") as fh:
                            fh.write(f"\nSoak line {rng.randint(0, 10**6)} about sync.\n")
                        next_edit = now + 5
                    if now >= next_paste:
                        shot = vault / f"Pasted soak {pastes}.png"
                        shot.write_bytes(screenshot(f"GAUGE {pastes * 13}"))
                        (vault / f"Soak {pastes}.md").write_text(
                            f"# Soak {pastes}\n\nPasted gauge reading.\n\n![[{shot.name}]]\n")
                        pastes += 1
                        next_paste = now + 20
                    t = time.perf_counter()
                    daemon.search(rng.choice(QUERIES), 10)
                    took.append(1000 * (time.perf_counter() - t))
                    time.sleep(0.02)
                minute = (time.monotonic() - start) / 60
                rows.append((minute, daemon.rss_mb(), pct(took, 50), pct(took, 95), len(took),
                             daemon.rss_mb(workers=True)))
                print(f"{minute:7.1f} {rows[-1][1]:8.1f} {rows[-1][2]:8.1f} {rows[-1][3]:8.1f} "
                      f"{rows[-1][4]:9d} {rows[-1][5]:10.1f}", flush=True)
        finally:
            daemon.stop()
    half = len(rows) // 2
    first, mid, last = rows[0][1], rows[half][1], rows[-1][1]
    print(f"RSS: {first:.0f} MB in the first window, {mid:.0f} at the middle, {last:.0f} at "
          f"the end: +{mid - first:.0f} MB in the first half, +{last - mid:.0f} in the second")
    first, mid, last = rows[0][5], rows[half][5], rows[-1][5]
    print(f"with the worker processes: {first:.0f}, {mid:.0f}, {last:.0f} MB: "
          f"+{mid - first:.0f} and +{last - mid:.0f}")
    print(f"p95: first window {rows[0][3]:.1f} ms, last {rows[-1][3]:.1f} ms "
          f"(x{rows[-1][3] / rows[0][3]:.2f}); {pastes} pastes")


if __name__ == "__main__":
    main()
