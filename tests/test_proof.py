"""The token goes only to a daemon that proved it holds it (serve/proof.py): `vaultlens open`
and `vaultlens mcp` never hand it to whatever else listens on the port."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from inprocess_api import Client, open_api
from vaultlens.cli import main
from vaultlens.index.datadir import DataDir
from vaultlens.serve.mcp_stdio import running_daemon
from vaultlens.serve.proof import fresh_nonce, proof, proves

MakeVault = Callable[[dict[str, str | bytes]], Path]


async def test_health_proves_the_token_for_a_fresh_nonce(
        aiohttp_client: Client, make_vault: MakeVault, tmp_path: Path) -> None:
    api = await open_api(aiohttp_client, make_vault({"a.md": "tides"}), tmp_path / "data")
    nonce = fresh_nonce()
    resp = await api.client.get("/api/health", params={"nonce": nonce})  # no token sent
    answer = await resp.json()
    assert resp.status == 200 and answer["ok"] is True
    assert proves(answer, api.token, nonce)
    assert not proves(answer, api.token + "x", nonce)  # another vault's token
    assert not proves(answer, api.token, fresh_nonce())  # an old answer to a new nonce
    for bad in ("", "xyz", "ab" * 100):  # not 32 to 128 hex digits: no proof at all
        resp = await api.client.get("/api/health", params={"nonce": bad})
        assert "proof" not in await resp.json()


class Impostor:
    """Something else on the port: it answers health like a daemon, without the proof, and
    records every request it is sent."""

    def __init__(self, prove_with: str | None = None) -> None:
        self.seen: list[str] = []
        seen, token = self.seen, prove_with

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(f"{self.path} {dict(self.headers)}")
                answer: dict[str, Any] = {"ok": True, "version": "9", "vault": "x"}
                nonce = self.path.partition("nonce=")[2]
                if token is not None and (made := proof(token, nonce)):
                    answer["proof"] = made
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def impostor() -> Iterator[Impostor]:
    it = Impostor()
    yield it
    it.server.shutdown()


def test_open_hands_the_token_to_no_impostor(tmp_path: Path, impostor: Impostor,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    vault, data = tmp_path / "vault", tmp_path / "data"
    vault.mkdir()
    token = DataDir(data).token()
    args = ["open", "--vault", str(vault), "--data-dir", str(data), "--print"]
    assert main(args) == 1  # no daemon.json: nothing is ours
    out, err = capsys.readouterr()
    assert token not in out and "no daemon serves" in err and "vaultlens serve" in err
    DataDir(data).write_daemon_info(impostor.port, str(vault))  # our pid, another's port
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert token not in out and "no daemon serves" in err
    assert impostor.seen and not any(token in r for r in impostor.seen)


def test_open_prints_the_address_of_a_daemon_that_proved_itself(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vault, data = tmp_path / "vault", tmp_path / "data"
    vault.mkdir()
    token = DataDir(data).token()
    daemon = Impostor(prove_with=token)  # answers as only the holder of the token can
    try:
        DataDir(data).write_daemon_info(daemon.port, str(vault))
        assert main(["open", "--vault", str(vault), "--data-dir", str(data), "--print"]) == 0
        out, err = capsys.readouterr()
        assert out.strip() == f"http://127.0.0.1:{daemon.port}/#token={token}" and not err
    finally:
        daemon.server.shutdown()


async def test_mcp_sends_no_token_to_an_impostor(tmp_path: Path, impostor: Impostor) -> None:
    data = DataDir(tmp_path / "data")
    token = data.token()
    data.write_daemon_info(impostor.port, "x")
    assert await running_daemon(data, "x") is None  # it answers in-process instead
    assert impostor.seen and not any(token in r for r in impostor.seen)
