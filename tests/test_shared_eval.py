"""Search quality on the shared labelled queries (skipped when ../shared is absent), with the
model `auto` falls back to: on every vault and category, vaultlens's top-3 is at least the
better of its keyword signal alone and its vector signal alone (evaluate.gaps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import shared_path
from vaultlens.config import Config
from vaultlens.evaluate import evaluate_vault, load_queries

pytestmark = pytest.mark.slow

VAULTS = ["obsidian-help-en", "obsidian-help-zh", "slides-vault"]


@pytest.mark.parametrize("vault", VAULTS)
def test_never_below_its_best_single_signal(vault: str, tmp_path: Path) -> None:
    queries = [q for f in sorted(shared_path("eval").glob("*.jsonl")) for q in load_queries(f)
               if q.vault == vault]
    assert queries, f"no labelled queries for {vault}"
    cfg = Config(vault=shared_path("vaults", vault), data_dir=tmp_path / "data",
                 model="e5-small")
    result = evaluate_vault(cfg, queries)
    # visual queries describe pixels: a text-only model finds their answer only by accident
    # (vector alone has one of the slides' six in its top 3, and the same code kept it in the
    # fused top 3 on some runs and not on others), so that category holds no property of the
    # fusion
    below = {c: g for c, g in result["gaps"].items() if g["top3"] < 0 and c != "visual"}
    assert below == {}, f"{vault}: top-3 below the best single signal in {below}"
    # and the fusion is worth having: better than either signal overall
    assert result["gaps"]["overall"]["top3"] > 0
