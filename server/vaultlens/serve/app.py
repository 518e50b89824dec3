"""`vaultlens serve`: the app factory, one cleanup context per long-lived resource, and the
runner. Searches are answered from the first second; the reconcile at start catches up in
the background and /api/status shows its progress."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from vaultlens.config import Config
from vaultlens.index.datadir import DataDir, data_dir_for
from vaultlens.serve.api import MAX_UPLOAD_BYTES, errors, guard, register
from vaultlens.serve.daemon import DAEMON, Daemon
from vaultlens.serve.mcp_http import mcp_context
from vaultlens.serve.port import PortInUse, bind
from vaultlens.serve.routes import ROUTES
from vaultlens.serve.tuning import Tuning
from vaultlens.serve.watcher import watch
from vaultlens.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)
WORKSPACE = web.AppKey("workspace", Workspace)
STOP_WITHIN = 8.0  # seconds the indexing thread gets to finish its file on SIGTERM


def make_app(cfg: Config, reconcile_every: float = 600.0, watching: bool = True,
             extra_hosts: tuple[str, ...] = (), writer: bool = True,
             tuning: Tuning | None = None) -> web.Application:
    """The daemon's app. ``writer=False`` serves an index another process writes (no
    indexing, no watcher). ``tuning``: the process's settings, decided by the entry point
    (this machine's when none is given); held while the app runs."""
    token = DataDir(data_dir_for(cfg.vault, cfg.data_dir)).token()
    public = {r.path for r in ROUTES if r.public}
    app = web.Application(middlewares=[errors, guard(token, public, extra_hosts)],
                          client_max_size=MAX_UPLOAD_BYTES + 65536)
    app.cleanup_ctx.append(_workspace(cfg, writer))
    app.cleanup_ctx.append(_daemon(reconcile_every, tuning or Tuning.for_machine()))
    if watching and writer:
        app.cleanup_ctx.append(_watcher)
    app.cleanup_ctx.append(mcp_context)
    register(app, ROUTES)
    return app


def _workspace(cfg: Config, writer: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        ws = await loop.run_in_executor(None, open_workspace, cfg, writer)
        if ws.notice:
            log.warning("%s", ws.notice)
        app[WORKSPACE] = ws
        yield
        daemon = app.get(DAEMON)
        if daemon is None or not daemon.service.alive():  # never close the catalog under it
            ws.close()

    return ctx


def _daemon(reconcile_every: float, tuning: Tuning
            ) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        held = tuning.hold()
        try:
            daemon = await loop.run_in_executor(None, Daemon.open, app[WORKSPACE],
                                                reconcile_every, tuning.search_threads)
        except BaseException:
            held.release()
            raise
        app[DAEMON] = daemon
        daemon.start()
        yield
        ended = await loop.run_in_executor(None, daemon.service.stop, STOP_WITHIN)
        if not ended:
            log.warning("indexing did not stop in %.0f s; vectors are rebuilt at next start",
                        STOP_WITHIN)
        daemon.close()
        held.release()

    return ctx


async def _watcher(app: web.Application) -> AsyncIterator[None]:
    daemon = app[DAEMON]
    stop = asyncio.Event()
    task = asyncio.create_task(watch(daemon.workspace.policy, daemon.service, stop))
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
        await asyncio.wait_for(task, 2)


def _announce(port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """daemon.json in the data dir while we serve: `vaultlens mcp` finds us by it."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        daemon = app[DAEMON]
        daemon.announce(port)
        yield
        daemon.withdraw()

    return ctx


def serve(cfg: Config, host: str, port: int, allow_remote: bool,
          reconcile_every: float, print_: Callable[..., Any] = print,
          tuning: Tuning | None = None) -> None:
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not allow_remote:
        raise SystemExit(f"vaultlens: refusing to listen on {host}: pass --allow-remote "
                         "to serve beyond this machine")
    if not loopback:
        log.warning("listening on %s: anyone who can reach it and has the token can search "
                    "this vault", host)
    try:
        sock = bind(host, port)  # before anything starts: a taken port costs nothing
    except PortInUse as exc:
        raise SystemExit(f"vaultlens: {exc}") from None
    extra = () if loopback else (f"{host}:{port}",)
    app = make_app(cfg, reconcile_every, extra_hosts=extra, tuning=tuning)
    app.cleanup_ctx.append(_announce(port))
    web.run_app(app, sock=sock, shutdown_timeout=2.0, print=print_, access_log=None,
                handle_signals=True)
    left = [t.name for t in threading.enumerate() if t.daemon and t.is_alive()]
    if left:
        # a model call or a model's import still runs in a thread (the indexing thread did
        # not stop in time): finalising the interpreter under native code aborts the process
        # (SIGABRT from a C++ runtime). Every index write is committed, so leave at once.
        log.warning("leaving with %s still running", ", ".join(left))
        logging.shutdown()
        os._exit(0)
