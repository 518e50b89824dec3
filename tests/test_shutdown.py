"""How `vaultlens serve` starts and ends: a signal in the middle of a cold index ends the process
cleanly and loses nothing; a port in use is one clear line, said before anything starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import pytest

import fault_bench
from served import free_port

pytestmark = pytest.mark.slow


def serve(vault: Path, data: Path, port: int, log: Path, model: str
          ) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "vaultlens", "serve", "--vault", str(vault), "--data-dir",
             str(data), "--model", model, "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT)


def index(vault: Path, data: Path, model: str) -> None:
    subprocess.run([sys.executable, "-m", "vaultlens", "index", "--vault", str(vault),
                    "--data-dir", str(data), "--model", model], check=True,
                   capture_output=True, timeout=600)


def test_sigint_during_a_cold_index_ends_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    # notes are read while the indexing model loads: a stop then must not wait for all of
    # them to be embedded (on a busy machine it used to, past its 8 s, and the catalog was
    # closed under the indexing thread: tracebacks, then SIGABRT at exit)
    model = "minilm"
    vault = fault_bench.make_vault(tmp_path / "vault", notes=300)
    data, log, port = tmp_path / "data", tmp_path / "serve.log", free_port()
    proc = serve(vault, data, port, log, model)
    try:
        deadline = time.monotonic() + 120
        while True:  # up, and indexing
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(20)  # raises if it is still there after 20 s
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code in (0, 130), text
    assert "Traceback" not in text and "terminate called" not in text, text
    assert "did not stop" not in text, text  # it stopped within one model call
    index(vault, data, model)  # a restart finishes the job
    index(vault, tmp_path / "clean", model)
    got = fault_bench.items(data / "catalog.sqlite")
    assert got == fault_bench.items(tmp_path / "clean" / "catalog.sqlite")
    assert len(got) == len(set(got)) and len(got) >= 900


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "vaultlens", "serve", "--vault", str(vault), "--data-dir",
             str(tmp_path / "data"), "--model", "minilm", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")})
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"port {port} on 127.0.0.1 is in use by another program" in proc.stderr
        assert "--port" in proc.stderr
        # a vaultlens daemon of another vault holds it: say which
        other = tmp_path / "xdg" / "vaultlens" / "Other-0123456789"
        other.mkdir(parents=True)
        (other / "daemon.json").write_text(json.dumps(
            {"pid": os.getpid(), "port": port, "vault": "/home/me/Other"}))
        proc = subprocess.run(
            [sys.executable, "-m", "vaultlens", "serve", "--vault", str(vault), "--data-dir",
             str(tmp_path / "data"), "--model", "minilm", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")})
        assert proc.returncode == 1, proc.stderr
        assert "by the vaultlens daemon of /home/me/Other" in proc.stderr
    assert not (tmp_path / "data" / "catalog.sqlite").exists()  # nothing started
