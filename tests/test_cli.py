"""`vaultlens links`, in process and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vaultlens.cli import main

MakeVault = Callable[[dict[str, str | bytes]], Path]

VAULT = {
    "Notes/Trip.md": "# Trip\n\nThe storm over the pier.\n\n![[storm.png|300]]\n\nAfter words.\n",
    "Notes/Other.md": "See ![alt text](../Attachments/storm.png) and ![[missing.png]].\n",
    "Attachments/storm.png": b"\x89PNG",
    "Attachments/unused.png": b"\x89PNG",
    "Docs/broken.md": b"\x00\x00",
}


def test_links_json(make_vault: MakeVault, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_vault(VAULT)
    assert main(["links", "--vault", str(root), "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    by_place = {(d["note"], d["line"], d["column"]): d for d in data}
    trip = by_place[("Notes/Trip.md", 5, 1)]
    assert trip["target"] == "Attachments/storm.png"
    assert trip["headings"] == ["Trip"]
    assert [(c["start"], c["end"]) for c in trip["context"]] == [(5, 5), (3, 3), (7, 7)]
    other = by_place[("Notes/Other.md", 1, 5)]
    assert other["target"] == "Attachments/storm.png" and other["caption"] == "alt text"
    missing = [d for d in data if d["target"] is None]
    assert [d["reason"] for d in missing] == ["no file named 'missing.png' in the vault"]
    assert "Docs/broken.md: binary content" in captured.err


def test_links_text(make_vault: MakeVault, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_vault(VAULT)
    assert main(["links", "--vault", str(root), "--context-chars", "200"]) == 0
    out = capsys.readouterr().out
    assert "Attachments/storm.png  ← Notes/Trip.md:5  (Trip)" in out
    assert "not embedded: Attachments/unused.png" in out
    assert "3 image/PDF embeds in 3 notes: 1 unresolved, 0 external" in out


def test_bad_vault_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["links", "--vault", str(tmp_path / "nope")]) == 2
    assert "nope: not a folder" in capsys.readouterr().err


def test_settings_from_environment(make_vault: MakeVault, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_vault(VAULT)
    monkeypatch.setenv("VAULTLENS_VAULT", str(root))
    monkeypatch.setenv("VAULTLENS_EXCLUDE", "Notes/Other.md")
    assert main(["links", "--json"]) == 0
    assert {d["note"] for d in json.loads(capsys.readouterr().out)} == {"Notes/Trip.md"}
    monkeypatch.setenv("VAULTLENS_CONTEXT_CHARS", "lots")
    assert main(["links"]) == 2
    assert "VAULTLENS_CONTEXT_CHARS='lots'" in capsys.readouterr().err


def test_console_script_runs(make_vault: MakeVault) -> None:
    root = make_vault(VAULT)
    exe = Path(sys.executable).with_name("vaultlens")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vaultlens"]
    proc = subprocess.run([*cmd, "links", "--vault", str(root), "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 3


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vaultlens", *args], capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.slow
def test_index_search_status_json(make_vault: MakeVault, tmp_path: Path) -> None:
    from indexing import screenshot

    root = make_vault({
        "Trips/Pier.md": "# Pier\n\nThe storm over the pier.\n\n![[board.png]]\n\nAfter.\n",
        "Attachments/board.png": screenshot("ZEBRA METRICS"),
        "bad.png": b"not an image",
        "doc.pdf": b"%PDF-1.4 broken",
        "theme.css": "body {}",
    })
    common = ["--vault", str(root), "--data-dir", str(tmp_path / "data"), "--model", "minilm"]
    proc = run_cli("index", *common, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert {"files", "items", "embedded", "skipped"} <= summary.keys()
    assert summary["files"] == 5 and summary["embedded"] == summary["items"] > 0
    reasons = {x["path"]: x["reason"] for x in summary["skipped"]}
    assert set(reasons) == {"bad.png", "doc.pdf"}  # a kind nobody searches is no failure
    assert "not an image format" in reasons["bad.png"]
    assert summary["ignored"] == {"css": 1}
    shown = run_cli("index", *common).stdout  # the text summary counts them in one line
    assert "1 ignored (a kind nobody searches: css 1)" in shown and "theme.css" not in shown
    assert "visual search is off" in proc.stderr.lower()

    proc = run_cli("search", *common, "--json", "--k", "3", "zebra", "metrics")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    top = results[0]
    assert {"kind", "path", "line", "page", "score", "text", "links"} <= top.keys()
    assert (top["kind"], top["path"], top["line"], top["page"]) == (
        "image", "Attachments/board.png", None, None)
    assert top["links"][0]["note"] == "Trips/Pier.md" and top["links"][0]["line"] == 5

    # --explain: how each hit's score was built, every signal with its rank
    proc = run_cli("search", *common, "--json", "--explain", "--k", "3", "zebra", "metrics")
    why = json.loads(proc.stdout)["results"][0]["explain"]
    assert why["candidate"] and why["rank"] == 1 and why["bm25"]["rank"] == 1
    assert {"coverage", "cosine", "vector_weight", "own", "lent", "score"} <= why.keys()
    proc = run_cli("search", *common, "--explain", "--k", "3", "zebra", "metrics")
    assert proc.returncode == 0 and "bm25 " in proc.stdout and "vector weight" in proc.stdout

    # the query syntax works here too; a bad filter is an error that says why, not a traceback
    proc = run_cli("search", *common, "--json", "zebra", "kind:note")
    assert all(r["kind"] == "note" for r in json.loads(proc.stdout)["results"])
    proc = run_cli("search", *common, "zebra", "before:someday")
    assert proc.returncode == 2 and "is not a date" in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = run_cli("status", *common, "--json")
    status = json.loads(proc.stdout)
    assert status["visual"] is False and status["vectors"] == summary["items"]
    assert {x["path"] for x in status["skipped"]} == {"bad.png", "doc.pdf"}
    assert status["ignored"] == {"css": 1} and status["daemon"] is None
    proc = run_cli("status", *common)
    assert "1 ignored (a kind nobody searches: css 1)" in proc.stdout
    assert "no daemon running" in proc.stdout


def test_search_unindexed_vault_is_a_clear_error(make_vault: MakeVault, tmp_path: Path) -> None:
    root = make_vault({"a.md": "text"})
    proc = run_cli("search", "--vault", str(root), "--data-dir", str(tmp_path / "d"),
                   "--model", "minilm", "anything")
    assert proc.returncode == 2
    assert "not indexed yet; run `vaultlens serve --vault" in proc.stderr
    assert "or `vaultlens index` first" in proc.stderr


@pytest.mark.slow
def test_index_shows_a_progress_bar_on_a_terminal(make_vault: MakeVault, tmp_path: Path) -> None:
    import os
    import pty

    vault = make_vault({f"Note {i}.md": f"# Note {i}\n\nAbout tides {i}.\n" for i in range(12)})
    main_fd, child_fd = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal
    proc = subprocess.Popen(
        [sys.executable, "-m", "vaultlens", "index", "--vault", str(vault), "--data-dir",
         str(tmp_path / "data"), "--model", "minilm", "--ocr", "off"],
        stdout=subprocess.PIPE, stderr=child_fd, text=True)
    os.close(child_fd)
    seen = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(main_fd)
    text = seen.decode("utf-8", "replace")
    assert proc.returncode == 0 and "12 files" in out
    assert "12/12" in text and "100%" in text and "file/s" in text  # tqdm's bar, rate and all


def test_an_empty_vault_is_an_error_not_this_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    for argv in (["token", "--vault", ""], ["token", "--vault", str(tmp_path), "--data-dir", " "]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "an empty path" in capsys.readouterr().err
    assert not (tmp_path / "xdg").exists()  # no data dir was made for the current folder


def test_a_relative_vault_is_the_same_vault_as_its_full_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from vaultlens import config

    (tmp_path / "Notes").mkdir()
    monkeypatch.chdir(tmp_path / "Notes")
    cfg = config.from_args(argparse.Namespace(vault=Path(".")), env={})
    assert cfg.vault == tmp_path.resolve() / "Notes"  # what status and daemon.json say


@pytest.mark.slow
def test_search_asks_the_daemon_that_serves_the_vault(make_vault: MakeVault, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With a daemon serving the vault, `search` is answered by it (its model is warm), not by
    a model of the command's own: opening the index here would fail the test."""
    import io

    from served import serving
    from vaultlens import cli

    root = make_vault({"Pier.md": "# Pier\n\nThe storm over the pier at dusk.\n",
                       "Other.md": "# Other\n\nNothing about weather.\n"})
    data = tmp_path / "data"
    with serving(root, data):
        def no_local_index(*_: object, **__: object) -> None:
            raise AssertionError("the command opened the index itself")

        monkeypatch.setattr(cli, "open_workspace", no_local_index)
        common = ["--vault", str(root), "--data-dir", str(data), "--model", "minilm"]
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        assert main(["search", *common, "--json", "storm pier"]) == 0
        answer = json.loads(out.getvalue())
        assert answer["results"][0]["path"] == "Pier.md"
        assert answer["partial"] is False and answer["indexed_share"] == 1.0
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        assert main(["search", *common, "storm pier"]) == 0
        assert out.getvalue().startswith(" 1. [note] Pier.md:")
        # what the API refuses (k past 100, a body past its limit) or a setting given for this
        # search: the command searches the index itself, as it does with no daemon
        for extra in (["--k", "150"], ["--rerank", "off"]):
            with pytest.raises(AssertionError, match="opened the index itself"):
                main(["search", *common, *extra, "storm pier"])
        with pytest.raises(AssertionError, match="opened the index itself"):
            main(["search", *common, "storm " * 20_000])
