"""Shared fixtures. ../shared (real vaults, corpus) is optional: tests that need it skip."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from browsing import CHROMIUM
from vaultlens.config import Config
from vaultlens.vault.notes import Note, NoteParser
from vaultlens.workspace import Workspace, open_workspace

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is only on developer machines and CI)")
    return path


@pytest.fixture(scope="session")
def parser() -> NoteParser:
    return NoteParser()


@pytest.fixture
def parse(parser: NoteParser) -> Callable[..., Note]:
    def run(text: str, path: str = "note.md") -> Note:
        return parser.parse(text, path)

    return run


def write_vault(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write {relative path: content} under ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def indexed_reader(root: Path) -> Workspace:
    """The vault at ``root`` indexed (MiniLM, no OCR, data dir beside it), opened read-only
    as a daemon's searches open it. The caller closes it."""
    cfg = Config(vault=root, data_dir=root.parent / "data", model="minilm", ocr=False)
    writer = open_workspace(cfg, writer=True)
    writer.update()
    writer.close()
    return open_workspace(cfg, writer=False)


@pytest.fixture
def make_vault(tmp_path: Path) -> Callable[[dict[str, str | bytes]], Path]:
    """Write {relative path: content} under a temp vault and return its root."""
    return lambda files: write_vault(tmp_path / "vault", files)


@pytest.fixture(scope="session")
def tiny_qwen_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (random, tiny) Qwen3-VL model folder for the real loading code."""
    from tiny_qwen import build

    return build(tmp_path_factory.mktemp("tiny-qwen3-vl"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium for the page tests (mark them browsing.needs_chromium)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "VAULTLENS_BROWSER=required, but no chromium is installed"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()
