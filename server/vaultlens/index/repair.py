"""When the data dir goes wrong under a running daemon: what happened, and what can be saved.

- Deleted (the folder or the catalog file): the open connection still reads the unlinked
  file, so everything in it, caches included, is copied to a new file at the same path.
- Damaged (truncated, overwritten): the file is set aside for a post-mortem and the index is
  rebuilt from the vault.
- Full or read-only: nothing to repair; the transaction in hand rolls back, and the indexer
  tries again later.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from pathlib import Path

from vaultlens.index.catalog import Catalog
from vaultlens.index.private import private_database, private_dir

_DAMAGED = ("malformed", "not a database", "disk image", "file is encrypted")


def classify(exc: BaseException) -> str | None:
    """'damaged', 'full' or 'read-only' for a storage failure; None for anything else."""
    message = str(exc).lower()
    code = getattr(exc, "errno", None)
    if isinstance(exc, sqlite3.DatabaseError) and any(d in message for d in _DAMAGED):
        return "damaged"
    if "disk is full" in message or code == errno.ENOSPC:
        return "full"
    if "readonly" in message or "read-only" in message or code in (errno.EROFS, errno.EACCES):
        return "read-only"
    return None


def deleted(catalog: Catalog) -> bool:
    """Whether the catalog's file is gone from its path, or replaced by another file."""
    try:
        st = os.stat(catalog.path)
    except FileNotFoundError:
        return True
    return (st.st_dev, st.st_ino) != catalog.identity


def rescue(catalog: Catalog) -> None:
    """Copy what the open (unlinked) catalog holds to a new file at its path, atomically."""
    private_dir(catalog.path.parent)
    tmp = catalog.path.with_name(catalog.path.name + ".rescue")
    tmp.unlink(missing_ok=True)
    private_database(tmp)  # 0600 before SQLite writes it (and its journal) there
    dest = sqlite3.connect(tmp)
    try:
        catalog._conn.backup(dest)
    finally:
        dest.close()
    os.replace(tmp, catalog.path)


def set_aside(path: Path) -> Path:
    """Move a damaged catalog (and its WAL) out of the way; returns where it went."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{aside}{suffix}"))
    return aside
