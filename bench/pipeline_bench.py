"""Cold indexing with the bundled stack, against the code of another commit in the same run.

    .venv/bin/python bench/pipeline_bench.py [--baseline 343ff94] [--vault ...] [--pastes 10]
        [--model e5-small] [--baseline-model minilm]

Each run indexes the vault into an empty data dir (the text model given + OCR):
  - baseline: `vaultlens index` of the commit given, from a git worktree of it (its own
    server/ first on PYTHONPATH), on all cores;
  - this code: `vaultlens index`, on all cores, then pinned to one core (`taskset -c 0` and
    `--threads 1`): how it scales;
  - this code's daemon: `vaultlens serve` from launch until /api/status says idle after its
    first run (the daemon should match the CLI);
  - pastes during a cold index: the daemon indexes the vault from scratch while a screenshot
    (a made-up word drawn into it) and a note embedding it are written every few seconds; time
    from the write until a search for the word returns the screenshot. Pastes begin when the
    cold index has written its first file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from daemon_bench import Daemon, made_up_word, pct, screenshot  # noqa: E402

DEFAULT_VAULT = HERE.parent.parent / "shared" / "vaults" / "obsidian-help-en"


def cold_index(vault: Path, code: Path | None, model: str, pin: bool = False
               ) -> tuple[float, dict[str, Any]]:
    """Wall seconds of a cold `vaultlens index`, and its JSON summary."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code / "server")
    with tempfile.TemporaryDirectory() as data:
        cmd = [sys.executable, "-m", "vaultlens", "index", "--vault", str(vault),
               "--data-dir", data, "--model", model, "--json"]
        if pin:
            cmd = ["taskset", "-c", "0", *cmd, "--threads", "1"]
        start = time.perf_counter()
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        return time.perf_counter() - start, json.loads(out)


def daemon_cold(vault: Path, pastes: int, model: str) -> tuple[float, list[float]]:
    """Seconds from launch to idle after a cold index; paste → searchable times meanwhile."""
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "vault"
        shutil.copytree(vault, work)
        (work / "Pasted").mkdir()
        daemon = Daemon(work, Path(tmp) / "data", model=model)
        took: list[float] = []
        try:
            daemon.wait_ready()
            # pastes begin once the cold index is under way (its first file written); one in
            # the daemon's first second or two also waits for the OCR models to load
            while pastes and daemon.call("/api/status")["progress"]["done"] < 1:
                time.sleep(0.1)
            for i in range(pastes):
                if daemon.call("/api/status")["state"] == "idle":
                    break
                word = made_up_word(rng)
                name = f"Pasted image 2025010112{i:04d}.png"
                start = time.perf_counter()
                (work / "Pasted" / name).write_bytes(screenshot(word))
                (work / "Pasted" / f"Paste {i}.md").write_text(
                    f"# Paste {i}\n\nSee below.\n\n![[{name}]]\n")
                # ten searches a second: a client searching flat out (50/s, each a query
                # embedding) would itself take a core from the paste it waits for
                while not any(r["path"].endswith(name) for r in daemon.search(word)):
                    time.sleep(0.1)
                took.append(time.perf_counter() - start)
                time.sleep(3)
            while daemon.call("/api/status")["state"] != "idle":
                time.sleep(0.2)
            return time.perf_counter() - daemon.started, took
        finally:
            daemon.stop()


def worktree(ref: str, root: Path) -> Path:
    path = root / "baseline"
    subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", str(path),
                    ref], check=True, capture_output=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vault", type=Path, default=DEFAULT_VAULT)
    ap.add_argument("--baseline", default="343ff94", help="the commit to measure against")
    ap.add_argument("--pastes", type=int, default=10)
    ap.add_argument("--model", default="e5-small", help="this code's text model")
    ap.add_argument("--baseline-model", default="minilm", help="the baseline's text model")
    ap.add_argument("--skip", default="", help="comma list of: baseline,one-core,daemon,paste")
    args = ap.parse_args()
    if not args.vault.is_dir():
        sys.exit(f"{args.vault}: no such vault (../shared is needed for the default)")
    skip = set(args.skip.split(","))
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        if "baseline" not in skip:
            base = worktree(args.baseline, Path(tmp))
            try:
                base_s, base_sum = cold_index(args.vault, base, args.baseline_model)
            finally:
                subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force",
                                str(base)], check=False, capture_output=True)
            print(f"baseline {args.baseline} ({args.baseline_model}), CLI cold index, {cores} "
                  f"cores: {base_s:6.1f} s "
                  f"({base_sum['items']} items, timings {base_sum['timings']})")
        new_s, new_sum = cold_index(args.vault, None, args.model)
        print(f"this code ({args.model}), CLI cold index, {cores} cores: {new_s:6.1f} s "
              f"({new_sum['items']} items, timings {new_sum['timings']})")
        if "baseline" not in skip:
            print(f"  this code / baseline: {new_s / base_s:.2f}x")
        if "one-core" not in skip:
            one_s, _ = cold_index(args.vault, None, args.model, pin=True)
            print(f"this code, CLI cold index, 1 core:        {one_s:6.1f} s "
                  f"({cores} cores are {one_s / new_s:.2f}x faster)")
        if "daemon" not in skip:
            d_s, _ = daemon_cold(args.vault, 0, args.model)
            print(f"this code, daemon launch → idle, cold:    {d_s:6.1f} s "
                  f"(daemon / CLI: {d_s / new_s:.2f}x)")
        if "paste" not in skip and args.pastes:
            _, took = daemon_cold(args.vault, args.pastes, args.model)
            if took:
                print(f"paste → searchable during the daemon's cold index, {len(took)} pastes: "
                      f"p50 {pct(took, 50):.2f} s, p95 {pct(took, 95):.2f} s, "
                      f"max {max(took):.2f} s (mean {float(np.mean(took)):.2f} s)")


if __name__ == "__main__":
    main()
