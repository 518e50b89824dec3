"""Search quality on the shared labelled queries, over the three shared vaults, in one table.

    .venv/bin/python bench/eval_bench.py [--shared ../shared] [--data-dir /tmp/vl-eval] [--json]

Reads every ``*.jsonl`` in ``../shared/eval`` (dev.jsonl: the two help vaults; slides-dev.jsonl:
the slides vault). Indexes each vault first (bundled text model + OCR; the first run takes a
few minutes, later runs reuse the index), then runs ``vaultlens eval``'s measurement for
vaultlens and its four baselines, and prints per-vault and combined figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vaultlens import config
from vaultlens.evaluate import evaluate_vault, load_queries, merge, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[1] / ".." / "shared")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/vl-eval"))
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    queries = [q for f in sorted((args.shared / "eval").glob("*.jsonl")) for q in load_queries(f)]
    runs = []
    for vault in sorted({q.vault for q in queries}):
        mine = [q for q in queries if q.vault == vault]
        settings = argparse.ArgumentParser()
        config.add_arguments(settings, ["vault", "data_dir", "model", "ocr"])
        cfg = config.from_args(settings.parse_args([
            "--vault", str(args.shared / "vaults" / vault),
            "--data-dir", str(args.data_dir / vault), "--model", args.model]))
        result = evaluate_vault(cfg, mine)
        runs.append((mine, result))
        if not args.json:
            print(f"== {vault} ({len(mine)} queries)\n{report(result)}\n")
    combined = merge(runs)
    if args.json:
        json.dump(combined, sys.stdout, ensure_ascii=False, indent=1)
    else:
        print(f"== all vaults ({len(queries)} queries)\n{report(combined)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
