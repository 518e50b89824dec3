"""The one exclusion policy (vault/policy.py) and the one note reader (vault/notefile.py):
each rule refuses what it names and nothing else, a slow rule fails closed, a change of
app.json is seen by the next question, and the scan and the watcher give the same answer
because they ask the same object."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from watchfiles import Change

from vaultlens.config import Config
from vaultlens.serve.watcher import sort_events
from vaultlens.vault.notefile import MAX_NOTE_BYTES, NoteTooLarge, note_bytes
from vaultlens.vault.policy import EXCLUDED_BY_RULE, EXCLUDED_NAME, Policy
from vaultlens.vault.scan import scan_with
from vaultlens.vault.vault import LINK_OUT, NOT_REGULAR, Problem, Refused, VaultFile, open_file
from vaultlens.workspace import open_workspace

MakeVault = Callable[[dict[str, str | bytes]], Path]


def app_json(root: Path, filters: list[str]) -> None:
    (root / ".obsidian").mkdir(exist_ok=True)
    (root / ".obsidian" / "app.json").write_text(json.dumps({"userIgnoreFilters": filters}))


def test_a_glob_refuses_what_it_names_with_the_reason(make_vault: MakeVault) -> None:
    root = make_vault({"Private/diary.md": "x", "Public/a.md": "x", "b.gif": b"x"})
    policy = Policy(root, ".obsidian", ["Private/**", "*.gif"])
    assert policy.refusal("Private/diary.md") == EXCLUDED_BY_RULE
    assert policy.refusal("b.gif") == EXCLUDED_BY_RULE
    assert policy.refusal("Public/a.md") is None
    assert policy.file("Private/diary.md") is None  # passed over in silence, as the scan does
    assert isinstance(policy.file("Public/a.md"), VaultFile)


def test_names_are_refused_wherever_they_are(make_vault: MakeVault) -> None:
    root = make_vault({"a.md": "x"})
    policy = Policy(root, "_config")
    for rel in (".trash/x.md", "sub/.hidden.md", "node_modules/p/r.md", "_config/app.json",
                "deep/_config/x.md", ".vaultlens/catalog.sqlite"):
        assert policy.refusal(rel) == EXCLUDED_NAME, rel
    assert policy.refusal(".obsidian.md") == EXCLUDED_NAME
    assert policy.refusal("a.md") is None


def test_a_regex_and_a_prefix_from_app_json_refuse(make_vault: MakeVault) -> None:
    root = make_vault({"a.md": "x"})
    app_json(root, ["/\\.tmp\\.md$/", "Archive/"])
    policy = Policy(root)
    assert policy.excluded("x.tmp.md") and policy.excluded("archive/old.md")
    assert not policy.excluded("x.md") and not policy.excluded("Archived.md")


def test_a_slow_regex_fails_closed_and_is_reported(make_vault: MakeVault) -> None:
    root = make_vault({"a.md": "x"})
    app_json(root, ["/^(a|a)*$/"])
    policy = Policy(root)
    name = "a" * 24 + "!.md"  # 2^24 ways to fail for a backtracking engine
    overruns: list[Problem] = []
    start = time.monotonic()
    assert policy.refusal(name, overruns) == EXCLUDED_BY_RULE  # the rule never stops hiding
    assert time.monotonic() - start < 1.0
    assert [p.path for p in overruns] == [name] and "left out" in overruns[0].reason
    assert not policy.excluded("notes.md")
    (root / name).write_text("x")
    vault = scan_with(policy)  # the scan leaves it out too, and says why
    assert [f.path for f in vault.files] == ["a.md"]
    assert any(p.path == name and "left out" in p.reason for p in vault.problems)


def test_a_change_of_app_json_is_seen_by_the_next_decision(make_vault: MakeVault) -> None:
    root = make_vault({"Private/diary.md": "x", "a.md": "x"})
    policy = Policy(root)
    assert not policy.excluded("Private/diary.md")
    assert [f.path for f in scan_with(policy).files] == ["Private/diary.md", "a.md"]
    app_json(root, ["Private/"])
    assert policy.excluded("Private/diary.md")
    assert policy.file("Private/diary.md") is None
    assert [f.path for f in scan_with(policy).files] == ["a.md"]
    (root / ".obsidian" / "app.json").unlink()  # gone: Obsidian's defaults again
    assert not policy.excluded("Private/diary.md")


def test_the_scan_and_the_watcher_give_the_same_answer(make_vault: MakeVault,
                                                       tmp_path: Path) -> None:
    root = make_vault({
        "a.md": "x", "Archive/old.md": "x", "x.tmp.md": "x", "Private/s.md": "x",
        ".trash/t.md": "x", "node_modules/m.md": "x", "sub/.h.md": "x", "sub/keep.png": b"x",
        "Trips/Pier.md": "x",
    })
    app_json(root, ["Archive/", "/\\.tmp\\.md$/"])
    outside = tmp_path / "outside.md"
    outside.write_text("secret")
    os.symlink(outside, root / "passwd.md")
    os.symlink(root / "Trips", root / "alias")
    os.symlink(root / "a.md", root / "same.md")
    os.mkfifo(root / "pipe.md")
    policy = Policy(root, ".obsidian", ["Private/**"])
    on_disk = [os.path.join(d, n) for d, _, names in os.walk(root, followlinks=True)
               for n in names]
    present, _ = sort_events([(Change.added, p) for p in on_disk], policy)
    vault = scan_with(policy)
    assert sorted(present) == [f.path for f in vault.files] == [
        "Trips/Pier.md", "a.md", "same.md", "sub/keep.png"]
    assert (Problem("passwd.md", LINK_OUT)) in vault.problems
    assert policy.file("passwd.md") == Problem("passwd.md", LINK_OUT)
    assert policy.file("pipe.md") == Problem("pipe.md", NOT_REGULAR)


def test_the_workspace_has_one_policy_for_the_indexer(make_vault: MakeVault,
                                                      tmp_path: Path) -> None:
    ws = open_workspace(Config(vault=make_vault({"a.md": "x"}), data_dir=tmp_path / "d",
                               model="minilm"), writer=True)
    indexer = ws.indexer()
    try:
        assert indexer.policy is ws.policy
    finally:
        indexer.close()
        ws.close()


def test_the_note_cap_holds_with_the_file_check(make_vault: MakeVault) -> None:
    root = make_vault({"a.md": "# A\n", "huge.md": b"x" * (MAX_NOTE_BYTES + 1)})
    os.mkfifo(root / "pipe.md")
    def read(rel: str) -> bytes:
        with open_file(root, rel) as fh:
            return note_bytes(fh, rel)

    assert read("a.md") == b"# A\n"
    with pytest.raises(NoteTooLarge, match="larger than 20 MB"):
        read("huge.md")
    with pytest.raises(Refused, match="not a regular file"):
        read("pipe.md")  # refused at once: the open never blocks
    with open(root / "a.md", "rb") as fh:
        with open(root / "a.md", "ab") as grow:  # grows past the cap after the open
            grow.write(b"y" * MAX_NOTE_BYTES)
        with pytest.raises(NoteTooLarge):  # the cap holds what is read, not a stat
            note_bytes(fh, "a.md")
