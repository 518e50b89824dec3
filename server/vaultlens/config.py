"""Settings: one table of (name, default, help); CLI flags and environment variables come from it.

Every setting can be given as a flag (``--context-chars 800``) or as an environment variable
(``VAULTLENS_CONTEXT_CHARS=800``); the flag wins. docs/settings.md is generated from this table
(scripts/docs.py), and a test checks that it is up to date.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaultlens.errors import VaultlensError


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    multiple: bool = False
    metavar: str = "X"  # what the flag's value is called in --help
    shown: str = ""  # the default as --help says it, where the value alone would not do

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "VAULTLENS_" + self.name.upper()

    @property
    def described(self) -> str:
        """The help with its default and its environment variable, as --help shows it."""
        default = self.shown or ("none" if self.default in (None, ()) else str(self.default))
        return f"{self.help} [default: {default}; env: {self.env}]"


SETTINGS: tuple[Setting, ...] = (
    Setting("vault", None, "Path of the Obsidian vault (the folder that holds .obsidian).", Path,
            metavar="PATH", shown="required"),
    Setting(
        "config_dir",
        ".obsidian",
        "Name of the vault's configuration folder; it is never indexed and app.json is read there.",
        metavar="NAME",
    ),
    Setting(
        "exclude",
        (),
        "Glob of vault-relative paths to leave out (repeatable; env: comma-separated), "
        "on top of Obsidian's own 'Excluded files'.",
        multiple=True,
        metavar="GLOB",
    ),
    Setting(
        "context_chars",
        1500,
        "Character budget for the paragraphs kept around each embedded image or PDF.",
        int,
        metavar="N",
    ),
    Setting(
        "data_dir",
        None,
        "Folder for the index; it must be outside the vault (`vaultlens status` prints it).",
        Path,
        metavar="DIR",
        # index/datadir.py's data_dir_for: one folder per vault path
        shown="$XDG_DATA_HOME/vaultlens/<vault folder name>-<first 10 hex digits of the "
              "SHA-256 of the vault's full path>, where XDG_DATA_HOME is ~/.local/share "
              "when unset",
    ),
    Setting(
        "model",
        "auto",
        "Embedding model: auto (Qwen3-VL if its weights are here, else e5-small), e5-small, "
        "minilm, use-multilingual, qwen3-vl-2b, qwen3-vl-8b, a model folder, or remote:URL[#model] "
        "(Qwen3-VL-Embedding served by vLLM; key in VAULTLENS_REMOTE_KEY). "
        "`vaultlens model list` says which load here.",
        metavar="NAME",
    ),
    Setting("dims", None, "Keep this many dimensions of Qwen3-VL vectors (Matryoshka).", int,
            metavar="N", shown="all of them"),
    Setting("vector_dtype", "f16", "Precision of the vector index: f16, i8 or f32.",
            metavar="T"),
    Setting("max_image_tokens", None, "Qwen3-VL visual tokens per image (more: finer, "
            "slower).", int, metavar="N",
            shown="256 on a CPU, 1800 (the reference's) on a GPU or a remote server"),
    Setting("threads", None, "CPU threads for the models, and files read at once while "
            "indexing.", int, metavar="N", shown="all cores"),
    Setting("rerank", "off", "Rerank the top hits with a cross-encoder: off, "
            "qwen3-vl-reranker-2b, a model folder, or remote:URL[#model] (vLLM). Slow on "
            "CPU; for a GPU.", metavar="NAME"),
    Setting("rerank_top", 20, "How many of the top hits the reranker reads.", int, metavar="N"),
    Setting("ocr", "on", "Read text inside images and scanned PDF pages: on or off.",
            metavar="on|off"),
    Setting("max_pdf_pages", 200, "Index at most this many pages of each PDF.", int,
            metavar="N"),
    Setting("pdf_timeout", 20.0, "Seconds one PDF may take to read before it is skipped.", float,
            metavar="S"),
    Setting("host", "127.0.0.1", "Address the daemon listens on (loopback unless "
            "--allow-remote).", str, metavar="ADDR"),
    Setting("port", 27123, "Port the daemon listens on.", int, metavar="N"),
    Setting("reconcile_every", 600.0, "Seconds between full reconcile scans while serving "
            "(they catch file events that were missed).", float, metavar="S"),
)


@dataclass(frozen=True)
class Config:
    """Resolved settings. Built by :func:`from_args` or directly in tests."""

    vault: Path
    config_dir: str = ".obsidian"
    exclude: tuple[str, ...] = ()
    context_chars: int = 1500
    data_dir: Path | None = None
    model: str = "auto"
    dims: int | None = None
    vector_dtype: str = "f16"
    max_image_tokens: int | None = None  # None: by device (embedders/qwen3_vl.py)
    threads: int | None = None
    rerank: str = "off"
    rerank_top: int = 20
    ocr: bool = True
    max_pdf_pages: int = 200
    pdf_timeout: float = 20.0
    host: str = "127.0.0.1"
    port: int = 27123
    reconcile_every: float = 600.0


def add_arguments(parser: argparse._ActionsContainer, names: Sequence[str]) -> None:
    """Add the flags for the named settings; defaults stay None so env and table can fill in."""
    by_name = {s.name: s for s in SETTINGS}
    for name in names:
        s = by_name[name]
        if s.multiple:
            parser.add_argument(s.flag, dest=s.name, action="append", help=s.described,
                                default=None, metavar=s.metavar)
        else:
            kind = _path if s.type is Path else s.type
            parser.add_argument(s.flag, dest=s.name, type=kind, help=s.described, default=None,
                                metavar=s.metavar)


def _path(text: str) -> Path:
    """A path flag's value: an empty one is a mistake (a variable that expanded to nothing),
    never the current folder, which is what ``Path("")`` means."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a folder (. for this one)")
    return Path(text)


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


class ConfigError(VaultlensError, ValueError):
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
    checks = [
        ("context_chars", values["context_chars"] >= 100, "must be at least 100"),
        ("vector_dtype", values["vector_dtype"] in ("f16", "i8", "f32"), "use f16, i8 or f32"),
        ("ocr", values["ocr"] in ("on", "off"), "use on or off"),
        ("max_pdf_pages", values["max_pdf_pages"] >= 1, "must be at least 1"),
        ("max_image_tokens", values["max_image_tokens"] is None
         or values["max_image_tokens"] >= 4, "must be at least 4"),
        ("pdf_timeout", values["pdf_timeout"] > 0, "must be positive"),
        ("dims", values["dims"] is None or values["dims"] >= 8, "must be at least 8"),
        ("threads", values["threads"] is None or values["threads"] >= 1, "must be at least 1"),
        ("port", 0 <= values["port"] <= 65535, "must be a TCP port"),
        ("reconcile_every", values["reconcile_every"] >= 5, "must be at least 5 seconds"),
    ]
    for name, ok, why in checks:
        if not ok:
            raise ConfigError(f"{name}={values[name]!r}: {why}")
    # absolute from here on: status, daemon.json and `vaultlens mcp` compare vaults by path,
    # and `--vault .` must name the same vault as its full path
    values["vault"] = vault.resolve()
    values["ocr"] = values["ocr"] == "on"
    return Config(**values)
