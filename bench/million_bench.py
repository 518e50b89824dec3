"""The vector index of a vault of a million items: build time, memory at rest, search p95 and
time to the first answer after a restart, for usearch's index loaded into memory and viewed
from disk (memory-mapped), side by side in one run. With --catalog, whole searches too
(keywords, vectors, images lent their paragraphs' scores, passages) over a catalog of as many
items.

    .venv/bin/python bench/million_bench.py [--items 1000000] [--dims 512] [--dtype i8]
        [--catalog [--baseline REF]]

Vectors are synthetic: 2,000 topics, each item its topic's direction plus noise, cut to --dims
(Matryoshka) and normalised, added through vaultlens's own VectorIndex (usearch HNSW, cosine).
Each measurement of the saved index runs in a fresh process, as a restarted daemon would.
Baseline: numpy brute force over the same vectors (float32, in memory), same queries. The
catalog's items are paragraphs of 12 words from daemon_bench's Zipf vocabulary, 10 to a note,
written straight through the Catalog (no vault files, no model); the query vector comes from a
deterministic stand-in model of the index's dimensions.
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
ask = lambda q: index.search(q, 50)
extra = {"keys": [int(k) for k in ask(queries[0]).keys[:10]]}
"""
# the end of both child programs: time ``ask`` over the queries after the first
TIMED = r"""
ready = time.perf_counter() - start
lat = []
for q in queries[1:]:
    t = time.perf_counter()
    ask(q)
    lat.append(1000 * (time.perf_counter() - t))
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
print(json.dumps({"ready_s": ready, "p50_ms": float(np.percentile(lat, 50)),
                  "p95_ms": float(np.percentile(lat, 95)), "rss_mb": rss, **extra}))
"""


SEARCH = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
from pathlib import Path
import numpy as np
from vaultlens.embedders.base import Embedder, normalise
from vaultlens.index.catalog import Catalog
from vaultlens.index.vectors import VectorIndex
from vaultlens.search.searcher import Searcher

class Stand(Embedder):
    name = signature = "bench"
    def __init__(self, dims): self.dimension = dims
    def embed(self, inputs, role):
        rows = [np.random.default_rng(abs(hash(i.text)) % 2**32).standard_normal(self.dimension)
                for i in inputs]
        return normalise(np.asarray(rows, dtype=np.float32))

root, dims, dtype = Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
catalog = Catalog.open(root / "catalog.sqlite")
vectors = VectorIndex(root / "vectors.usearch", dims, "bench", dtype)
assert vectors.load(1)
try:  # keyword postings kept in memory, as the daemon and eval keep them (not in older code)
    from vaultlens.index.postings import Postings
    kept = {"postings": Postings()}
except ImportError:
    kept = {}
searcher = Searcher(catalog, vectors, Stand(dims), **kept)
queries = json.loads(sys.argv[5])
ask = lambda q: searcher.search(q, 10)
ask(queries[0])
extra = {}
"""


def catalog_bench(root: Path, items: int, dims: int, dtype: str, baseline: str | None) -> None:
    """A catalog of ``items`` paragraphs beside the vector index just built (same ids), then
    whole searches over both in a fresh process; with ``baseline``, by that commit's code too
    (from a git worktree), over the same catalog and queries."""
    import json
    import random

    sys.path.insert(0, str(HERE))
    from daemon_bench import vocabulary
    from vaultlens.index.catalog import Catalog

    words, weights = vocabulary()
    rng = random.Random(1)
    catalog = Catalog.open(root / "catalog.sqlite")
    start = time.perf_counter()
    note = 0
    while note * 10 < items:
        with catalog.transaction():
            for n in range(note, min(note + 2000, (items + 9) // 10)):
                fid = catalog.upsert_file(f"Area {n % 50}/Note {n}.md", "note", 100, 0,
                                          f"h{n}", "indexed", None)
                texts = [" ".join(rng.choices(words, weights, k=12)) + f" n{n}p{p}."
                         for p in range(min(10, items - 10 * n))]
                _, ids = catalog.replace_items(fid, [
                    {"kind": "section", "section": "paragraph", "start_line": 2 * p + 1,
                     "end_line": 2 * p + 1, "text": t, "content_hash": f"c{n}.{p}"}
                    for p, t in enumerate(texts)])
                for item_id, t in zip(ids, texts, strict=True):
                    catalog.set_fts(item_id, t, f"Note {n}", "")
            note += 2000
    catalog.close()
    took = time.perf_counter() - start
    size = (root / "catalog.sqlite").stat().st_size / 2**20
    print(f"catalog of {items} items written in {took:.0f} s, {size:.0f} MB", flush=True)
    queries = list(dict.fromkeys(" ".join(random.Random(i).choices(words, weights, k=3))
                                 for i in range(4000)))[:201]
    codes = [("this code", HERE.parent)]
    if baseline:
        tree = root / "baseline"
        subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", str(tree),
                        baseline], check=True, capture_output=True)
        codes.append((f"baseline {baseline}", tree))
    try:
        for label, code in codes:
            out = subprocess.run([sys.executable, "-c", SEARCH + TIMED, str(code / "server"),
                                  str(root), str(dims), dtype, json.dumps(queries)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out)
            print(f"  whole searches, {label} (k=10, one at a time): first answer "
                  f"{r['ready_s']:.2f} s after start, p50 {r['p50_ms']:.1f} ms, p95 "
                  f"{r['p95_ms']:.1f} ms, RSS {r['rss_mb']:.0f} MB", flush=True)
    finally:
        if baseline:
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force",
                            str(root / "baseline")], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--dtype", default="i8")
    ap.add_argument("--catalog", action="store_true", help="whole searches over a catalog too")
    ap.add_argument("--baseline", help="with --catalog: a commit whose searches are measured "
                    "too, over the same catalog (from a git worktree of it)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        index = VectorIndex(root / "vectors.usearch", args.dims, "bench", args.dtype)
        start = time.perf_counter()
        step = 50_000
        for first in range(0, args.items, step):
            count = min(step, args.items - first)
            rows = vectors(count, args.dims, first)
            index.upsert(list(range(first + 1, first + count + 1)), rows)  # item ids: from 1
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
            out = subprocess.run([sys.executable, "-c", MEASURE + TIMED,
                                  str(root / "vectors.usearch"),
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
            found = {k - 1 for k in results["load"]["keys"]}
            print(f"  recall@10 of the first query against exact search: "
                  f"{len(found & {int(k) for k in exact}) / 10:.1f}")
        if args.catalog:
            del matrix
            catalog_bench(root, args.items, args.dims, args.dtype, args.baseline)


if __name__ == "__main__":
    main()
