"""Measure search against labelled queries: vaultlens and four baselines over the same index.

The query format is the one of ``../shared/eval/README.md``: one JSON object per line with
``id``, ``vault``, ``query``, ``category`` and a ``target`` that is an image (a vault path), a PDF
page (a path and a 1-based page) or a paragraph (a note path and 1-based inclusive lines). A hit
for an image target is any result with that path; for a page target, a result with that path and
page; for a paragraph target, a note result with that path whose lines overlap the target's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from vaultlens.config import Config
from vaultlens.errors import VaultlensError
from vaultlens.extract.documents import ItemKind
from vaultlens.search.hits import Hit
from vaultlens.search.keywords import fts_query, fts_tokens
from vaultlens.search.kinds import HitKind
from vaultlens.search.searcher import Searcher

Ranker = Callable[[str, int], list[Hit]]
DEPTH = 10  # results looked at per query: top-10 and MRR@10
RRF_K = 60  # the straightforward pipeline's reciprocal-rank constant
RRF_DEPTH = 100  # how deep each of its two lists is read before fusing
BASELINES = ("filename", "keyword", "vector", "rrf")
SINGLE = ("keyword", "vector")  # vaultlens's own signals, each alone


class EvalError(VaultlensError, ValueError):
    """The queries file cannot be used: the message names the file, the line and the reason."""


@dataclass(frozen=True)
class Target:
    kind: str  # image | page | paragraph
    path: str
    lines: tuple[int, int] | None = None
    page: int | None = None


@dataclass(frozen=True)
class Query:
    id: str
    vault: str
    text: str
    category: str
    target: Target


def load_queries(path: Path) -> list[Query]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path}: cannot read the queries ({exc})") from exc
    queries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            t = d["target"]
            lines_ = t.get("lines")
            if t["kind"] not in ("image", "page", "paragraph"):
                raise ValueError(f"target kind {t['kind']!r} is not image, page or paragraph")
            if t["kind"] == "paragraph" and not (
                    isinstance(lines_, list) and len(lines_) == 2
                    and all(isinstance(n, int) for n in lines_)):
                raise ValueError("a paragraph target needs lines: [first, last]")
            page = t.get("page")
            if t["kind"] == "page" and not (isinstance(page, int) and page >= 1):
                raise ValueError("a page target needs page: a number from 1")
            target = Target(t["kind"], str(t["path"]),
                            (lines_[0], lines_[1]) if t["kind"] == "paragraph" else None,
                            page if t["kind"] == "page" else None)
            queries.append(Query(str(d["id"]), str(d["vault"]), str(d["query"]),
                                 str(d["category"]), target))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EvalError(f"{path}:{number}: not a labelled query ({exc!s})") from exc
    return queries


def is_hit(hit: Hit, target: Target) -> bool:
    if hit.path != target.path:
        return False
    if target.kind == "image":
        return True
    if target.kind == "page":
        return hit.page == target.page
    if hit.kind != HitKind.NOTE or hit.line is None or target.lines is None:
        return False
    end = hit.end_line if hit.end_line is not None else hit.line
    return hit.line <= target.lines[1] and target.lines[0] <= end


def rank_of(hits: Sequence[Hit], target: Target) -> int | None:
    """1-based rank of the first hit that matches, or None."""
    return next((n for n, h in enumerate(hits, start=1) if is_hit(h, target)), None)


def figures(ranks: Sequence[int | None]) -> dict[str, float | int]:
    n = len(ranks)

    def within(k: int) -> float:
        return round(sum(1 for r in ranks if r is not None and r <= k) / n, 3) if n else 0.0

    mrr = round(sum(1.0 / r for r in ranks if r is not None) / n, 3) if n else 0.0
    return {"top1": within(1), "top3": within(3), "top10": within(10), "mrr": mrr, "n": n}


def summarise(queries: Sequence[Query], ranks: Sequence[int | None]) -> dict[str, Any]:
    categories = sorted({q.category for q in queries})
    return {
        "overall": figures(ranks),
        "by_category": {c: figures([r for q, r in zip(queries, ranks, strict=True)
                                    if q.category == c]) for c in categories},
    }


# baselines ----------------------------------------------------------------------------------
_WORD = re.compile(r"\w+", re.UNICODE)


def filename_ranker(searcher: Searcher) -> Ranker:
    """Files ranked by how many query words their name holds (what a file finder does). A note
    hit spans the whole note."""
    files = searcher.catalog.file_spans()
    names = [(set(fts_tokens(" ".join(_WORD.findall(PurePosixPath(p).stem)))), p, i, s, e)
             for p, i, s, e in files]

    def rank(query: str, k: int) -> list[Hit]:
        words = set(fts_tokens(query))
        scored = [(len(words & name), -len(name), p, i, s, e) for name, p, i, s, e in names]
        scored = [x for x in scored if x[0] > 0]
        scored.sort(key=lambda x: (-x[0], -x[1], x[2]))
        hits = []
        for count, _, _, item_id, start, end in scored[:k]:
            hit = searcher.hit(item_id, float(count), "")
            if hit is not None:
                hit.line, hit.end_line = start, end
                hits.append(hit)
        return hits

    return rank


def keyword_ids(searcher: Searcher, query: str, k: int) -> list[int]:
    """Plain BM25 over every item's words (any of the query's words), FTS5's default weights."""
    match = fts_query(fts_tokens(query))
    if match is None:
        return []
    return list(searcher.catalog.keyword_index.bm25(match, k))


def vector_ids(searcher: Searcher, query: str, k: int) -> list[int]:
    """Nearest vectors to the query's, whatever its language."""
    ids, _ = searcher.vectors.search(searcher.embedder.embed_texts([query], "query")[0], k)
    return [int(i) for i in ids]


def rrf_ids(searcher: Searcher, query: str, k: int) -> list[int]:
    """The straightforward pipeline of ../shared/eval/README.md over this index: BM25 and the
    text model's cosine, fused by equal-weight reciprocal rank (k = 60), one flat list."""
    fused: dict[int, float] = {}
    for ranked in (keyword_ids(searcher, query, RRF_DEPTH),
                   vector_ids(searcher, query, RRF_DEPTH)):
        for n, item_id in enumerate(ranked, start=1):
            fused[item_id] = fused.get(item_id, 0.0) + 1.0 / (RRF_K + n)
    return sorted(fused, key=lambda i: (-fused[i], i))[:k]


def ids_ranker(searcher: Searcher, ids: Callable[[Searcher, str, int], list[int]]) -> Ranker:
    """Items ranked by ``ids``, as hits (an item that cannot be shown is left out)."""
    def rank(query: str, k: int) -> list[Hit]:
        return [h for i in ids(searcher, query, k)
                if (h := searcher.hit(i, 0.0, query)) is not None]

    return rank


def target_items(searcher: Searcher, target: Target) -> list[int]:
    """The items that count as the target: an image's, a page's, or the note's paragraphs
    that overlap the target's lines."""
    row = searcher.catalog.files().get(target.path)
    if row is None:
        return []
    out = []
    for i in searcher.catalog.item_ids(row.id):
        item = searcher.catalog.item(i)
        if item is None:
            continue
        page = target.kind == "page" and item["page"] == target.page
        start, end = item["start_line"], item["end_line"]
        lines = (target.kind == "paragraph" and target.lines is not None
                 and item["kind"] == ItemKind.SECTION and start is not None and end is not None
                 and start <= target.lines[1] and target.lines[0] <= end)
        if target.kind == "image" or page or lines:
            out.append(i)
    return out


def explained(searcher: Searcher, q: Query, hits: Sequence[Hit]) -> dict[str, Any]:
    """Why the first three hits rank where they do, and where the target's items stood."""
    top = [h.id for h in hits[:3]]
    target = target_items(searcher, q.target)
    why = searcher.explain(q.text, top + target, DEPTH, hits=hits)
    return {"top": [{"where": _where(h), **why[h.id]} for h in hits[:3]],
            "target": [{"id": i, **why[i]} for i in target]}


def evaluate(searcher: Searcher, queries: Sequence[Query], explain: bool = False
             ) -> dict[str, Any]:
    """Figures for vaultlens and each baseline, plus every query's rank under each (and,
    with ``explain``, how its top hits and its target were scored)."""
    rankers: dict[str, Ranker] = {
        "vaultlens": lambda q, k: searcher.search(q, k),
        "filename": filename_ranker(searcher),
        "keyword": ids_ranker(searcher, keyword_ids),
        "vector": ids_ranker(searcher, vector_ids),
        "rrf": ids_ranker(searcher, rrf_ids),
    }
    ranks: dict[str, list[int | None]] = {}
    tops: dict[str, list[str]] = {}
    whys: list[dict[str, Any]] = []
    for name, ranker in rankers.items():
        ranks[name], tops[name] = [], []
        for q in queries:
            hits = ranker(q.text, DEPTH)
            ranks[name].append(rank_of(hits, q.target))
            tops[name].append(_where(hits[0]) if hits else "")
            if explain and name == "vaultlens":
                whys.append(explained(searcher, q, hits))
    out: dict[str, Any] = {
        "vaultlens": summarise(queries, ranks["vaultlens"]),
        "baselines": {b: summarise(queries, ranks[b]) for b in BASELINES},
        "queries": [{"id": q.id, "category": q.category, "query": q.text,
                     "rank": ranks["vaultlens"][n], "top": tops["vaultlens"][n],
                     "baselines": {b: ranks[b][n] for b in BASELINES},
                     **({"explain": whys[n]} if explain else {})}
                    for n, q in enumerate(queries)],
    }
    out["gaps"] = gaps(out)
    return out


def evaluate_vault(cfg: Config, queries: Sequence[Query], explain: bool = False
                   ) -> dict[str, Any]:
    """Bring the vault's index up to date (a warm run embeds nothing), then :func:`evaluate`."""
    from vaultlens.workspace import open_workspace

    ws = open_workspace(cfg, writer=True)
    try:
        ws.update()
        return evaluate(ws.searcher(), queries, explain)
    finally:
        ws.close()


def _where(hit: Hit) -> str:
    if hit.kind == HitKind.NOTE:
        return f"{hit.path}:{hit.line}"
    return f"{hit.path}" + (f" page {hit.page}" if hit.page else "")


def merge(results: Sequence[tuple[Sequence[Query], dict[str, Any]]]) -> dict[str, Any]:
    """One report over several vaults' runs (each query belongs to one vault)."""
    queries = [q for qs, _ in results for q in qs]
    lists = [r["queries"] for _, r in results]
    rows = [row for rs in lists for row in rs]
    out: dict[str, Any] = {
        "vaultlens": summarise(queries, [row["rank"] for row in rows]),
        "baselines": {b: summarise(queries, [row["baselines"][b] for row in rows])
                      for b in BASELINES},
        "queries": rows,
    }
    out["gaps"] = gaps(out)
    return out


def gaps(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per category (and overall), vaultlens's top-1 and top-3 minus the better of the keyword
    and the vector baseline's: below zero, vaultlens ranks worse than one of its own signals
    does alone."""
    def gap(ours: dict[str, Any], singles: list[dict[str, Any]]) -> dict[str, float]:
        return {k: round(ours[k] - max(s[k] for s in singles), 3) for k in ("top1", "top3")}

    base = result["baselines"]
    out = {c: gap(f, [base[b]["by_category"][c] for b in SINGLE])
           for c, f in result["vaultlens"]["by_category"].items()}
    out["overall"] = gap(result["vaultlens"]["overall"], [base[b]["overall"] for b in SINGLE])
    return out


def report(result: dict[str, Any]) -> str:
    """The figures as a table, the gap to the best single signal, then the queries vaultlens
    misses in its top 3."""
    systems = [("vaultlens", result["vaultlens"]),
               *((f"  {b}", s) for b, s in result["baselines"].items())]
    categories = sorted(result["vaultlens"]["by_category"])
    lines = [f"{'':<12}{'n':>4} {'top1':>6} {'top3':>6} {'top10':>6} {'mrr':>6}   "
             + "  ".join(f"{c + ' @1/@3':>16}" for c in categories)]
    for name, s in systems:
        o = s["overall"]
        per = "  ".join(f"{s['by_category'][c]['top1']:>11.2f}/{s['by_category'][c]['top3']:.2f}"
                        for c in categories)
        lines.append(f"{name:<12}{o['n']:>4} {o['top1']:>6.2f} {o['top3']:>6.2f} "
                     f"{o['top10']:>6.2f} {o['mrr']:>6.2f}   {per}")
    g = gaps(result)
    per = "  ".join(f"{g[c]['top1']:>+11.2f}/{g[c]['top3']:+.2f}" for c in categories)
    lines.append(f"{'gap to best':<16} {g['overall']['top1']:>+6.2f} {g['overall']['top3']:>+6.2f}"
                 f"{'':>14}   {per}")
    worse = [c for c in categories if g[c]["top3"] < 0]
    if worse:
        lines.append("below its best single signal (keyword or vector alone) at top-3: "
                     + ", ".join(worse))
    misses = [q for q in result["queries"] if q["rank"] is None or q["rank"] > 3]
    if misses:
        lines.append(f"\nmissed in the top 3 ({len(misses)}):")
    for q in misses:
        rank = q["rank"] or "-"
        lines.append(f"  {q['id']:<12} {q['category']:<9} rank {rank:<3} {q['query'][:60]}"
                     f"  (top: {q['top']})")
    return "\n".join(lines)
