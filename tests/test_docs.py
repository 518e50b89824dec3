"""The README documents every setting and every command (datasette's habit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaultlens.cli import build_parser
from vaultlens.config import SETTINGS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting: object) -> None:
    assert setting.flag in README, f"README.md does not mention {setting.flag}"  # type: ignore[attr-defined]
    assert setting.env in README, f"README.md does not mention {setting.env}"  # type: ignore[attr-defined]


def test_every_command_is_documented() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"vaultlens {name}" in README, f"README.md does not show `vaultlens {name}`"


def test_the_layout_names_every_module() -> None:
    """README's Layout lists each module under its stage: a new module is placed there, a
    moved or renamed one is not left behind under its old name."""
    layout = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    package = Path(__file__).resolve().parents[1] / "server" / "vaultlens"
    listed: dict[str, set[str]] = {}
    stage = ""
    for line in layout.split("```")[1].splitlines():
        name = line.strip().split(" ", 1)[0]
        if line.startswith("  ") and not line.startswith("    "):
            stage = name.rstrip("/") if name.endswith("/") else ""
        if name.endswith(".py"):
            listed.setdefault(stage, set()).add(name)
    modules = {(p.parent.name if p.parent != package else "", p.name)
               for p in package.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    missing = sorted(f"{s}/{n}" if s else n for s, n in modules if n not in listed.get(s, set()))
    stale = sorted(f"{s}/{n}" if s else n for s, names in listed.items() for n in names
                   if (s, n) not in modules)
    assert not missing and not stale, f"not in README's Layout: {missing}; gone: {stale}"
