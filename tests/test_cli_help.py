"""The command line explains itself: every command's help and description, each option's default
and environment variable, only the options a command uses, --version, `model list`, and every
mistake a one-line error with a non-zero exit."""

from __future__ import annotations

import argparse
import json
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from vaultlens.cli import build_parser, main
from vaultlens.config import SETTINGS
from vaultlens.evaluate import BASELINES
from vaultlens.index.datadir import DataDir, data_dir_for


def commands(parser: argparse.ArgumentParser, prefix: str = ""
             ) -> dict[str, tuple[str | None, argparse.ArgumentParser]]:
    """Every command and sub-command ("model pull"), with its one-line help and its parser."""
    found: dict[str, tuple[str | None, argparse.ArgumentParser]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                found[prefix + name] = (helps.get(name), sub)
                found |= commands(sub, f"{prefix}{name} ")
    return found


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_has_a_help_line_and_a_description() -> None:
    found = commands(build_parser())
    assert {"serve", "index", "search", "status", "model list", "model pull"} <= found.keys()
    for name, (help_line, parser) in found.items():
        assert help_line and len(help_line) > 15, f"`vaultlens {name}` has no help line"
        assert parser.description and len(parser.description) > 30, (
            f"`vaultlens {name} --help` has no description")
    # the commands a new user starts with show how they are called
    for name in ("serve", "index", "search", "status", "open", "eval", "model pull"):
        assert f"vaultlens {name}" in found[name][1].format_help().split("options:")[0]


def test_every_option_shows_its_default_and_its_variable() -> None:
    by_flag = {s.flag: s for s in SETTINGS}
    for name, (_, parser) in commands(build_parser()).items():
        text = " ".join(parser.format_help().split())  # argparse wraps mid-sentence
        for action in parser._actions:
            s = next((by_flag[o] for o in action.option_strings if o in by_flag), None)
            if s is None:
                continue
            shown = re.search(r"\[default: ([^;]+); env: (\w+)\]$", action.help or "")
            assert shown, f"`vaultlens {name} --help`: {s.flag} without its default and variable"
            assert shown.group(2) == s.env and " ".join(shown.group(0).split()) in text
            if s.default not in (None, ()):
                assert shown.group(1) == str(s.default)


def test_the_top_level_help_lists_every_environment_variable() -> None:
    text = build_parser().format_help()
    for s in SETTINGS:
        assert s.env in text
    for other in ("VAULTLENS_REMOTE_KEY", "XDG_DATA_HOME", "HF_HOME"):
        assert other in text


def test_the_data_dir_default_is_the_folder_really_used(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    vault = tmp_path / "My Vault"
    vault.mkdir()
    real = data_dir_for(vault)
    assert re.fullmatch(r"My Vault-[0-9a-f]{10}", real.name)
    assert real.parent == tmp_path / "xdg" / "vaultlens"
    text = " ".join(commands(build_parser())["index"][1].format_help().split())
    said = text.split("--data-dir DIR ", 1)[1].split("env:", 1)[0]
    assert "$XDG_DATA_HOME/vaultlens/<vault folder name>-<" in said
    assert "10 hex digits" in said and "SHA-256" in said and "~/.local/share" in said


def test_eval_names_the_baselines_it_runs() -> None:
    found = commands(build_parser())
    text = " ".join(found["eval"][1].format_help().split())
    assert len(BASELINES) == 4 and "four baselines" in text and "three" not in text
    for baseline in BASELINES:
        assert baseline.replace("filename", "file-name") in text
    assert "four baselines" in (found["eval"][0] or "")


# which options a command must refuse: it would read none of them
NOT_USED = {
    "status": ["--rerank", "--rerank-top", "--vector-dtype", "--threads", "--ocr", "--port"],
    "search": ["--ocr", "--exclude", "--max-pdf-pages", "--port", "--config-dir"],
    "index": ["--rerank", "--rerank-top", "--port", "--host"],
    "open": ["--port", "--model"],
    "token": ["--model", "--port"],
    "links": ["--data-dir", "--model"],
    "mcp": ["--port", "--host"],
}
USED = {
    "status": ["--vault", "--data-dir", "--model", "--dims", "--max-image-tokens", "--json"],
    "search": ["--vault", "--data-dir", "--model", "--rerank", "--threads", "--vector-dtype"],
    "index": ["--vault", "--exclude", "--ocr", "--threads", "--vector-dtype", "--data-dir"],
    "serve": ["--vault", "--port", "--host", "--allow-remote", "--rerank", "--ocr"],
    "eval": ["--vault", "--queries", "--rerank", "--ocr"],
    "mcp": ["--vault", "--rerank", "--ocr", "--data-dir"],
}


@pytest.mark.parametrize("name", sorted(NOT_USED.keys() | USED.keys()))
def test_each_command_takes_only_the_options_it_uses(name: str) -> None:
    parser = commands(build_parser())[name][1]
    assert not set(NOT_USED.get(name, [])) & flags(parser)
    assert set(USED.get(name, [])) <= flags(parser)


def test_a_refused_option_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["status", "--vault", str(tmp_path), "--rerank", "off"], capsys)
    assert code == 2 and "unrecognized arguments: --rerank" in err
    assert err.count("\n") == 1 and "vaultlens status --help" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"vaultlens {version('vaultlens')}"


def test_model_list_names_each_model_and_whether_it_loads_here(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["model", "list", "--json"], capsys)
    assert code == 0, err
    models = {m["name"]: m for m in json.loads(out)}
    assert {"auto", "e5-small", "minilm", "use-multilingual", "qwen3-vl-2b", "qwen3-vl-8b",
            "qwen3-vl-reranker-2b"} <= models.keys()
    for bundled in ("e5-small", "minilm", "use-multilingual"):  # dependencies of vaultlens
        assert models[bundled]["offline"] is True and models[bundled]["about"]
    for name in ("qwen3-vl-2b", "qwen3-vl-8b"):
        if not models[name]["offline"]:
            assert f"vaultlens model pull {name}" in models[name]["where"]
    code, out, _ = run(["model", "list"], capsys)
    assert code == 0 and re.search(r"^minilm +yes +all-MiniLM", out, re.M)


def test_open_without_a_daemon_fails_saying_how_to_start_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    code, out, err = run(["open", "--vault", str(vault), "--data-dir", str(tmp_path / "d"),
                          "--print"], capsys)
    assert code != 0 and not out
    assert err.count("\n") == 1 and f"vaultlens serve --vault {vault}" in err


def test_a_second_writer_is_told_where_the_daemon_serves(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vault, folder = tmp_path / "vault", tmp_path / "data"
    vault.mkdir()
    running = DataDir(folder)
    running.lock()  # as a daemon holds it
    running.write_daemon_info(28417, str(vault.resolve()))
    try:
        for argv in (["index"], ["serve", "--port", "28418"]):
            code, _, err = run([*argv, "--vault", str(vault), "--data-dir", str(folder),
                                "--model", "minilm"], capsys)
            assert code == 2 and err.count("\n") == 1, err
            assert "already serves" in err and "http://127.0.0.1:28417/" in err, err
            assert "vaultlens status" in err
    finally:
        running.unlock()


@pytest.mark.parametrize("argv, says", [
    (["status"], "no vault given"),
    (["status", "--vault", "{tmp}/missing"], "missing: not a folder"),
    (["status", "--vault", "{tmp}/file.txt"], "file.txt: not a folder"),
    (["serve", "--vault", "{tmp}", "--port", "99999"], "port=99999: must be a TCP port"),
    (["serve", "--vault", "{tmp}", "--port", "abc"], "invalid int value: 'abc'"),
    (["search", "--vault", "{tmp}", "--data-dir", "{tmp}/../d", "--model", "nope", "x"],
     "unknown model 'nope'"),
    (["model", "pull", "nope"], "unknown model 'nope'"),
    (["search", "--vault", "{tmp}", "--k", "0", "x"], "--k: 0: must be at least 1"),
    (["token", "--vault", "{tmp}", "--data-dir", "/proc/no/such"], "/proc/no: No such file"),
    (["eval", "--vault", "{tmp}", "--queries", "{tmp}/none.jsonl"], "cannot read the queries"),
    (["model", "list", "extra"], "unrecognized arguments: extra"),
    ([], "required: COMMAND"),
])
def test_a_mistake_is_one_line_on_stderr(argv: list[str], says: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    tmp = tmp_path / "vault"
    tmp.mkdir()
    (tmp / "file.txt").write_text("not a vault")
    code, out, err = run([a.replace("{tmp}", str(tmp)) for a in argv], capsys)
    assert code != 0 and not out
    assert err.count("\n") == 1 and err.startswith("vaultlens"), err
    assert says in err and "Traceback" not in err
