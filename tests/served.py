"""A real `vaultlens serve` process on a vault a test writes: for the page, fuzz and kill
tests."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vaultlens.index.datadir import DataDir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def call(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{path}: {exc.code} {exc.read().decode()}") from exc

    def paths(self, query: str) -> list[str]:
        return [r["path"] for r in self.call("/api/search", {"query": query, "k": 5})["results"]]

    def wait_for(self, check: Any, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")

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
