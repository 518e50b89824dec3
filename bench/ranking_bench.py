"""What each ranking step costs: in-process search latency at one index size, with a step off
(the baseline) and on, in the same run over the same index and queries.

    .venv/bin/python bench/ranking_bench.py [--items 100000] [--rounds 3]

The index is daemon_bench's synthetic vault (10-paragraph notes of Zipf-distributed words, random
vectors with MiniLM's signature); queries are embedded with the real MiniLM. Steps measured:
coverage of the query's words (FusionWeights.coverage). Rounds alternate off and on so that a busy
machine slows both alike.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from daemon_bench import build_index, pct, vocabulary
from vaultlens.config import Config
from vaultlens.embedders.minilm import MiniLM
from vaultlens.search.fusion import Fusion, FusionWeights
from vaultlens.workspace import open_workspace

# every query plain, and within one folder (2% of the items: scored exactly, thousands of them)
WHERE = {"no filter": "", "a folder": 'path:"Area 7"'}
STEPS = {"coverage": FusionWeights(coverage=0.0)}  # name → the weights with that step off


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    words, weights = vocabulary()
    queries = [" ".join(random.Random(i).choices(words, weights, k=3)) for i in range(40)]
    with tempfile.TemporaryDirectory(prefix="vl-ranking-") as tmp:
        vault, data = build_index(Path(tmp), args.items, words, weights)
        ws = open_workspace(Config(vault=vault, data_dir=data, model="minilm", ocr=False),
                            writer=False)
        try:
            searcher = ws.searcher(embedder=MiniLM())
            for q in queries[:5]:
                searcher.search(q, 10)  # warm the model and SQLite's page cache
            for step, off in STEPS.items():
                for where, condition in WHERE.items():
                    timings: dict[str, list[float]] = defaultdict(list)
                    for _ in range(args.rounds):
                        for label, w in (("off", off), ("on", FusionWeights())):
                            searcher.fusion = Fusion(w)
                            for q in queries:
                                t = time.perf_counter()
                                searcher.search(f"{q} {condition}", 10)
                                timings[label].append(1000 * (time.perf_counter() - t))
                    base, new = timings["off"], timings["on"]
                    print(f"{args.items} items, {step}, {where}: off p50 {pct(base, 50):.1f} / "
                          f"p95 {pct(base, 95):.1f} ms; on p50 {pct(new, 50):.1f} / p95 "
                          f"{pct(new, 95):.1f} ms → p95 {pct(new, 95) / pct(base, 95):.2f}x")
        finally:
            ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
