"""Where a vault's index lives: outside the vault (sync tools must never see it), one folder
per vault, this user's alone (0700, its files 0600: see private.py), with a lock so that only
one process writes it at a time."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import IO, Any

from vaultlens.errors import VaultlensError
from vaultlens.index.private import atomic_write, create_private, private_dir, tighten

TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")


class DataDirError(VaultlensError, RuntimeError):
    pass


def default_root() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vaultlens"


def data_dir_for(vault: Path, override: Path | None = None) -> Path:
    """``override`` as given, else ``$XDG_DATA_HOME/vaultlens/<vault name>-<hash of path>``."""
    vault = vault.resolve()
    if override is not None:
        folder = override.expanduser().resolve()
    else:
        tag = hashlib.sha256(str(vault).encode()).hexdigest()[:10]
        folder = default_root() / f"{vault.name or 'vault'}-{tag}"
    if folder == vault or vault in folder.parents:
        raise DataDirError(f"{folder}: the data directory must be outside the vault {vault}")
    return folder


def daemon_info(folder: Path) -> dict[str, Any] | None:
    """What a running daemon wrote in ``folder``'s daemon.json (pid, port, vault); None when
    none was written or it has gone. Reads only: any data dir may be asked, never changed."""
    try:
        info = json.loads((folder / "daemon.json").read_text())
        os.kill(int(info["pid"]), 0)  # raises when no such process is alive
        int(info["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if isinstance(info, dict) else None


def served_by(info: dict[str, Any]) -> str:
    """What to tell someone who would start a second writer while a daemon serves the vault:
    where it listens, and how to reach it."""
    vault = info.get("vault", "this vault")
    return (f"a vaultlens daemon (pid {info['pid']}) already serves {vault} at "
            f"http://127.0.0.1:{info['port']}/ and keeps its index fresh: "
            f"`vaultlens status --vault {vault}` shows it, and `vaultlens open --vault "
            f"{vault}` opens its page")


class DataDir:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        private_dir(folder)
        tighten(folder)  # one written by an older vaultlens was 0755, its files 0644
        self.catalog = folder / "catalog.sqlite"
        self.vectors = folder / "vectors.usearch"
        self.thumbs = folder / "thumbs"
        self._lock: IO[str] | None = None

    def lock(self) -> None:
        """Take the writer lock, or fail at once with who holds it."""
        fd = create_private(self.folder / "writer.lock", os.O_RDWR | os.O_APPEND)
        fh = os.fdopen(fd, "a+")  # held until unlock()
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            info = self.daemon_info()
            if info is not None:
                raise DataDirError(f"{self.folder}: {served_by(info)}; it alone writes "
                                   "this index") from exc
            raise DataDirError(f"{self.folder}: already being written by {holder}") from exc
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._lock = fh

    def unlock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def token(self) -> str:
        """The API's bearer token: made on first use, readable by this user only (0600). A
        token file that is empty or malformed (a crash or a full disk between create and write)
        is replaced: an empty token must never match an empty header."""
        path = self.folder / "token"
        for _ in range(3):
            try:
                found = path.read_text(encoding="ascii", errors="replace").strip()
            except FileNotFoundError:
                found = None
            if found is not None and TOKEN.fullmatch(found):
                return found
            tmp = self.folder / f".token-{os.getpid()}-{secrets.token_hex(4)}"
            fd = create_private(tmp, os.O_WRONLY | os.O_EXCL)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                if found is None:
                    os.link(tmp, path)  # whole or not at all, and never over a racing winner
                else:
                    os.replace(tmp, path)
            except FileExistsError:
                pass  # another process made it first: read theirs
            finally:
                tmp.unlink(missing_ok=True)
        raise DataDirError(f"{path}: cannot make a valid token file")

    def restore_token(self, token: str) -> None:
        """Write back the token a running daemon holds, when its file went (with the data
        dir): `vaultlens token` must keep printing the one the daemon accepts."""
        path = self.folder / "token"
        if path.exists():
            return
        tmp = self.folder / f".token-{os.getpid()}-{secrets.token_hex(4)}"
        fd = create_private(tmp, os.O_WRONLY | os.O_EXCL)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)

    def thumb_path(self, key: str) -> Path:
        return self.thumbs / key[:2] / f"{key}.webp"

    def save_thumb(self, key: str, data: bytes) -> None:
        path = self.thumb_path(key)
        private_dir(path.parent)
        atomic_write(path, data)

    # where a running daemon listens, so that `vaultlens mcp` can talk to it ------------------
    def write_daemon_info(self, port: int, vault: str) -> None:
        info = {"pid": os.getpid(), "port": port, "vault": vault}
        atomic_write(self.folder / "daemon.json", json.dumps(info).encode())

    def daemon_info(self) -> dict[str, Any] | None:
        """The running daemon's pid and port; None when none was written or it has gone."""
        return daemon_info(self.folder)

    def clear_daemon_info(self) -> None:
        try:
            info = json.loads((self.folder / "daemon.json").read_text())
            if info.get("pid") == os.getpid():
                (self.folder / "daemon.json").unlink()
        except (OSError, ValueError, AttributeError):
            pass
