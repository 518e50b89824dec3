"""The data dir is this user's alone: its folders 0700, its files 0600.

The index holds the vault's text (notes, OCR, PDF pages) and pictures (thumbnails), so it must
be no more readable than a private vault. Every file is created with its final mode (os.open
with 0o600, then fchmod, so that neither a lax umask nor one that takes the owner's bits
changes it): no file is readable by others even for a moment. The process's umask is left
alone: it is process-wide, and the daemon's threads, children and libraries share it. SQLite
gives a database's -wal, -shm and -journal files the mode of the database file itself, so a
catalog created 0600 has 0600 companions.

A data dir with laxer modes (an older vaultlens made it 0755 and its files 0644) is tightened
when it is opened. The thumbnails are many, so they are gone over only while their folder is
not 0700, and that folder's mode is set last: an interrupted pass is done again next time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from pathlib import Path

log = logging.getLogger(__name__)
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# what vaultlens writes in a data dir: only these are tightened (a --data-dir given by hand may
# hold other things, which are not ours to change)
OURS = ("catalog.sqlite", "vectors.", "token", ".token-", "daemon.json", "writer.lock")
THUMBS = "thumbs"


def create_private(path: Path, flags: int = os.O_WRONLY | os.O_TRUNC) -> int:
    """Open ``path`` for writing, created 0600 if absent, and 0600 whatever it was; returns
    the descriptor. Never follows a link at ``path``."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_dir(path: Path) -> None:
    """Make the folder ``path`` 0700 if it is missing, with any missing parents (a data dir
    deleted under a running daemon comes back private). An existing folder is left as it is:
    see :func:`tighten`."""
    try:
        os.mkdir(path, PRIVATE_DIR)
    except FileExistsError:
        return
    except FileNotFoundError:
        private_dir(path.parent)
        try:
            os.mkdir(path, PRIVATE_DIR)
        except FileExistsError:
            return
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode passes through the umask


def private_database(path: Path) -> None:
    """A SQLite database 0600 before SQLite opens it (made empty if absent): SQLite gives its
    -wal, -shm and -journal files the database's mode. Those an older vaultlens left are
    tightened. Quiet when it cannot: SQLite then says why it cannot open the file."""
    with contextlib.suppress(OSError):
        os.close(create_private(path, os.O_RDWR))
    for suffix in ("-wal", "-shm", "-journal"):
        restrict(Path(f"{path}{suffix}"))


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (temp file, fsync, rename), mode 0600."""
    # a name of its own per thread: two extraction threads may save the same thumbnail
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with os.fdopen(create_private(tmp), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _set(path: Path, mode: int, st: os.stat_result) -> None:
    if stat.S_IMODE(st.st_mode) == mode:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:  # not ours (made by another user), or a read-only disk
        log.warning("%s: cannot make it private (%s)", path, exc.strerror or exc)


def restrict(path: Path) -> None:
    """Make an existing file 0600 (a file of an older vaultlens); nothing if it is absent."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode):
        _set(path, PRIVATE_FILE, st)


def _tighten_tree(folder: Path) -> None:
    """Every folder under ``folder`` 0700 and every file 0600; ``folder`` itself last."""
    for entry in os.scandir(folder):
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _tighten_tree(Path(entry.path))
        elif stat.S_ISREG(st.st_mode):
            _set(Path(entry.path), PRIVATE_FILE, st)
    _set(folder, PRIVATE_DIR, os.stat(folder, follow_symlinks=False))


def tighten(folder: Path) -> None:
    """Bring a data dir to 0700 and the files vaultlens makes in it to 0600. Cheap when it
    already is: a dozen files, and the thumbnails only while their folder is not 0700. Links
    are never followed."""
    st = os.stat(folder)
    for entry in os.scandir(folder):
        est = entry.stat(follow_symlinks=False)
        if entry.name == THUMBS and stat.S_ISDIR(est.st_mode):
            if stat.S_IMODE(est.st_mode) != PRIVATE_DIR:
                _tighten_tree(Path(entry.path))
        elif stat.S_ISREG(est.st_mode) and entry.name.startswith(OURS):
            _set(Path(entry.path), PRIVATE_FILE, est)
    _set(folder, PRIVATE_DIR, st)
