"""vaultlens eval: the labelled-query format, hit rules, figures, and the command's JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from test_indexer import VAULT
from vaultlens.cli import main
from vaultlens.evaluate import Target, figures, is_hit, load_queries
from vaultlens.search.hits import Hit

MakeVault = Callable[[dict[str, str | bytes]], Path]


def hit(kind: str, path: str, line: int | None = None, end: int | None = None) -> Hit:
    return Hit(id=1, kind=kind, path=path, line=line, end_line=end, page=None, score=1.0,
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


def test_figures() -> None:
    f = figures([1, 2, None, 5])
    assert f == {"top1": 0.25, "top3": 0.5, "top10": 0.75, "mrr": round((1 + 0.5 + 0.2) / 4, 3),
                 "n": 4}


@pytest.mark.parametrize(("line", "why"), [
    ("{nope", "not a labelled query"),
    ('{"id": "a", "vault": "v", "query": "q", "category": "c"}', "target"),
    ('{"id": "a", "vault": "v", "query": "q", "category": "c", "target": {"kind": "paragraph",'
     ' "path": "x.md"}}', "lines"),
])
def test_bad_query_files_name_the_line(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "ok", "vault": "v", "query": "q", "category": "c", "target": '
                    '{"kind": "image", "path": "a.png"}}\n\n' + line + "\n")
    from vaultlens.evaluate import EvalError

    with pytest.raises(EvalError, match=rf"q.jsonl:3: .*{why}"):
        load_queries(path)


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
    assert set(result["baselines"]) == {"filename", "keyword", "vector"}
    for b in result["baselines"].values():
        assert set(b["overall"]) == keys and b["overall"]["n"] == 3
    assert result["vaultlens"]["overall"]["top3"] == 1.0  # all three are easy
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "vaultlens" in text and "filename" in text and "paragraph" in text


def test_eval_without_queries_for_the_vault(make_vault: MakeVault, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    vault = make_vault({"a.md": "# A\n\nText.\n"})
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "1", "vault": "elsewhere", "query": "q", "category": "c", '
                       '"target": {"kind": "image", "path": "a.png"}}\n')
    code = main(["eval", "--vault", str(vault), "--data-dir", str(tmp_path / "d"),
                 "--queries", str(queries)])
    assert code == 2 and "no queries for the vault" in capsys.readouterr().err
