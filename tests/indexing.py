"""A vault indexed in-process (no daemon): the small vault, its screenshot, and a Run that
indexes and searches it again and again. Shared by the index, search and API tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from vaultlens.config import Config
from vaultlens.index.report import Summary
from vaultlens.workspace import Workspace, open_workspace

MakeVault = Callable[[dict[str, str | bytes]], Path]


def screenshot(text: str) -> bytes:
    im = Image.new("RGB", (700, 140), "white")
    ImageDraw.Draw(im).text((20, 50), text, fill="black", font_size=34)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


VAULT: dict[str, str | bytes] = {
    "Trips/Pier.md": "# Pier\n\nWe watched the storm roll over the old pier at night.\n\n"
                     "![[board.png]]\n\nThe board above was in the harbour office.\n",
    "Sync.md": "# Selective sync\n\nTo stop Obsidian Sync from touching a folder, exclude it in "
               "the selective sync settings.\n\n## Other\n\nGraph view shows notes as dots.\n",
    "Attachments/board.png": screenshot("QUARTERLY ZEBRA METRICS"),
}


class Run:
    """Index a vault again and again with the same settings."""

    def __init__(self, vault: Path, data: Path, model: str = "minilm") -> None:
        self.config = Config(vault=vault, data_dir=data, model=model)

    def index(self, **changes: Any) -> Summary:
        ws = open_workspace(Config(**{**self.config.__dict__, **changes}), writer=True)
        indexer = ws.indexer()
        try:
            return indexer.run()
        finally:
            indexer.save_vectors()
            indexer.close()
            ws.close()

    def reader(self, **changes: Any) -> Workspace:
        return open_workspace(Config(**{**self.config.__dict__, **changes}), writer=False)

    def search(self, query: str, **changes: Any) -> list[tuple[str, str, int | None]]:
        ws = self.reader(**changes)
        try:
            return [(h.kind, h.path, h.line) for h in ws.searcher().search(query, 5)]
        finally:
            ws.close()
