"""Imports only go down the pipeline: serve → workspace → search → index → extract → vault, with
embedders/ and config.py at the bottom. A stage that imports one above it fails here, by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "vaultlens"

# Higher imports lower or equal, never the other way. Modules at the package's top level are
# ranked one by one: cli.py wires everything, config.py is read by everything.
RANKS = {
    "": 0,  # vaultlens/__init__.py runs before every import of the package: it imports nothing
    "cli": 7, "cli_parser": 7, "__main__": 7,
    "serve": 6,
    "workspace": 5, "evaluate": 5,
    "search": 4,
    "index": 3,
    "extract": 2,
    "vault": 1,
    "embedders": 0, "config": 0, "children": 0, "workers": 0, "heap": 0,
    "errors": 0,  # the root of every domain error: imported by every stage
    "text": 0,  # CJK characters and their keyword terms: the index and search split alike
}


def stage(module: str) -> str:
    """'vaultlens.search.hits' → 'search'; 'vaultlens.cli' → 'cli'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, here: str) -> list[tuple[int, str]]:
    """Every vaultlens module a file imports, lazy imports inside functions included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("vaultlens")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                anchor = here.split(".")[: -node.level]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "vaultlens":  # `from vaultlens import config`: the names are modules
                found += [(node.lineno, f"vaultlens.{a.name}") for a in node.names]
            elif base.startswith("vaultlens."):
                found.append((node.lineno, base))
    return found


def upward_imports(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        here = module_name(path, root)
        mine = stage(here)
        if mine not in RANKS:
            problems.append(f"{path.relative_to(root)}: stage {mine!r} has no rank in test_layout")
            continue
        for line, target in imported(ast.parse(path.read_text(encoding="utf-8")), here):
            theirs = stage(target)
            if theirs not in RANKS:
                problems.append(f"{path.relative_to(root)}:{line}: imports unknown {target}")
            elif RANKS[theirs] > RANKS[mine]:
                problems.append(f"{path.relative_to(root)}:{line}: {mine} imports {target}, "
                                f"a stage above it ({theirs})")
    return problems


def test_imports_only_go_down() -> None:
    assert upward_imports(PACKAGE) == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    pkg = tmp_path / "vaultlens"
    (pkg / "vault").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "vault" / "__init__.py").write_text("")
    (pkg / "vault" / "notes.py").write_text(
        "def f() -> None:\n    from vaultlens.search.hits import Hit\n")
    (pkg / "vault" / "links.py").write_text("from ..index import catalog\n")
    assert upward_imports(pkg) == [
        "vault/links.py:1: vault imports vaultlens.index, a stage above it (index)",
        "vault/notes.py:2: vault imports vaultlens.search.hits, a stage above it (search)",
    ]


@pytest.mark.parametrize("init", sorted(PACKAGE.glob("*/__init__.py")),
                         ids=lambda p: p.parent.name)
def test_each_stage_says_what_it_does_and_re_exports_nothing(init: Path) -> None:
    tree = ast.parse(init.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{init} has no docstring"
    code = [n for n in tree.body
            if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert code == [], f"{init} should hold only its docstring"
