"""SQLite work in two threads, with SQLite's memory statistics on (its default) and off (what
`vaultlens` sets at start, index/sqlite_library.py): searches run in threads, each with its
own connection, and the statistics' global lock made them take turns.

Builds a keyword index of 60,000 synthetic items in a temporary file, then ranks queries with
FTS5's bm25() in one thread and in two, each setting in a fresh process. Prints throughput and
the two-thread speed-up for each (2.00x would be two cores' worth).

    .venv/bin/python bench/sqlite_threads_bench.py
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "server"
ROWS, QUERIES = 60_000, 60


def build(path: Path) -> None:
    rng = random.Random(3)
    words = [f"w{i}" for i in range(3000)]
    weights = [1 / (n + 1) for n in range(len(words))]
    conn = sqlite3.connect(path)
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(text)")
    conn.executemany("INSERT INTO t(text) VALUES (?)",
                     [(" ".join(rng.choices(words, weights, k=40)),) for _ in range(ROWS)])
    conn.commit()
    conn.close()


def work(path: str, seed: int) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rng = random.Random(seed)
    for _ in range(QUERIES):
        match = " OR ".join(f'"w{rng.randint(20, 400)}"' for _ in range(2))
        conn.execute("SELECT rowid, bm25(t) FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 50",
                     (match,)).fetchall()
    conn.close()


def child(path: str, setting: str) -> None:
    """One setting: time one thread, then two threads doing twice the work."""
    if setting == "off":
        sys.path.insert(0, str(SERVER))
        from vaultlens.index.sqlite_library import stop_memory_statistics
        assert stop_memory_statistics(), "the setting could not be made here"
    work(path, 0)  # warm the page cache
    start = time.perf_counter()
    work(path, 1)
    one = time.perf_counter() - start
    threads = [threading.Thread(target=work, args=(path, 2 + n)) for n in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    two = time.perf_counter() - start
    print(f"memory statistics {setting:>3}: one thread {QUERIES / one:6.1f} queries/s, two "
          f"threads {2 * QUERIES / two:6.1f} queries/s: {one * 2 / two:.2f}x", flush=True)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fts.sqlite"
        build(path)
        for setting in ("on", "off"):
            subprocess.run([sys.executable, __file__, "--child", str(path), setting], check=True)


if __name__ == "__main__":
    main()
