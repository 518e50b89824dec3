"""Memory that goes back down: the daemon indexes with a text model without importing torch
(the model runs in a worker process that ends when idle: test_query_worker.py), and gives
back what a run freed once indexing is idle."""

from __future__ import annotations

import platform
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import write_vault
from vaultlens.index.report import Progress, Summary
from vaultlens.serve import indexing
from vaultlens.serve.indexing import IndexService

SCRIPT = """
import sys
from pathlib import Path
from vaultlens.config import Config
from vaultlens.serve.daemon import Daemon
from vaultlens.workspace import open_workspace

vault = Path(sys.argv[1])
cfg = Config(vault=vault, data_dir=vault.parent / "data", model=sys.argv[2], ocr=False)
ws = open_workspace(cfg, writer=True)
daemon = Daemon.open(ws, 600.0, 1)
indexer = daemon.service.indexer
summary = indexer.run()
worker = getattr(getattr(daemon, "indexing_model", None), "pid", None)
print(summary.indexed, len(ws.vectors), "torch" in sys.modules, worker is not None)
indexer.close()
daemon.close()
ws.close()
"""


@pytest.mark.slow
@pytest.mark.parametrize("model", ["e5-small", "minilm"])
def test_the_daemon_indexes_with_a_text_model_without_importing_torch(
        tmp_path: Path, model: str) -> None:
    """The daemon's indexer, as the daemon builds it, embeds a vault: vectors are stored,
    the model that made them runs in a worker process, and torch is never imported in the
    daemon's own process (a separate Python: this one has torch from other tests)."""
    vault = write_vault(tmp_path / "vault", {
        "Garden.md": "# Garden\n\nTomatoes need sun and water every morning.\n",
        "Sync.md": "# Sync\n\nExclude a folder from selective sync in the settings.\n"})
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(vault), model],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    indexed, vectors, torch, worker = out.stdout.split()[-4:]
    assert int(indexed) == 2 and int(vectors) >= 2
    assert torch == "False" and worker == "True"


class Quiet:
    """An indexer with nothing to do: each run ends at once."""

    def __init__(self) -> None:
        self.runs = 0

    def prepare(self) -> None: ...
    def observe(self, progress: object) -> None: ...
    def catalog_deleted(self) -> bool: return False
    def urgent_waiting(self) -> int: return 0
    def progress(self) -> Progress: return Progress(0, 0, "")
    def stop(self) -> None: ...
    def save_vectors(self) -> None: ...
    def close(self) -> None: ...

    def run(self) -> Summary:
        self.runs += 1
        return Summary(model="m", visual=False)


def test_freed_memory_is_given_back_once_indexing_is_idle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    given = threading.Event()
    monkeypatch.setattr(indexing, "give_back", lambda: given.set() or True)
    service = IndexService(Quiet(), 600.0)  # type: ignore[arg-type]
    service.start()
    try:
        assert service.wait_idle(10)
        assert given.wait(5)
    finally:
        service.stop(5)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_on_glibc_the_heaps_are_trimmed() -> None:
    assert indexing.give_back() is True
