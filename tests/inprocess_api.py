"""The daemon's app in-process on aiohttp's test client, indexed before a test gets it: the API
tests' small vault, the Api wrapper and the error check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from indexing import screenshot
from vaultlens.config import Config
from vaultlens.index.datadir import DataDir
from vaultlens.serve.app import make_app
from vaultlens.serve.daemon import DAEMON

MakeVault = Callable[[dict[str, str | bytes]], Path]
Client = Callable[..., Any]

VAULT: dict[str, str | bytes] = {
    "Trips/Pier.md": "---\ntags: [travel]\n---\n# Pier\n\nWe watched the storm roll over the "
                     "old pier at night.\n\n![[board.png]]\n\nThe harbour office board.\n",
    "Sync.md": "# Selective sync\n\nTo stop Obsidian Sync from touching a folder, exclude it "
               "in the selective sync settings.\n",
    "Attachments/board.png": screenshot("HARBOUR TIDES"),
}


class Api:
    def __init__(self, client: TestClient, token: str, vault: Path, app: web.Application):
        self.client, self.token, self.vault, self.app = client, token, vault, app

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        resp = await self.client.post(path, json=body, headers=self.headers(), **kw)
        return resp.status, await resp.json()

    async def get(self, path: str) -> tuple[int, Any]:
        resp = await self.client.get(path, headers=self.headers())
        return resp.status, await resp.json()

    async def idle(self) -> None:
        service = self.app[DAEMON].service
        ok = await asyncio.get_running_loop().run_in_executor(None, service.wait_idle, 120)
        assert ok, "indexing did not finish"


async def open_api(aiohttp_client: Client, vault: Path, data: Path, ocr: bool = False) -> Api:
    """A daemon on the vault with MiniLM, indexed before it is handed over."""
    app = make_app(Config(vault=vault, data_dir=data, model="minilm", ocr=ocr), watching=False)
    client = await aiohttp_client(app)
    a = Api(client, DataDir(data).token(), vault, app)
    await a.idle()
    return a


def assert_error(status: int, body: Any, expected: int, code: str) -> None:
    assert status == expected, body
    assert body["ok"] is False and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
