"""SIGKILL a live `vaultlens serve` while files change, screenshots are pasted and searches
run; restart it. Three of bench/fault_bench.py's rounds (the bench runs many): after them
the index equals a clean index of the same vault, nothing is doubled, no OCR or PDF worker
outlives its daemon, and a restart embeds nothing that was done."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import pytest

import fault_bench

pytestmark = pytest.mark.slow


def test_killed_daemons_lose_and_double_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    vault = fault_bench.make_vault(tmp_path / "vault")
    rounds = [fault_bench.kill_round(vault, tmp_path / "data", rng, n) for n in range(3)]
    assert any(r.workers for r in rounds), "no kill caught a worker running"
    assert sum(r.orphans for r in rounds) == 0, "a worker outlived its daemon"
    out = fault_bench.finish(vault, tmp_path / "data", tmp_path / "clean")
    assert out.doubled == 0 and out.equal_to_clean and out.integrity == "ok"
    assert (out.restart_indexed, out.restart_embedded) == (0, 0)
