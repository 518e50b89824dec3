"""Settings: one table of (name, default, help); CLI flags and environment variables come from it.

Every setting can be given as a flag (``--context-chars 800``) or as an environment variable
(``VAULTLENS_CONTEXT_CHARS=800``); the flag wins. README.md documents each one, and a test checks
that it does.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    multiple: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "VAULTLENS_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("vault", None, "Path of the Obsidian vault (the folder that holds .obsidian).", Path),
    Setting(
        "config_dir",
        ".obsidian",
        "Name of the vault's configuration folder; it is never indexed and app.json is read there.",
    ),
    Setting(
        "exclude",
        (),
        "Glob of vault-relative paths to leave out (repeatable; env: comma-separated), "
        "on top of Obsidian's own 'Excluded files'.",
        multiple=True,
    ),
    Setting(
        "context_chars",
        1500,
        "Character budget for the paragraphs kept around each embedded image or PDF.",
        int,
    ),
)


@dataclass(frozen=True)
class Config:
    """Resolved settings. Built by :func:`from_args` or directly in tests."""

    vault: Path
    config_dir: str = ".obsidian"
    exclude: tuple[str, ...] = ()
    context_chars: int = 1500


def add_arguments(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """Add the flags for the named settings; defaults stay None so env and table can fill in."""
    by_name = {s.name: s for s in SETTINGS}
    for name in names:
        s = by_name[name]
        if s.multiple:
            parser.add_argument(s.flag, dest=s.name, action="append", help=s.help, default=None)
        else:
            parser.add_argument(s.flag, dest=s.name, type=s.type, help=s.help, default=None)


def _from_env(s: Setting, env: Mapping[str, str]) -> Any:
    raw = env.get(s.env)
    if raw is None or raw == "":
        return None
    if s.multiple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        return s.type(raw)
    except ValueError as exc:
        raise ConfigError(f"{s.env}={raw!r}: {exc}") from exc


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for s in SETTINGS:
        value = getattr(args, s.name, None)
        if value is None:
            value = _from_env(s, env)
        if value is None:
            value = s.default
        if s.multiple:
            value = tuple(value)
        values[s.name] = value
    if values["vault"] is None:
        raise ConfigError("no vault given: pass --vault PATH or set VAULTLENS_VAULT")
    vault = Path(values["vault"]).expanduser()
    if not vault.is_dir():
        raise ConfigError(f"{vault}: not a folder")
    if values["context_chars"] < 100:
        raise ConfigError(f"context_chars={values['context_chars']}: must be at least 100")
    return Config(
        vault=vault,
        config_dir=values["config_dir"],
        exclude=values["exclude"],
        context_chars=values["context_chars"],
    )
