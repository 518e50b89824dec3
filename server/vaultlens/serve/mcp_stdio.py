"""``vaultlens mcp``: MCP over stdio, for Claude Desktop and editors.

When a daemon serves the vault (``daemon.json`` in the data dir names its port), the tools call
it over HTTP with the token. Otherwise this process opens the index itself, keeps it up to date
while it holds the writer lock (read-only when another process holds it), and answers
in-process. Only protocol goes to stdout: file descriptor 1 is pointed at stderr for everything
else, C libraries and child processes included.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
from aiohttp import web
from mcp.server.stdio import stdio_server

from vaultlens.config import Config
from vaultlens.index.datadir import DataDir, DataDirError, data_dir_for
from vaultlens.serve.answers import Found, Packed, Read, Similar, read_from_json
from vaultlens.serve.app import make_app
from vaultlens.serve.daemon import DAEMON
from vaultlens.serve.proof import fresh_nonce, proves
from vaultlens.serve.queries import Queries
from vaultlens.serve.requests import (
    ContextRequest,
    ReadRequest,
    SearchRequest,
    SimilarRequest,
    StatusRequest,
    as_body,
)
from vaultlens.serve.tools import Backend, BackendError, build_server
from vaultlens.serve.tuning import Tuning

log = logging.getLogger(__name__)


class HttpBackend:
    """The tools' answers from a running daemon, over its API: the same requests, sent as the
    API's JSON, and its answers read back into the service's types."""

    def __init__(self, base: str, token: str, timeout: float = 60.0) -> None:
        self.base = base
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=timeout))

    async def search(self, request: SearchRequest) -> Found:
        return Found.from_json(await self._call("search", as_body(request)))

    async def context(self, request: ContextRequest) -> Packed:
        return Packed.from_json(await self._call("context", as_body(request)))

    async def read(self, request: ReadRequest) -> Read:
        return read_from_json((await self._call("read", as_body(request)))["read"])

    async def similar(self, request: SimilarRequest) -> Similar:
        return Similar.from_json(await self._call("similar", as_body(request)))

    async def status(self, request: StatusRequest | None = None) -> dict[str, Any]:
        return await self._call("status", None)

    async def _call(self, resource: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """The API's answer (without ``ok``); None for a body: a GET."""
        try:
            if body is None:
                request = self._session.get(f"{self.base}/api/{resource}")
            else:
                request = self._session.post(f"{self.base}/api/{resource}", json=body)
            async with request as resp:
                answer: dict[str, Any] = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise BackendError(f"the vaultlens daemon at {self.base} did not answer "
                               f"({type(exc).__name__}: {exc})") from exc
        if not answer.get("ok"):
            raise BackendError(answer.get("error", {}).get("message", "the daemon failed"))
        answer.pop("ok")
        return answer

    async def close(self) -> None:
        await self._session.close()


async def running_daemon(data: DataDir, vault: str) -> str | None:
    """The base URL of a daemon serving this vault, if one answers."""
    info = data.daemon_info()
    if info is None:
        return None
    base = f"http://127.0.0.1:{int(info['port'])}"
    token, nonce = data.token(), fresh_nonce()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
            # the token is sent only once the listener proved it holds it (proof.py)
            async with session.get(f"{base}/api/health", params={"nonce": nonce}) as resp:
                health = await resp.json(content_type=None)
            if not proves(health, token, nonce):
                log.warning("vaultlens mcp: what listens on %s is not this vault's daemon", base)
                return None
            async with session.get(f"{base}/api/status",
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
                status = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return base if status.get("ok") and status.get("vault") == vault else None


@contextlib.asynccontextmanager
async def backend_for(cfg: Config, tuning: Tuning | None = None) -> AsyncIterator[Backend]:
    """The daemon that serves this vault, or one of our own (``tuning``: the process's
    settings for it, decided by the entry point)."""
    data = DataDir(data_dir_for(cfg.vault, cfg.data_dir))
    base = await running_daemon(data, str(cfg.vault.resolve()))
    if base is not None:
        log.info("vaultlens mcp: using the daemon at %s", base)
        http = HttpBackend(base, data.token())
        try:
            yield http
        finally:
            await http.close()
        return
    try:
        app = make_app(cfg, writer=True, tuning=tuning)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
    except DataDirError as exc:
        log.warning("vaultlens mcp: %s; serving the index read-only", exc)
        app = make_app(cfg, writer=False, tuning=tuning)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
    try:
        yield Queries(app[DAEMON])
    finally:
        await runner.cleanup()


def run_stdio(cfg: Config, tuning: Tuning) -> None:
    """Serve MCP on stdin/stdout until the client closes them. ``tuning``: the process's
    settings, decided by the entry point (held while a daemon of our own runs)."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n", buffering=1)
    os.dup2(2, 1)  # anything else written to stdout (a C library, a child) goes to stderr
    sys.stdout = sys.stderr

    async def main() -> None:
        async with backend_for(cfg, tuning) as backend:
            server = build_server(backend)
            stdin = anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8"))
            stdout = anyio.wrap_file(protocol)
            async with stdio_server(stdin, stdout) as (read, write):
                lowlevel = server._lowlevel_server  # the SDK's own run_stdio_async does this
                await lowlevel.run(read, write, lowlevel.create_initialization_options())

    asyncio.run(main())
