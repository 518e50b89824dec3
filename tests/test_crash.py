"""SIGKILL in the middle of indexing, then run again: nothing lost, nothing doubled, nothing
that was finished embedded again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vaultlens.config import Config
from vaultlens.workspace import open_workspace

pytestmark = pytest.mark.slow

NOTES = 240


def write_vault(root: Path) -> None:
    for i in range(NOTES):
        folder = root / f"Area {i % 6}"
        folder.mkdir(parents=True, exist_ok=True)
        paragraphs = [f"# Note {i}"] + [
            f"Paragraph {j} of note {i} talks about topic {i * 7 + j} and its details."
            for j in range(4)
        ]
        (folder / f"Note {i}.md").write_text("\n\n".join(paragraphs) + "\n")


def committed(catalog: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute(
                "SELECT COUNT(*) FROM files WHERE status = 'indexed'").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def index_cmd(vault: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "vaultlens", "index", "--vault", str(vault), "--data-dir",
            str(data), "--model", "minilm", "--json"]


def test_sigkill_then_resume(tmp_path: Path) -> None:
    vault, data = tmp_path / "vault", tmp_path / "data"
    write_vault(vault)
    proc = subprocess.Popen(index_cmd(vault, data), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while committed(data / "catalog.sqlite") < NOTES // 4:
        assert proc.poll() is None, "the indexer finished before it could be killed"
        assert time.monotonic() < deadline, "the indexer made no progress"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = committed(data / "catalog.sqlite")
    assert 0 < done_before < NOTES

    second = subprocess.run(index_cmd(vault, data), capture_output=True, text=True,
                            timeout=300, check=True)
    summary = json.loads(second.stdout)
    assert summary["indexed"] == NOTES - done_before  # what was done is not done again
    assert summary["unchanged"] == done_before
    assert summary["embedded"] <= (NOTES - done_before) * 4

    conn = sqlite3.connect(data / "catalog.sqlite")
    paths = {r[0] for r in conn.execute("SELECT path FROM files WHERE status = 'indexed'")}
    assert paths == {str(p.relative_to(vault)) for p in vault.rglob("*.md")}
    items, distinct = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT file_id || ':' || start_line) FROM items").fetchone()
    assert items == distinct == NOTES * 4  # no duplicate, no lost item
    conn.close()
    ws = open_workspace(Config(vault=vault, data_dir=data, model="minilm"), writer=False)
    try:
        assert len(ws.vectors) == items  # one vector per item, no stale keys
    finally:
        ws.close()
