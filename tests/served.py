"""A real `vaultlens serve` process on a vault a test writes: for the page, fuzz and kill
tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from test_daemon_e2e import Client, free_port
from vaultlens.index.datadir import DataDir


class Served:
    def __init__(self, vault: Path, data: Path) -> None:
        self.vault, self.data, self.port = vault, data, free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vaultlens", "serve", "--vault", str(vault), "--data-dir",
             str(data), "--model", "minilm", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.token = DataDir(data).token()
        self.api = Client(self.port, self.token)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_up(self) -> None:
        def up() -> bool:
            try:
                return bool(self.api.call("/api/health")["ok"])
            except (OSError, AssertionError):
                return False

        self.api.wait_for(up, "the daemon to listen", timeout=60)

    def wait_idle(self) -> None:
        def idle() -> bool:
            try:
                s = self.api.call("/api/status")
            except (OSError, AssertionError):
                return False
            return bool(s["runs"] >= 1 and not s["indexing"] and s["vector_search_ready"])

        self.api.wait_for(idle, "the first index", timeout=180)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


@contextmanager
def serving(vault: Path, data: Path) -> Iterator[Served]:
    """A daemon on ``vault``, indexed before it is handed over, stopped after."""
    daemon = Served(vault, data)
    try:
        daemon.wait_idle()
        yield daemon
    finally:
        daemon.stop()
