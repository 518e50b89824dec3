"""`vaultlens serve` as a real process: live indexing of a pasted screenshot, renames and
deletes followed, and SIGTERM obeyed within 10 s."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from indexing import screenshot
from served import Client, free_port

pytestmark = pytest.mark.slow


def test_serve_follows_the_vault(tmp_path: Path) -> None:
    vault, data = tmp_path / "vault", tmp_path / "data"
    (vault / "Attachments").mkdir(parents=True)
    (vault / "Home.md").write_text("# Home\n\nA note about the garden and its tomatoes.\n")
    port = free_port()
    cmd = [sys.executable, "-m", "vaultlens", "serve", "--vault", str(vault), "--data-dir",
           str(data), "--model", "minilm", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        token = subprocess.run([sys.executable, "-m", "vaultlens", "token", "--vault",
                                str(vault), "--data-dir", str(data)], capture_output=True,
                               text=True, check=True).stdout.strip()
        client = Client(port, token)

        def up() -> bool:
            try:
                return bool(client.call("/api/status")["ok"])
            except (urllib.error.URLError, ConnectionError, AssertionError):
                return False

        client.wait_for(up, "the daemon to answer")
        client.wait_for(lambda: "Home.md" in client.paths("garden tomatoes"), "Home.md")

        # a paste: the screenshot and the note that embeds it
        (vault / "Attachments" / "Pasted image 20240101123456.png").write_bytes(
            screenshot("OSPREY MIGRATION"))
        (vault / "Birds.md").write_text(
            "# Birds\n\nCounts from the estuary walk.\n\n![[Pasted image 20240101123456.png]]\n")
        client.wait_for(lambda: "Birds.md" in client.paths("estuary walk counts"), "the note")
        client.wait_for(
            lambda: "Attachments/Pasted image 20240101123456.png" in client.paths(
                "osprey migration"), "the screenshot, by the words inside it")

        # rename and delete: the index follows
        (vault / "Birds.md").rename(vault / "Estuary birds.md")
        client.wait_for(lambda: "Estuary birds.md" in client.paths("estuary walk counts")
                        and "Birds.md" not in client.paths("estuary walk counts"), "the rename")
        (vault / "Home.md").unlink()
        client.wait_for(lambda: "Home.md" not in client.paths("garden tomatoes"), "the delete")

        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        assert time.monotonic() - start < 10 and code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0] if proc.stdout else ""
        print(output[-3000:])
    assert "Running on http://127.0.0.1" in output
