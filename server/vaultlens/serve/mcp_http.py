"""MCP over Streamable HTTP at ``/mcp`` in the daemon, and the in-process tools backend.

The SDK's session manager runs stateless with JSON answers, behind the same Host, Origin and
token guards as the API. aiohttp is not ASGI, so a small bridge hands each request to the
SDK's ASGI app. The tools call the daemon's service (``queries.py``) in-process, here and in
``vaultlens mcp`` when no daemon runs.

The SDK is imported once the daemon's query model is in, not at start: importing it takes
most of a second of CPU, which the first searches with vectors would wait for. A request
to /mcp before then waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from vaultlens.errors import Invalid
from vaultlens.serve.daemon import DAEMON, Daemon
from vaultlens.serve.queries import Queries

log = logging.getLogger(__name__)


class McpEndpoint:
    """The MCP server over this daemon, built on first need, and the SDK's session manager
    running from then on for the daemon's life."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._asgi: Any = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def asgi(self) -> Any:
        async with self._lock:
            if self._asgi is None:
                loop = asyncio.get_running_loop()
                # the SDK's import is most of the work: off the event loop
                server, asgi = await loop.run_in_executor(None, self._build)
                # the manager's task group must be left in the task that entered it; aiohttp
                # answers requests in tasks of their own, so it runs in a task of its own
                started = asyncio.Event()

                async def run() -> None:
                    async with server.session_manager.run():
                        started.set()
                        await self._stop.wait()

                self._task = asyncio.create_task(run(), name="vaultlens-mcp")
                waiter = asyncio.create_task(started.wait())
                await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if self._task.done():  # it failed to start: say why
                    waiter.cancel()
                    self._task.result()
                self._asgi = asgi
            return self._asgi

    def _build(self) -> tuple[Any, Any]:
        from mcp.server.transport_security import TransportSecuritySettings

        from vaultlens.serve.tools import build_server

        server = build_server(Queries(self.daemon))  # the tools call the service in-process
        # Host and Origin are checked by our own guard, with the real port, before this runs
        asgi = server.streamable_http_app(
            streamable_http_path="/mcp", json_response=True, stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        return server, asgi

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


MCP = web.AppKey("mcp", McpEndpoint)


async def mcp_context(app: web.Application) -> AsyncIterator[None]:
    """/mcp for the daemon's life: built once the query model is in (or on the first request,
    if that comes first)."""
    endpoint = app[MCP] = McpEndpoint(app[DAEMON])

    async def build_when_ready() -> None:
        loop = asyncio.get_running_loop()
        while not await loop.run_in_executor(None, endpoint.daemon.ready.wait, 1.0):
            pass
        try:
            await endpoint.asgi()
        except Exception:  # said now; each /mcp request tries again and answers with why
            log.exception("the MCP endpoint failed to start")

    early = asyncio.create_task(build_when_ready(), name="vaultlens-mcp-build")
    yield
    early.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await early
    await endpoint.close()


async def mcp_view(request: web.Request) -> web.StreamResponse:
    """Streamable HTTP MCP: the request handed to the SDK's ASGI app. What is not JSON gets
    the API's error shape; malformed JSON-RPC gets the protocol's own error from the SDK."""
    if request.content_type != "application/json":
        raise Invalid("MCP messages are JSON-RPC sent as application/json")
    return await call_asgi(await request.app[MCP].asgi(), request)


async def call_asgi(asgi: Any, request: web.Request) -> web.StreamResponse:
    body = await request.read()
    peer = request.transport.get_extra_info("peername") if request.transport else None
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": request.method, "scheme": "http", "root_path": "",
        "path": request.path, "raw_path": request.raw_path.split("?")[0].encode(),
        "query_string": request.query_string.encode(),
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": tuple(peer[:2]) if peer else None, "server": None,
    }
    finished = asyncio.Event()
    delivered = False
    response: web.StreamResponse | None = None

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()  # a streaming answer ends when the app ends, not before
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal response
        if message["type"] == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for k, v in message.get("headers", []):
                response.headers.add(k.decode("latin-1"), v.decode("latin-1"))
            await response.prepare(request)
        elif message["type"] == "http.response.body" and response is not None:
            await response.write(message.get("body", b""))
            if not message.get("more_body"):
                await response.write_eof()

    try:
        await asgi(scope, receive, send)
    finally:
        finished.set()
    if response is None:
        raise Invalid("the MCP endpoint gave no answer")
    return response
