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
