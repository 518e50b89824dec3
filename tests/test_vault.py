"""Walking a vault: what is skipped, how files are classified, how app.json is read."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from vaultlens.vault.policy import read_settings
from vaultlens.vault.scan import scan
from vaultlens.vault.vault import VaultSettings, file_kind, pasted_at

MakeVault = Callable[[dict[str, str | bytes]], Path]


def paths(root: Path, **kw: object) -> list[str]:
    return [f.path for f in scan(root, **kw).files]  # type: ignore[arg-type]


def test_skips_config_trash_git_node_modules_and_dotfiles(make_vault: MakeVault) -> None:
    root = make_vault({
        "a.md": "x", ".obsidian/app.json": "{}", ".trash/old.md": "x", ".git/HEAD": "x",
        "node_modules/p/readme.md": "x", "sub/.hidden.md": "x", "sub/b.png": b"x",
    })
    assert paths(root) == ["a.md", "sub/b.png"]


def test_configurable_config_dir(make_vault: MakeVault) -> None:
    root = make_vault({"a.md": "x", "_config/app.json": '{"userIgnoreFilters": ["Archive/"]}',
                       "Archive/old.md": "x"})
    assert paths(root, config_dir="_config") == ["a.md"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [("n.md", "note"), ("N.MD", "note"), ("a.png", "image"), ("a.JPG", "image"),
     ("a.jpeg", "image"), ("a.gif", "image"), ("a.webp", "image"), ("a.bmp", "image"),
     ("a.tif", "image"), ("a.tiff", "image"), ("a.avif", "image"), ("d.pdf", "pdf"),
     ("d.PDF", "pdf"), ("x.svg", "image"), ("x.canvas", "note"), ("noext", "other")],
)
def test_file_kinds(name: str, kind: str) -> None:
    assert file_kind(name) == kind


def test_user_globs_and_obsidian_filters(make_vault: MakeVault) -> None:
    app = {"userIgnoreFilters": ["Archive/", "/\\.tmp\\.md$/", "templates/draft.md"]}
    root = make_vault({
        ".obsidian/app.json": json.dumps(app), "keep.md": "x", "Archive/a.md": "x",
        "x.tmp.md": "x", "Templates/Draft.md": "x", "Private/secret.md": "x",
        "shots/a.png": b"x", "shots/b.gif": b"x",
    })
    assert paths(root, exclude=["Private/**", "*.gif"]) == ["keep.md", "shots/a.png"]


def test_app_json_settings_and_defaults(make_vault: MakeVault) -> None:
    root = make_vault({".obsidian/app.json": json.dumps({
        "attachmentFolderPath": "./assets", "newLinkFormat": "relative",
        "useMarkdownLinks": True, "other": 1})})
    settings, problems = read_settings(root)
    assert settings == VaultSettings("./assets", "relative", True, ())
    assert problems == []
    assert read_settings(root / "missing") == (VaultSettings(), [])


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"),
     ('{"useMarkdownLinks": "yes"}', "useMarkdownLinks should be bool"),
     ('{"userIgnoreFilters": "Archive"}', "userIgnoreFilters should be a list")],
)
def test_broken_app_json_is_reported_not_fatal(make_vault: MakeVault, content: str,
                                               fragment: str) -> None:
    root = make_vault({".obsidian/app.json": content, "a.md": "x"})
    vault = scan(root)
    assert [f.path for f in vault.files] == ["a.md"]
    assert vault.settings.use_markdown_links is False
    assert any(fragment in p.reason and p.path == ".obsidian/app.json" for p in vault.problems)


def test_symlinks_outside_the_vault_are_not_followed(make_vault: MakeVault,
                                                     tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("x")
    (outside / "file.png").write_bytes(b"x")
    root = make_vault({"a.md": "x", "inner/b.md": "x"})
    os.symlink(outside, root / "linkdir")
    os.symlink(outside / "file.png", root / "link.png")
    os.symlink(root / "inner", root / "a-link")  # inside: walked at its real path only
    os.symlink(root, root / "inner" / "loop")  # a loop back to the root: not walked again
    os.symlink(root / "a.md", root / "alias.md")  # a file link inside the vault is a file
    vault = scan(root)
    assert [f.path for f in vault.files] == ["a.md", "alias.md", "inner/b.md"]
    reasons = {p.path: p.reason for p in vault.problems}
    assert "outside the vault" in reasons["linkdir"]
    assert "outside the vault" in reasons["link.png"]


def test_files_carry_size_and_mtime(make_vault: MakeVault) -> None:
    root = make_vault({"a.md": "hello"})
    (f,) = scan(root).files
    assert (f.kind, f.size) == ("note", 5)
    assert f.mtime_ns == (root / "a.md").stat().st_mtime_ns


def test_pasted_image_names() -> None:
    assert pasted_at("Pasted image 20240101123456.png") == datetime(2024, 1, 1, 12, 34, 56)
    assert pasted_at("x/Pasted image 20240101123456 2.png") == datetime(2024, 1, 1, 12, 34, 56)
    assert pasted_at("Pasted image 20241301123456.png") is None  # month 13
    assert pasted_at("Pasted image 2024.png") is None


def test_unreadable_folder_is_a_problem(make_vault: MakeVault,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_vault({"a.md": "x", "locked/b.md": "x", "z.md": "x"})
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str]) -> object:
        if Path(path).name == "locked":  # root can read anything, so fail it by hand
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    vault = scan(root)
    assert [f.path for f in vault.files] == ["a.md", "z.md"]
    assert [(p.path, p.reason) for p in vault.problems] == [
        ("locked/", "cannot list folder: Permission denied")]


def test_a_backtracking_exclusion_regex_is_cut_short_and_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    import time

    from vaultlens.vault.policy import Exclusions
    from vaultlens.vault.vault import Problem

    rules = Exclusions((), ["/^(a|a)*$|private/", "/draft/"])
    name = "a" * 24 + "!.md"  # 2^24 ways to fail for a backtracking engine
    start = time.monotonic()
    overruns: list[Problem] = []
    with caplog.at_level("WARNING", logger="vaultlens.vault.policy"):
        assert rules.excluded(name, False, overruns)  # an overrun fails closed: left out
        assert rules.excluded(name, False, overruns)
    assert time.monotonic() - start < 1.0
    assert [r.getMessage() for r in caplog.records if "/^(a|a)*$|private/" in r.getMessage()]
    assert len(caplog.records) == 1  # said once
    assert any(p.path == name and "left out" in p.reason for p in overruns)
    # the rule still hides what the user wrote it for, and the others still apply
    assert rules.excluded("private.md", False) and rules.excluded("a draft.md", False)
    assert not rules.excluded("notes.md", False)


def test_an_app_json_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / ".obsidian").mkdir()
    os.mkfifo(tmp_path / ".obsidian" / "app.json")
    settings, problems = read_settings(tmp_path)  # before: blocked until a writer came
    assert settings.ignore_filters == () and "not a regular file" in problems[0].reason
