"""The docs cover the code and cannot go stale: the reference parts of docs/ are generated from
the code (scripts/docs.py) and must be up to date; every setting, command, option and module
is in them; every relative link resolves; the README stays short."""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from vaultlens.cli import build_parser
from vaultlens.config import SETTINGS, Setting

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "server" / "vaultlens"
REGENERATE = "run `.venv/bin/python scripts/docs.py` and commit what it writes"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generator", ROOT / "scripts" / "docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_generated_parts_are_up_to_date() -> None:
    stale = generator().stale()
    names = sorted(str(p.relative_to(ROOT)) for p in stale)
    assert not names, f"out of date: {names}; {REGENERATE}"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_settings_md(setting: Setting) -> None:
    text = read(DOCS / "settings.md")
    for word in (setting.flag, setting.env):
        assert f"`{word}" in text, f"docs/settings.md lacks {word}; {REGENERATE}"


def commands(parser: argparse.ArgumentParser, prefix: str = "vaultlens"
             ) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix} {name}"] = sub
                found |= commands(sub, f"{prefix} {name}")
    return found


@pytest.mark.parametrize("name", sorted(commands(build_parser())))
def test_every_option_of_every_command_is_in_cli_md(name: str) -> None:
    """Each command has its section in docs/cli.md, naming each of its options."""
    text = read(DOCS / "cli.md")
    heading = f"### `{name}`\n"
    assert heading in text, f"docs/cli.md has no section for `{name}`; {REGENERATE}"
    section = text.split(heading, 1)[1].split("\n### ", 1)[0]
    options = [o for a in commands(build_parser())[name]._actions for o in a.option_strings
               if o not in ("-h", "--help")]
    missing = [o for o in options if f"`{o}" not in section and f", {o}" not in section]
    assert not missing, f"docs/cli.md's `{name}` lacks {missing}; {REGENERATE}"


def test_every_command_is_in_the_readme() -> None:
    readme = read(ROOT / "README.md")
    top = [n for n in commands(build_parser()) if n.count(" ") == 1]
    missing = [n for n in top if n not in readme]
    assert not missing, f"README.md does not show {missing}"


def test_every_module_is_in_architecture_md() -> None:
    """The module list names each module under its own folder: a new module is listed, a
    moved or renamed one is not left behind under its old name."""
    text = read(DOCS / "architecture.md")
    block = text.split("<!-- generated: modules", 1)[1].split("<!-- end generated", 1)[0]
    listed: set[str] = set()
    folder = ""
    for line in block.splitlines():
        if line.startswith("- **"):
            found = re.match(r"- \*\*`([\w/]+)/`\*\*", line)
            folder = found.group(1) + "/" if found else ""
        elif item := re.match(r"  - `([\w.]+\.py)`", line):
            listed.add(folder + item.group(1))
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py")}
    assert not modules - listed and not listed - modules, (
        f"not in docs/architecture.md: {sorted(modules - listed)}; gone: "
        f"{sorted(listed - modules)}; {REGENERATE}")


def test_the_readme_is_short() -> None:
    lines = len(read(ROOT / "README.md").splitlines())
    assert lines <= 220, f"README.md has {lines} lines; the rest belongs in docs/"


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces → -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", without_code(text, inline=False), flags=re.M)
    return {slug(h) for h in headings}


def without_code(text: str, inline: bool = True) -> str:
    """The text less its code blocks (and code spans): what looks like a link there is not."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"(`+)[^\n]*?\1", "", text) if inline else text


MARKDOWN = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    """A link to a file that moved, or to a heading that was renamed, fails here."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", without_code(read(page))):
        if re.match(r"[a-z]+:", target):  # https:, mailto:, obsidian:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        heading_gone = anchor and file.suffix == ".md" and anchor not in anchors(read(file))
        if not file.exists() or heading_gone:
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_no_cache_is_committed() -> None:
    """Caches that tools write on every run (.schemathesis, .hypothesis, …) stay untracked."""
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    caches = {".schemathesis", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache",
              "__pycache__", "node_modules", ".venv"}
    committed = [p for p in tracked if caches & set(Path(p).parts)]
    assert not committed, f"caches are committed (git rm --cached them): {committed[:10]}"


def test_the_pictures_are_small() -> None:
    """The README's pictures load fast on a forge and keep the repository small."""
    big = {p.name: p.stat().st_size for p in (DOCS / "images").iterdir()
           if p.stat().st_size > 400_000}
    assert not big, f"pictures over 400 kB in docs/images (shrink them): {big}"


# phrasings of a before/after figure: a comment states the invariant and the reason, and the
# figures live in docs/decisions/ (where they can be dated)
HISTORY = re.compile(r"went from \d|took [\d.,]+ ?(ms|s)\b, not|\bas before\b"
                     r"|\b(was|were) [\d.,]+ ?(ms|s|MB|GB)\b")


def test_no_comment_narrates_history() -> None:
    package = Path(__file__).resolve().parents[1] / "server" / "vaultlens"
    found = [f"{p.relative_to(package)}:{n}: {line.strip()}"
             for p in sorted(package.rglob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if HISTORY.search(line)]
    assert not found, "before/after figures belong in docs/decisions/:\n" + "\n".join(found)
