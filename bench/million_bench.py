"""The vector index of a vault of a million items: build time, memory at rest, search p95 and
time to the first answer after a restart, for usearch's index loaded into memory and viewed
from disk (memory-mapped), side by side in one run.

    .venv/bin/python bench/million_bench.py [--items 1000000] [--dims 512] [--dtype i8]

Vectors are synthetic: 2,000 topics, each item its topic's direction plus noise, cut to --dims
(Matryoshka) and normalised, added through vaultlens's own VectorIndex (usearch HNSW, cosine).
Each measurement of the saved index runs in a fresh process, as a restarted daemon would.
Baseline: numpy brute force over the same vectors (float32, in memory), same queries.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "server"))

from vaultlens.index.vectors import VectorIndex  # noqa: E402

TOPICS = 2000
QUERIES = 300


def vectors(n: int, dims: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((TOPICS, dims)).astype(np.float32)
    rows = centres[rng.integers(0, TOPICS, n)] + 0.6 * rng.standard_normal((n, dims)).astype(
        np.float32)
    out: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


MEASURE = r"""
import json, sys, time, resource
from pathlib import Path
import numpy as np
start = time.perf_counter()
from usearch.index import Index
path, mode, dims, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
index = Index(ndim=dims, metric="cos", dtype=dtype)
(index.view if mode == "view" else index.load)(path)
queries = np.load(sys.argv[5])
first = index.search(queries[0], 50)
ready = time.perf_counter() - start
lat = []
for q in queries[1:]:
    t = time.perf_counter()
    index.search(q, 50)
    lat.append(1000 * (time.perf_counter() - t))
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
print(json.dumps({"ready_s": ready, "p50_ms": float(np.percentile(lat, 50)),
                  "p95_ms": float(np.percentile(lat, 95)), "rss_mb": rss,
                  "keys": [int(k) for k in first.keys[:10]]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--dtype", default="i8")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        index = VectorIndex(root / "vectors.usearch", args.dims, "bench", args.dtype)
        start = time.perf_counter()
        step = 50_000
        for first in range(0, args.items, step):
            count = min(step, args.items - first)
            rows = vectors(count, args.dims, first)
            index.upsert(list(range(first, first + count)), rows)
        build = time.perf_counter() - start
        index.save(1)
        size = (root / "vectors.usearch").stat().st_size / 2**20
        print(f"{args.items} items, {args.dims} dims, {args.dtype}: built in {build:.0f} s "
              f"({args.items / build:.0f} items/s), {size:.0f} MB on disk", flush=True)
        queries = vectors(QUERIES + 1, args.dims, 10**9)
        np.save(root / "queries.npy", queries)
        del index
        results = {}
        for mode in ("load", "view"):
            out = subprocess.run([sys.executable, "-c", MEASURE, str(root / "vectors.usearch"),
                                  mode, str(args.dims), args.dtype, str(root / "queries.npy")],
                                 capture_output=True, text=True, check=True).stdout
            results[mode] = json.loads(out)
            r = results[mode]
            print(f"  {mode:>4}: first answer {r['ready_s']:.2f} s after start, search k=50 "
                  f"p50 {r['p50_ms']:.2f} ms p95 {r['p95_ms']:.2f} ms, RSS {r['rss_mb']:.0f} MB",
                  flush=True)
        # baseline: exact search in numpy over float32 vectors held in memory
        sample = min(args.items, 200_000)
        matrix = np.concatenate([vectors(min(step, sample - f), args.dims, f)
                                 for f in range(0, sample, step)])
        lat = []
        for q in queries[1:51]:
            t = time.perf_counter()
            np.argpartition(-(matrix @ q), 50)[:50]
            lat.append(1000 * (time.perf_counter() - t))
        scale = args.items / sample
        print(f"  numpy brute force (baseline, same run): p50 {np.percentile(lat, 50) * scale:.1f}"
              f" ms per query at {args.items} items (measured at {sample}, scaled linearly)")
        exact = np.argsort(-(matrix @ queries[0]))[:10]
        if sample == args.items:
            found = set(results["load"]["keys"])
            print(f"  recall@10 of the first query against exact search: "
                  f"{len(found & {int(k) for k in exact}) / 10:.1f}")


if __name__ == "__main__":
    main()
