"""The daemon's listening socket, bound before anything starts: a port in use is a one-line
message that says who holds it, never a traceback after indexing began."""

from __future__ import annotations

import errno
import json
import socket
from pathlib import Path

from vaultlens.errors import VaultlensError
from vaultlens.index.datadir import daemon_info, default_root
from vaultlens.serve.proof import LOCAL


class PortInUse(VaultlensError, RuntimeError):
    pass


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); PortInUse with what holds it when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # as aiohttp does: a port left in TIME_WAIT by the last run can be had at once
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno != errno.EADDRINUSE:
            raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        raise PortInUse(f"port {port} on {host} is in use{holder(port)}; pass --port with "
                        f"another (--port {spare(host, port)} is free)") from None
    sock.setblocking(False)
    return sock


def holder(port: int) -> str:
    """What we can tell of the program on ``port``: a vaultlens daemon, and for which vault
    when its data dir is in the default place."""
    for folder in _data_dirs():
        info = daemon_info(folder)
        if info is not None and int(info["port"]) == port:
            return f" by the vaultlens daemon of {info.get('vault', '?')} (pid {info['pid']})"
    try:
        with LOCAL.open(f"http://127.0.0.1:{port}/api/health", timeout=1) as resp:
            answer = json.loads(resp.read(4096))
    except (OSError, ValueError):
        return " by another program"
    if isinstance(answer, dict) and answer.get("ok") and "version" in answer:
        return f" by a vaultlens daemon (version {answer['version']})"
    return " by another program"


def _data_dirs() -> list[Path]:
    try:
        return [p for p in default_root().iterdir()
                if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def spare(host: str, port: int) -> int:
    """A port near ``port`` that is free now (a suggestion; it may be taken by the time it is
    used)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in range(port + 1, min(port + 50, 65536)):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return candidate
    return 0
