"""Fit the fusion's weights (search/fusion.py) on labelled queries, and judge them on queries
they were not fitted on.

    .venv/bin/python bench/fit_fusion.py [--model minilm] [--extra MORE.jsonl ...]
        [--holdout FRESH.jsonl ...] [--json]

Every query's evidence (its candidates and their signals) is gathered once through the real
searcher, over the shared vaults' indexes; ranking it again under other weights is then pure
arithmetic, so a search of the weights takes seconds. Queries come from ``../shared/eval``
and ``--extra`` files (same format). It prints, per vault and category, top-1 / top-3 / MRR:

- the default weights and each single signal (keyword alone, vector alone, within the same
  candidates; and ``vaultlens eval``'s own keyword and vector baselines);
- 5-fold cross-validated figures (folds stratified by vault and category: each fold's queries
  ranked with weights fitted on the other four) and leave-one-vault-out figures;
- weights fitted on all the queries, the ones to ship;
- ``--holdout`` queries (never fitted on), under the default and the fitted weights.

The search over weights is coordinate ascent on a grid, from the defaults, maximising mean
MRR@10 plus top-3: few parameters, each on a coarse grid, so that a handful of queries cannot
pull a weight to a value only they like.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from vaultlens import config
from vaultlens.evaluate import Query, Target, keyword_ids, load_queries, rank_of, vector_ids
from vaultlens.search.fusion import Evidence, Fusion, FusionWeights
from vaultlens.search.searcher import Grouping, passages, promote, read_query
from vaultlens.workspace import open_workspace

POOL = 50  # what a search for ten hits gathers
DEPTH = 10
GRID: dict[str, list[Any]] = {
    "vector": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    "vector_matched": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    "coverage": [0.0, 0.25, 0.5, 0.75],
    "context": [0.6, 0.75, 0.9, 1.0],
    "lent_rest": [0.0, 0.25, 0.5, 0.75],
    "relative": [False, True],
    "absolute": [False, True],
    "keep_firsts": [0, 2, 3],
}


@dataclass
class Case:
    """One labelled query with everything needed to rank it again."""

    query: Query
    evidence: Evidence
    places: dict[int, tuple[int, str, int, int]]
    items: dict[int, tuple[str, str, int | None, int | None, int | None]]  # kind, path, ...
    baselines: dict[str, int | None]


def hit(item: tuple[str, str, int | None, int | None, int | None], lines: tuple[int, int] | None,
        target: Target) -> bool:
    kind, path, _, _, page = item
    if path != target.path:
        return False
    if target.kind == "image":
        return True
    if target.kind == "page":
        return page == target.page
    if kind != "section" or lines is None or target.lines is None:
        return False
    return lines[0] <= target.lines[1] and target.lines[0] <= lines[1]


def rank(case: Case, scores: dict[int, float], grouping: Grouping,
         fusion: Fusion | None = None) -> int | None:
    ordered = passages(scores, case.places, grouping)
    if fusion is not None:
        ordered = promote(ordered, fusion.firsts(case.evidence), fusion.weights.keep_firsts)
    for n, (_, ids) in enumerate(ordered[:DEPTH], start=1):
        item = case.items[ids[0]]
        lines = None
        if item[0] == "section":
            spans = [case.items[i] for i in ids]
            lines = (min(s[2] or 0 for s in spans), max(s[3] or 0 for s in spans))
        if hit(item, lines, case.query.target):
            return n
    return None


def ranks(cases: Sequence[Case], weights: FusionWeights) -> list[int | None]:
    fusion, grouping = Fusion(weights), Grouping()
    return [rank(c, fusion.combine(c.evidence), grouping, fusion) for c in cases]


def single(cases: Sequence[Case], signal: str) -> list[int | None]:
    """Each case ranked by one signal alone, among the same candidates."""
    grouping = Grouping()
    out = []
    for c in cases:
        values = c.evidence.bm25 if signal == "keyword" else c.evidence.cosine
        out.append(rank(c, {i: v for i, v in values.items() if v > 0}, grouping))
    return out


def figures(rs: Sequence[int | None]) -> dict[str, float]:
    n = max(1, len(rs))
    return {"top1": sum(1 for r in rs if r == 1) / n,
            "top3": sum(1 for r in rs if r is not None and r <= 3) / n,
            "mrr": sum(1 / r for r in rs if r is not None) / n, "n": len(rs)}


def objective(rs: Sequence[int | None]) -> float:
    f = figures(rs)
    return f["mrr"] + f["top3"]


def fit(cases: Sequence[Case], start: FusionWeights, rounds: int = 3) -> FusionWeights:
    """Coordinate ascent over GRID from ``start``; ties keep the current value."""
    best, score = start, objective(ranks(cases, start))
    for _ in range(rounds):
        moved = False
        for name, values in GRID.items():
            for value in values:
                trial = replace(best, **{name: value})
                s = objective(ranks(cases, trial))
                if s > score + 1e-9:
                    best, score, moved = trial, s, True
        if not moved:
            break
    return best


def folds(cases: Sequence[Case], k: int, seed: int = 7) -> list[int]:
    """A fold number for each case, stratified by vault and category."""
    strata: dict[tuple[str, str], list[int]] = defaultdict(list)
    for n, c in enumerate(cases):
        strata[(c.query.vault, c.query.category)].append(n)
    out = [0] * len(cases)
    turn = 0
    for key in sorted(strata):
        members = strata[key]
        random.Random(f"{seed}{key}").shuffle(members)
        for n in members:
            out[n] = turn % k
            turn += 1
    return out


def held_out(cases: Sequence[Case], groups: Sequence[Any], start: FusionWeights
             ) -> tuple[list[int | None], list[FusionWeights]]:
    """Each group's cases ranked with weights fitted on the other groups."""
    out: list[int | None] = [None] * len(cases)
    fitted = []
    for g in sorted(set(groups)):
        train = [c for c, x in zip(cases, groups, strict=True) if x != g]
        w = fit(train, start)
        fitted.append(w)
        test = [n for n, x in enumerate(groups) if x == g]
        for n, r in zip(test, ranks([cases[n] for n in test], w), strict=True):
            out[n] = r
    return out, fitted


def gather(shared: Path, data_dir: Path, model: str, queries: Sequence[Query]) -> list[Case]:
    cases = []
    for vault in sorted({q.vault for q in queries}):
        settings = argparse.ArgumentParser()
        config.add_arguments(settings, ["vault", "data_dir", "model", "ocr"])
        cfg = config.from_args(settings.parse_args([
            "--vault", str(shared / "vaults" / vault), "--data-dir", str(data_dir / vault),
            "--model", model]))
        ws = open_workspace(cfg, writer=True)
        try:
            ws.update()
            searcher = ws.searcher()
            for q in (q for q in queries if q.vault == vault):
                text = read_query(q.text, True, lambda _: False).text
                vector = searcher.query_vector(text)
                ev = searcher.evidence(text, POOL, vector)
                ids = sorted(ev.candidates())
                places = searcher.catalog.section_places(ids)
                items = {}
                for i in ids:
                    row = searcher.catalog.item(i)
                    if row is not None:
                        items[i] = (row["kind"], row["path"], row["start_line"],
                                    row["end_line"], row["page"])
                ev.cosine = {i: c for i, c in ev.cosine.items() if i in items}
                ev.bm25 = {i: s for i, s in ev.bm25.items() if i in items}
                base = {}
                for name, ranker in (("keyword", keyword_ids), ("vector", vector_ids)):
                    hits = [h for i in ranker(searcher, q.text, DEPTH)
                            if (h := searcher.hit(i, 0.0, q.text)) is not None]
                    base[name] = rank_of(hits, q.target)
                cases.append(Case(q, ev, places, items, base))
        finally:
            ws.close()
    return cases


def cached(path: Path | None, key: str, make: Callable[[], list[Case]]) -> list[Case]:
    """``make()``, or what it gave before when ``path`` holds it (the index and the queries
    are the caller's to keep the same)."""
    if path is None:
        return make()
    store = path.with_suffix(f".{key}.pickle")
    if store.exists():
        cases: list[Case] = pickle.loads(store.read_bytes())  # written by this script
        return cases
    cases = make()
    store.write_bytes(pickle.dumps(cases))
    return cases


def table(title: str, cases: Sequence[Case], systems: dict[str, Sequence[int | None]]) -> str:
    groups = sorted({(c.query.vault, c.query.category) for c in cases})
    lines = [f"== {title}", f"{'':<34}" + "".join(f"{name[:18]:>20}" for name in systems)]
    for key in [*groups, ("all", "")]:
        members = [n for n, c in enumerate(cases)
                   if key == ("all", "") or (c.query.vault, c.query.category) == key]
        label = f"{key[0][:20]} {key[1]} ({len(members)})"
        row = f"{label:<34}"
        for rs in systems.values():
            f = figures([rs[n] for n in members])
            row += f"{f['top1']:>8.2f}/{f['top3']:.2f}/{f['mrr']:.2f}"
        lines.append(row)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).parents[1] / ".." / "shared")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/vl-eval"))
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--extra", type=Path, nargs="*", default=[])
    parser.add_argument("--holdout", type=Path, nargs="*", default=[])
    parser.add_argument("--skip-visual", action="store_true",
                        help="leave out visual queries (no text model can answer them)")
    parser.add_argument("--json", type=Path, help="write every query's ranks here")
    parser.add_argument("--cache", type=Path,
                        help="keep the gathered evidence here (pickle) and reuse it")
    args = parser.parse_args()
    files = sorted((args.shared / "eval").glob("*.jsonl")) + list(args.extra)
    queries = [q for f in files for q in load_queries(f)]
    holdout = [q for f in args.holdout for q in load_queries(f)]
    if args.skip_visual:
        queries = [q for q in queries if q.category != "visual"]
    cases = cached(args.cache, "fit",
                   lambda: gather(args.shared, args.data_dir, args.model, queries))
    default = FusionWeights()
    kfold, _ = held_out(cases, folds(cases, 5), default)
    vaults, per_vault = held_out(cases, [c.query.vault for c in cases], default)
    final = fit(cases, default)
    systems: dict[str, Sequence[int | None]] = {
        "default": ranks(cases, default), "5-fold CV": kfold, "leave-vault-out": vaults,
        "fitted (all)": ranks(cases, final),
        "keyword alone": single(cases, "keyword"), "vector alone": single(cases, "vector"),
        "eval keyword": [c.baselines["keyword"] for c in cases],
        "eval vector": [c.baselines["vector"] for c in cases]}
    print(table(f"{args.model}: {len(cases)} queries (top1/top3/MRR)", cases, systems))
    print("\nfitted on all:", {f.name: getattr(final, f.name) for f in fields(final)})
    for vault, w in zip(sorted({c.query.vault for c in cases}), per_vault, strict=True):
        print(f"fitted without {vault}:", {f.name: getattr(w, f.name) for f in fields(w)})
    out: dict[str, Any] = {"model": args.model, "fitted": final.__dict__,
                           "queries": [{"id": c.query.id, "vault": c.query.vault,
                                        "category": c.query.category,
                                        **{name: rs[n] for name, rs in systems.items()}}
                                       for n, c in enumerate(cases)]}
    if holdout:
        fresh = cached(args.cache, "holdout",
                       lambda: gather(args.shared, args.data_dir, args.model, holdout))
        held: dict[str, Sequence[int | None]] = {
            "default": ranks(fresh, default), "fitted": ranks(fresh, final),
            "keyword alone": single(fresh, "keyword"), "vector alone": single(fresh, "vector"),
            "eval keyword": [c.baselines["keyword"] for c in fresh],
            "eval vector": [c.baselines["vector"] for c in fresh]}
        print("\n" + table(f"held-out queries ({len(fresh)}), never fitted on", fresh, held))
        out["holdout"] = [{"id": c.query.id, **{k: v[n] for k, v in held.items()}}
                          for n, c in enumerate(fresh)]
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
