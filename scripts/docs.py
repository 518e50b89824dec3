"""The reference parts of docs/, generated from the code so that they cannot go stale.

Each generated part sits in a Markdown file between two marker comments:

    <!-- generated: NAME (scripts/docs.py) -->
    ...
    <!-- end generated: NAME -->

and everything outside the markers is written by hand. `.venv/bin/python scripts/docs.py`
rewrites every part; with `--check` it only says which files are out of date (exit 1).
tests/test_docs.py runs the check.

- settings (docs/settings.md): `vaultlens.config.SETTINGS`, and the commands that take each one;
- cli (docs/cli.md): every command and action of `vaultlens.cli.build_parser()` with its options;
- modules (docs/architecture.md): every module of the package, by stage, with its docstring's
  first sentence.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "server" / "vaultlens"
sys.path.insert(0, str(ROOT / "server"))

from vaultlens import config  # noqa: E402
from vaultlens.cli import build_parser  # noqa: E402

# the module list follows the data path: the stages that wire the others first, helpers last;
# a folder not named here is listed after these, so a new one is never left out
STAGE_ORDER = ["serve", "search", "index", "extract", "vault", "embedders"]


def commands(parser: argparse.ArgumentParser, prefix: str = "vaultlens"
             ) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Every command and action ("vaultlens model pull"), with its one-line help, in order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", helps.get(name, ""), sub
                yield from commands(sub, f"{prefix} {name}")


def _cell(text: str, code: bool = False) -> str:
    """Text fit for a table cell: one line, no bare `|`; prose also keeps `<x>` from being HTML."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if code else text.replace("<", "&lt;")


def _option(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    name = ", ".join(action.option_strings)
    takes = action.nargs != 0
    shown = f"{name} {action.metavar or action.dest.upper()}" if takes else name
    return f"`{_cell(shown, code=True)}`"


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage line on one line: the terminal's width must not change the docs."""
    formatter = argparse.HelpFormatter(parser.prog, width=10_000)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups,
                        prefix="")
    return formatter.format_help().strip()


def settings_table() -> str:
    takers: dict[str, list[str]] = {}
    for name, _, sub in commands(build_parser()):
        for action in sub._actions:
            takers.setdefault(action.dest, []).append(name.removeprefix("vaultlens "))
    rows = ["| flag | environment | default | meaning | commands |", "|---|---|---|---|---|"]
    for s in config.SETTINGS:
        default = s.shown or ("none" if s.default in (None, ()) else str(s.default))
        flag = _cell(f"{s.flag} {s.metavar}", code=True)
        rows.append(f"| `{flag}` | `{s.env}` | {_cell(default)} | {_cell(s.help)} "
                    f"| {', '.join(takers.get(s.name, [])) or '(none)'} |")
    return "\n".join(rows)


def cli_reference() -> str:
    parts = []
    for name, summary, sub in commands(build_parser()):
        parts += [f"### `{name}`", "", _cell(summary), "", "```text", _usage(sub)]
        if sub.description:
            parts += ["", sub.description.strip()]
        parts += ["```", ""]
        if sub.epilog:
            parts += ["```text", sub.epilog.strip(), "```", ""]
        rows = [a for a in sub._actions if not isinstance(a, argparse._HelpAction)
                and not isinstance(a, argparse._SubParsersAction)]
        if rows:
            parts += ["| option | meaning |", "|---|---|"]
            parts += [f"| {_option(a)} | {_cell(a.help or '')} |" for a in rows]
            parts.append("")
    return "\n".join(parts).rstrip()


def first_sentence(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    match = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    return (match.group(1) if match else paragraph) or "(no docstring)"


def module_list() -> str:
    folders = sorted({p.parent for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE},
                     key=lambda f: (STAGE_ORDER.index(f.name) if f.name in STAGE_ORDER
                                    else len(STAGE_ORDER), f.name))
    lines = ["- **top level** (`server/vaultlens/`)"]
    lines += [f"  - `{p.name}`: {first_sentence(p)}" for p in sorted(PACKAGE.glob("*.py"))
              if p.name not in ("__init__.py", "__main__.py")]
    for folder in folders:
        init = folder / "__init__.py"
        about = first_sentence(init) if init.exists() else ""
        lines.append(f"- **`{folder.relative_to(PACKAGE)}/`** {about}".rstrip())
        lines += [f"  - `{p.name}`: {first_sentence(p)}" for p in sorted(folder.glob("*.py"))
                  if p.name != "__init__.py"]
    return "\n".join(lines)


PARTS: dict[str, tuple[Path, Callable[[], str]]] = {
    "settings": (ROOT / "docs" / "settings.md", settings_table),
    "cli": (ROOT / "docs" / "cli.md", cli_reference),
    "modules": (ROOT / "docs" / "architecture.md", module_list),
}


def render(text: str, name: str, body: str) -> str:
    """`text` with the part `name` replaced by `body`; a file without its markers is an error."""
    begin, end = f"<!-- generated: {name} (scripts/docs.py) -->", f"<!-- end generated: {name} -->"
    head, found, rest = text.partition(begin)
    if not found or end not in rest:
        raise SystemExit(f"no markers for the part {name!r}: add {begin} and {end}")
    return f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"


def stale() -> dict[Path, str]:
    """The files whose generated parts differ from the code, with their new text."""
    texts: dict[Path, str] = {}
    for name, (path, make) in PARTS.items():
        texts[path] = render(texts.get(path) or path.read_text(encoding="utf-8"), name, make())
    return {p: t for p, t in texts.items() if p.read_text(encoding="utf-8") != t}


def main(argv: list[str]) -> int:
    changed = stale()
    for path, text in changed.items():
        if "--check" not in argv:
            path.write_text(text, encoding="utf-8")
        print(f"{'out of date' if '--check' in argv else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if changed and "--check" in argv else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
