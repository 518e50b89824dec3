"""Search latency while the daemon indexes something heavy: ../shared/corpus (735 hostile
images and 173 broken PDFs, with OCR) beside the English help vault's notes.

    .venv/bin/python bench/busy_bench.py [--seconds 120]

The help vault's notes are indexed first (so searches have something to find); then the
corpus is copied in and searches run, one at a time, for ``--seconds`` while it indexes.
Baseline in the same run: the same searches once the daemon is idle again. Aim: p95 at most
200 ms on 2 cores while indexing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from daemon_bench import Daemon, pct

SHARED = Path(__file__).resolve().parents[2] / "shared"
QUERIES = ["sync settings", "graph view", "canvas cards", "publish site", "daily notes",
           "templates folder", "backlinks", "search operators", "plugins community",
           "file recovery", "attachments folder", "keyboard shortcuts"]


def timed_searches(daemon: Daemon, seconds: float, busy: bool) -> tuple[list[float], int]:
    """Latencies (ms) of searches run back to back; and how many ran while indexing."""
    took, during = [], 0
    end = time.monotonic() + seconds
    rng = random.Random(1)
    while time.monotonic() < end:
        start = time.perf_counter()
        daemon.search(rng.choice(QUERIES), 10)
        took.append(1000 * (time.perf_counter() - start))
        if busy:
            status = daemon.call("/api/status")
            during += bool(status["indexing"])
            if not status["indexing"] and status["runs"] > 1:
                break
        time.sleep(0.05)
    return took, during


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=120)
    args = ap.parse_args()
    if not (SHARED / "corpus").is_dir():
        sys.exit(f"{SHARED}/corpus is not here: this bench needs ../shared")
    with tempfile.TemporaryDirectory(prefix="vaultlens-busy-") as tmp:
        vault, data = Path(tmp) / "vault", Path(tmp) / "data"
        shutil.copytree(SHARED / "vaults" / "obsidian-help-en", vault,
                        ignore=shutil.ignore_patterns("*.png", "*.jpg", "*.gif", "*.webp",
                                                      "*.pdf", "*.svg"))
        daemon = Daemon(vault, data)
        try:
            daemon.wait_ready()
            daemon.wait_idle()
            shutil.copytree(SHARED / "corpus", vault / "Corpus")
            start = time.monotonic()
            busy, during = timed_searches(daemon, args.seconds, busy=True)
            daemon.wait_idle()
            indexed_in = time.monotonic() - start
            idle, _ = timed_searches(daemon, 20, busy=False)
            failures = len(daemon.call("/api/status")["failures"])
        finally:
            daemon.stop()
    print(f"searches while the corpus indexed: {len(busy)} ({during} saw indexing on); "
          f"the corpus took {indexed_in:.0f} s, {failures} files not indexed, with reasons")
    print(f"  while indexing  p50 {pct(busy, 50):6.1f} ms  p95 {pct(busy, 95):6.1f} ms")
    print(f"  idle (baseline) p50 {pct(idle, 50):6.1f} ms  p95 {pct(idle, 95):6.1f} ms")
    print(f"  p95 ratio busy / idle: x{pct(busy, 95) / pct(idle, 95):.2f}")


if __name__ == "__main__":
    main()
