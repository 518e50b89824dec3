"""Memory at rest: does the daemon go back down after a cold index?

    .venv/bin/python bench/rest_bench.py [--vault PATH] [--model e5-small] [--pastes 5]
                                         [--after 60] [--baseline COMMIT]

A copy of the vault (the English help vault by default) is served cold with an empty data dir.
The RSS of the daemon and all its child processes (workers) is sampled every half second:
its peak while indexing, at the first idle, and ``--after`` seconds later. Then ``--pastes``
screenshots are pasted (time until each is searchable: the paste after the daemon went back
down). The daemon is stopped and served again on the same data dir (a warm start): RSS once
ready and idle, and ``--after`` seconds later. The figure that matters is the ratio of the
cold daemon's RSS ``--after`` seconds after its first idle to the warm one's (target ≤ 1.25).

``--baseline COMMIT``: the same, in the same run, with the daemon of that commit (a git
worktree of it), on its own copy of the vault. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from daemon_bench import Daemon, made_up_word, pct, screenshot  # noqa: E402
from tree_rss import breakdown, rss_mb  # noqa: E402

# ../shared beside the repository, as the tests find it
HELP_VAULT = Path(__file__).resolve().parents[2] / "shared" / "vaults" / "obsidian-help-en"


class Peak(threading.Thread):
    """The tree's RSS every half second, until stopped: its peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb = pid, 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            self.stop.wait(0.5)


def idle(d: Daemon, deadline: float) -> bool:
    """Wait until the daemon answers with vectors and is idle after a run."""
    while time.monotonic() < deadline:
        try:
            s: dict[str, Any] = d.call("/api/status")
            if not s["indexing"] and s["queue"] == 0 and s["runs"] > 0 and s["vector_search_ready"]:
                return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def pastes(d: Daemon, vault: Path, count: int) -> list[float]:
    """Seconds from each paste (a screenshot and the note placing it) to searchable."""
    rng, took = random.Random(7), []
    (vault / "Attachments").mkdir(exist_ok=True)
    for i in range(count):
        word = made_up_word(rng)
        name = f"Pasted image 2026120801{i:04d}.png"
        start = time.perf_counter()
        (vault / "Attachments" / name).write_bytes(screenshot(word))
        (vault / f"Rest paste {i}.md").write_text(f"# Paste {i}\n\nSee below.\n\n![[{name}]]\n")
        while not any(r["path"].endswith(name) for r in d.search(word)):
            if time.perf_counter() - start > 60:
                break
            time.sleep(0.02)
        took.append(time.perf_counter() - start)
    return took


def sample(label: str, pid: int, out: dict[str, Any]) -> None:
    out[label] = rss_mb(pid)
    out[label + " by process"] = breakdown(pid)


def measure(vault: Path, data: Path, code: Path | None, args: argparse.Namespace
            ) -> dict[str, Any]:
    res: dict[str, Any] = {}
    d = Daemon(vault, data, code, model=args.model)
    peak = Peak(d.proc.pid)
    peak.start()
    try:
        if not idle(d, time.monotonic() + args.max_minutes * 60):
            res["error"] = "not idle in time"
            return res
        res["cold index s"] = time.perf_counter() - d.started
        sample("cold: at first idle", d.proc.pid, res)
        time.sleep(args.after)
        peak.stop.set()
        res["cold: peak"] = peak.peak_mb
        sample(f"cold: {args.after:.0f} s after idle", d.proc.pid, res)
        if args.pastes:
            res["paste s"] = pastes(d, vault, args.pastes)
    finally:
        peak.stop.set()
        d.stop()
    d = Daemon(vault, data, code, model=args.model)
    try:
        if not idle(d, time.monotonic() + args.max_minutes * 60):
            res["error"] = "warm start not idle in time"
            return res
        res["warm start s"] = time.perf_counter() - d.started
        sample("warm: at idle", d.proc.pid, res)
        time.sleep(args.after)
        sample(f"warm: {args.after:.0f} s after idle", d.proc.pid, res)
    finally:
        d.stop()
    res["ratio"] = res[f"cold: {args.after:.0f} s after idle"] / res[
        f"warm: {args.after:.0f} s after idle"]
    return res


def show(label: str, res: dict[str, Any]) -> None:
    print(f"\n== {label}")
    if "error" in res:
        print(f"  {res['error']}")
    for key, value in res.items():
        if key.endswith("by process"):
            print(f"    {'  '.join(f'{n} {mb:.0f}' for n, mb in value)}")
        elif key == "paste s":
            print(f"  paste → searchable after the rest, {len(value)} pastes: "
                  f"p50 {pct(value, 50):.2f} s, p95 {pct(value, 95):.2f} s")
        elif key == "ratio":
            print(f"  ratio cold/warm, RSS after the rest: {value:.2f} (target ≤ 1.25)")
        elif key.endswith(" s"):
            print(f"  {key}: {value:.1f}")
        elif key != "error":
            print(f"  {key}: {value:.0f} MB (daemon and its children)")


def run(label: str, root: Path, code: Path | None, args: argparse.Namespace) -> None:
    vault, data = root / f"{label}-vault", root / f"{label}-data"
    shutil.copytree(args.vault, vault)
    show(label, measure(vault, data, code, args))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vault", type=Path, default=HELP_VAULT)
    ap.add_argument("--model", default="e5-small")
    ap.add_argument("--after", type=float, default=60.0,
                    help="seconds after the first idle of the second sample")
    ap.add_argument("--pastes", type=int, default=5)
    ap.add_argument("--max-minutes", type=float, default=15.0)
    ap.add_argument("--baseline", help="a commit whose daemon is measured too, in the same run")
    args = ap.parse_args()
    repo = HERE.parent
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = None
        if args.baseline:
            base = root / "baseline"
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(base),
                            args.baseline], check=True, capture_output=True)
        try:
            run("this code", root, None, args)
            if base is not None:
                run(f"baseline {args.baseline}", root, base, args)
        finally:
            if base is not None:
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force",
                                str(base)], check=False, capture_output=True)


if __name__ == "__main__":
    main()
