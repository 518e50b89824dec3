"""vaultlens eval: the labelled-query format, hit rules, figures, and the command's JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from indexing import VAULT
from vaultlens.cli import main
from vaultlens.evaluate import Target, figures, is_hit, load_queries
from vaultlens.search.hits import Hit

MakeVault = Callable[[dict[str, str | bytes]], Path]


def hit(kind: str, path: str, line: int | None = None, end: int | None = None,
        page: int | None = None) -> Hit:
    return Hit(id=1, kind=kind, path=path, line=line, end_line=end, page=page, score=1.0,
               text="")


def test_hit_rules() -> None:
    image = Target("image", "Attachments/a.png")
    assert is_hit(hit("image", "Attachments/a.png"), image)
    assert not is_hit(hit("image", "Attachments/b.png"), image)
    para = Target("paragraph", "Notes/x.md", (12, 15))
    assert is_hit(hit("note", "Notes/x.md", 10, 12), para)  # overlaps at 12
    assert is_hit(hit("note", "Notes/x.md", 15, 20), para)
    assert not is_hit(hit("note", "Notes/x.md", 16, 20), para)
    assert not is_hit(hit("note", "Notes/y.md", 12, 12), para)
    assert not is_hit(hit("image", "Notes/x.md"), para)
    page = Target("page", "Decks/a.pdf", page=14)
    assert is_hit(hit("pdf", "Decks/a.pdf", page=14), page)
    assert not is_hit(hit("pdf", "Decks/a.pdf", page=13), page)
    assert not is_hit(hit("pdf", "Decks/b.pdf", page=14), page)
    assert not is_hit(hit("note", "Decks/a.pdf", 14, 14), page)  # a line is not a page


def test_figures() -> None:
    f = figures([1, 2, None, 5])
    assert f == {"top1": 0.25, "top3": 0.5, "top10": 0.75, "mrr": round((1 + 0.5 + 0.2) / 4, 3),
                 "n": 4}


@pytest.mark.parametrize(("line", "why"), [
    ("{nope", "not a labelled query"),
    ('{"id": "a", "vault": "v", "query": "q", "category": "c"}', "target"),
    ('{"id": "a", "vault": "v", "query": "q", "category": "c", "target": {"kind": "paragraph",'
     ' "path": "x.md"}}', "lines"),
    ('{"id": "a", "vault": "v", "query": "q", "category": "c", "target": {"kind": "page",'
     ' "path": "x.pdf", "page": 0}}', "page"),
    ('{"id": "a", "vault": "v", "query": "q", "category": "c", "target": {"kind": "slide",'
     ' "path": "x.pdf"}}', "slide"),
])
def test_bad_query_files_name_the_line(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "ok", "vault": "v", "query": "q", "category": "c", "target": '
                    '{"kind": "image", "path": "a.png"}}\n\n' + line + "\n")
    from vaultlens.evaluate import EvalError

    with pytest.raises(EvalError, match=rf"q.jsonl:3: .*{why}"):
        load_queries(path)


@pytest.mark.slow
def test_eval_command_json(make_vault: MakeVault, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    vault = make_vault(VAULT)
    queries = tmp_path / "dev.jsonl"
    rows = [
        {"id": "1", "vault": vault.name, "query": "storm over the pier at night",
         "category": "paragraph",
         "target": {"kind": "paragraph", "path": "Trips/Pier.md", "lines": [3, 3]}},
        {"id": "2", "vault": vault.name, "query": "quarterly zebra metrics", "category": "ocr",
         "target": {"kind": "image", "path": "Attachments/board.png"}},
        {"id": "3", "vault": vault.name, "query": "keep sync off a folder",
         "category": "paragraph",
         "target": {"kind": "paragraph", "path": "Sync.md", "lines": [3, 4]}},
        {"id": "4", "vault": "another-vault", "query": "not this vault's", "category": "ocr",
         "target": {"kind": "image", "path": "x.png"}},
    ]
    queries.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    args = ["eval", "--vault", str(vault), "--data-dir", str(tmp_path / "data"),
            "--model", "minilm", "--queries", str(queries)]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    keys = {"top1", "top3", "top10", "mrr", "n"}
    assert set(result["vaultlens"]) >= {"overall", "by_category"}
    assert set(result["vaultlens"]["overall"]) == keys
    assert result["vaultlens"]["overall"]["n"] == 3  # the other vault's query is left out
    assert set(result["vaultlens"]["by_category"]) == {"ocr", "paragraph"}
    assert set(result["baselines"]) == {"filename", "keyword", "vector", "rrf"}
    for b in result["baselines"].values():
        assert set(b["overall"]) == keys and b["overall"]["n"] == 3
    assert result["vaultlens"]["overall"]["top3"] == 1.0  # all three are easy
    for category, gap in result["gaps"].items():  # vaultlens less the best of its signals
        figures_ = (result["vaultlens"]["overall"] if category == "overall"
                    else result["vaultlens"]["by_category"][category])
        best = max((result["baselines"][b]["overall"] if category == "overall" else
                    result["baselines"][b]["by_category"][category])["top3"]
                   for b in ("keyword", "vector"))
        assert gap["top3"] == pytest.approx(figures_["top3"] - best)
    first = result["queries"][0]["explain"]  # how its hits and its target were scored
    assert first["top"][0]["candidate"] and first["top"][0]["rank"] >= 1
    assert first["target"] and all(t["candidate"] for t in first["target"])
    assert {"bm25", "coverage", "cosine", "vector_weight", "score"} <= set(first["target"][0])
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "vaultlens" in text and "filename" in text and "paragraph" in text
    assert "gap to best" in text


def test_eval_without_queries_for_the_vault(make_vault: MakeVault, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    vault = make_vault({"a.md": "# A\n\nText.\n"})
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "1", "vault": "elsewhere", "query": "q", "category": "c", '
                       '"target": {"kind": "image", "path": "a.png"}}\n')
    code = main(["eval", "--vault", str(vault), "--data-dir", str(tmp_path / "d"),
                 "--queries", str(queries)])
    assert code == 2 and "no queries for the vault" in capsys.readouterr().err


def test_page_targets_load(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "p", "vault": "v", "query": "q", "category": "pagetext", "target": '
                    '{"kind": "page", "path": "Decks/a.pdf", "page": 3}}\n')
    (q,) = load_queries(path)
    assert q.target == Target("page", "Decks/a.pdf", page=3)


def test_rrf_baseline_fuses_by_reciprocal_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal-weight RRF, k = 60: an item in both lists beats one first in a single list; ties
    in one list's rank fall to the list order of the ranks (1/61 > 1/62 > 1/63)."""
    from vaultlens import evaluate

    monkeypatch.setattr(evaluate, "keyword_ids", lambda s, q, k: [7, 8, 9])
    monkeypatch.setattr(evaluate, "vector_ids", lambda s, q, k: [8, 5])
    assert evaluate.rrf_ids(None, "q", 10) == [8, 7, 5, 9]  # type: ignore[arg-type]
    assert evaluate.rrf_ids(None, "q", 2) == [8, 7]  # type: ignore[arg-type]
