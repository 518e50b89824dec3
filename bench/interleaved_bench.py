"""Search latency of this code's daemon and a baseline commit's, interleaved round by round.

    .venv/bin/python bench/interleaved_bench.py --baseline 47e42c8 [--items 100000] [--rounds 8]

Both daemons serve copies of one synthetic index (``daemon_bench.build_index``, signed as the
model they both serve with). Rounds alternate which daemon goes first, so what else the
machine does hits both alike; ``daemon_bench.py --baseline`` measures one after the other.
Each query is asked once (the daemon caches query vectors).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from daemon_bench import Daemon, build_index, pct, vocabulary

ROUNDS = ((1, 30), (8, 64))  # (concurrency, queries) per daemon per round


def measure(daemons: dict[str, Daemon], queries: list[str], rounds: int
            ) -> dict[str, dict[int, list[float]]]:
    lat: dict[str, dict[int, list[float]]] = {k: {1: [], 8: []} for k in daemons}
    asked = iter(queries)
    for r in range(rounds):
        for conc, n in ROUNDS:
            for name in (list(daemons) if r % 2 == 0 else list(reversed(daemons))):
                daemon = daemons[name]

                def one(q: str, d: Daemon = daemon) -> float:
                    t = time.perf_counter()
                    d.search(q, 10)
                    return 1000 * (time.perf_counter() - t)

                with ThreadPoolExecutor(conc) as pool:
                    lat[name][conc] += list(pool.map(one, [next(asked) for _ in range(n)]))
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, help="the commit to measure against")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--model", default="e5-small", help="the text model both daemons serve")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vl-interleaved-"))
    base = root / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(base), args.baseline], check=True)
    try:
        words, weights = vocabulary()
        vault, data = build_index(root, args.items, words, weights, args.model)
        shutil.copytree(data, root / "data-baseline")
        queries = list(dict.fromkeys(" ".join(random.Random(i).choices(words, weights, k=3))
                                     for i in range(40 * args.rounds * 200)))
        need = args.rounds * 2 * sum(n for _, n in ROUNDS)
        if len(queries) < need:
            raise SystemExit(f"only {len(queries)} distinct queries for {need}")
        daemons = {"this code": Daemon(vault, data, None, args.model),
                   f"{args.baseline}": Daemon(vault, root / "data-baseline", base, args.model)}
        try:
            for d in daemons.values():
                d.wait_ready()
                d.wait_idle()
            lat = measure(daemons, queries, args.rounds)
        finally:
            for d in daemons.values():
                d.stop()
        for conc, _ in ROUNDS:
            for name, by in lat.items():
                v = by[conc]
                print(f"{args.items} items, concurrency {conc}, {name:>10}: p50 "
                      f"{pct(v, 50):6.1f} ms, p95 {pct(v, 95):6.1f} ms (n={len(v)})")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], check=False)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
