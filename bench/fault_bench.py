"""SIGKILL a live `vaultlens serve` at random points, many times, while notes change,
screenshots are pasted and searches run; then check what is left.

    .venv/bin/python bench/fault_bench.py [--rounds 20] [--seed 7]

Each round: start the daemon, change the vault, wait until OCR has started, kill it at a
random moment. After the rounds: run it to the end, restart it once more, and compare.
Prints: kills that caught a worker running, workers that outlived their daemon, doubled
items, whether the index equals a clean index of the same vault, what the last restart
embedded, and the restart-to-idle time against the clean index's time (the baseline, same
run). tests/test_kill.py runs three of these rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from daemon_bench import Daemon, pct, screenshot
from vaultlens.config import Config
from vaultlens.workspace import open_workspace

Items = list[tuple[str, str, int | None, int | None, str]]


def children(pid: int) -> set[int]:
    """Every process whose parent is ``pid`` (the OCR worker, PDF readers)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def items(catalog: Path) -> Items:
    with sqlite3.connect(catalog) as conn:
        return sorted(conn.execute(
            "SELECT files.path, items.kind, items.start_line, items.page, items.content_hash"
            " FROM items JOIN files ON files.id = items.file_id").fetchall())


def make_vault(root: Path, notes: int = 40) -> Path:
    (root / "Attachments").mkdir(parents=True)
    for i in range(notes):
        (root / f"Note {i}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(
            f"Paragraph {j} of note {i} on harbour {i * 5 + j}." for j in range(3)) + "\n")
    for i in range(3):
        (root / "Attachments" / f"Shot {i}.png").write_bytes(screenshot(f"READING {i}"))
        (root / f"Shots {i}.md").write_text(f"# Shots {i}\n\n![[Shot {i}.png]]\n")
    return root


def change(vault: Path, rng: random.Random, n: int) -> None:
    """One burst of edits: a note written, one rewritten, a screenshot pasted, one deleted."""
    (vault / f"New {n}.md").write_text(f"# New {n}\n\nFresh note {n} about tide {n * 3}.\n")
    notes = sorted(vault.glob("Note *.md"))
    target = rng.choice(notes)
    target.write_text(target.read_text() + f"\nEdited in round {n}.\n")
    (vault / "Attachments" / f"Pasted {n}.png").write_bytes(screenshot(f"GAUGE {n * 7}"))
    (vault / f"Paste {n}.md").write_text(f"# Paste {n}\n\n![[Pasted {n}.png]]\n")
    if len(notes) > 5:
        rng.choice(notes).unlink()


@dataclass
class Round:
    workers: int  # child processes running at the kill
    orphans: int  # ... still alive 10 s after it


def kill_round(vault: Path, data: Path, rng: random.Random, n: int) -> Round:
    daemon = Daemon(vault, data)
    stop = threading.Event()

    def searching() -> None:
        while not stop.is_set():
            try:
                daemon.search("harbour tide gauge")
            except OSError:
                time.sleep(0.05)  # not up yet, or killed under it

    searcher = threading.Thread(target=searching)
    searcher.start()
    change(vault, rng, n)
    deadline = time.monotonic() + 60
    while not children(daemon.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # until OCR has started: the kill should have a worker to orphan
    time.sleep(rng.uniform(0.0, 1.5))  # then somewhere in the indexing
    workers = children(daemon.proc.pid)
    os.kill(daemon.proc.pid, signal.SIGKILL)
    daemon.proc.wait()
    stop.set()
    searcher.join()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    return Round(len(workers), sum(alive(p) for p in workers))


@dataclass
class Outcome:
    doubled: int
    equal_to_clean: bool
    integrity: str
    restart_embedded: int
    restart_indexed: int
    recover_seconds: float  # the first restart after the kills, until idle
    clean_seconds: float  # a clean index of the same vault (the baseline)


def finish(vault: Path, data: Path, clean: Path) -> Outcome:
    start = time.perf_counter()
    daemon = Daemon(vault, data)
    try:
        daemon.wait_ready()
        daemon.wait_idle()
        recover = time.perf_counter() - start
    finally:
        daemon.stop()
    daemon = Daemon(vault, data)  # a restart after a clean stop: nothing to do
    try:
        daemon.wait_ready()
        daemon.wait_idle()
        last = daemon.call("/api/status")["last_run"]
    finally:
        daemon.stop()
    got = items(data / "catalog.sqlite")
    start = time.perf_counter()
    ws = open_workspace(Config(vault=vault, data_dir=clean, model="minilm"), writer=True)
    try:
        ws.update()
    finally:
        ws.close()
    clean_seconds = time.perf_counter() - start
    with sqlite3.connect(data / "catalog.sqlite") as conn:
        integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    return Outcome(len(got) - len(set(got)), got == items(clean / "catalog.sqlite"), integrity,
                   int(last["embedded"]), int(last["indexed"]), recover, clean_seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="vaultlens-faults-") as tmp:
        root = Path(tmp)
        vault = make_vault(root / "vault")
        rounds = [kill_round(vault, root / "data", rng, n) for n in range(args.rounds)]
        out = finish(vault, root / "data", root / "clean")
    caught = sum(1 for r in rounds if r.workers)
    print(f"{args.rounds} SIGKILLs of a live daemon (seed {args.seed})")
    print(f"  kills with a worker running      {caught}/{args.rounds}")
    print(f"  workers alive 10 s after a kill  {sum(r.orphans for r in rounds)}")
    print(f"  doubled items                    {out.doubled}")
    print(f"  equal to a clean index           {out.equal_to_clean}")
    print(f"  integrity_check                  {out.integrity}")
    print(f"  a clean restart then: indexed {out.restart_indexed}, embedded "
          f"{out.restart_embedded}")
    ratio = out.recover_seconds / out.clean_seconds
    print(f"  restart after the kills to idle  {out.recover_seconds:.1f} s; a clean index of "
          f"the same vault {out.clean_seconds:.1f} s (x{ratio:.2f})")
    print(f"  (p50 workers at a kill: {pct([r.workers for r in rounds], 50):.0f})")


if __name__ == "__main__":
    main()
