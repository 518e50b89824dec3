"""One setting of the SQLite library itself, made when a vaultlens process starts.

SQLite keeps process-wide memory statistics, and every allocation updates them under one
global mutex (on by default; Debian's build also has no lookaside memory, so every small
allocation takes that mutex). Each search thread has its own connection, yet the mutex made
them take turns: two threads ranking with FTS5 did the work of one, where two processes did
the work of two (``bench/sqlite_threads_bench.py``). Nothing in vaultlens reads those
statistics (they serve sqlite3_memory_used() and the heap limits), so the process turns them
off, which SQLite's own docs suggest for speed.

SQLite accepts the setting only while no connection is open, between sqlite3_shutdown() and
sqlite3_initialize(). So only the process's entry point makes it, before anything opens the
catalog; never a library call (tests call ``cli.main`` with connections open).
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)
SQLITE_CONFIG_MEMSTATUS = 9  # sqlite3.h


def stop_memory_statistics() -> bool:
    """Turn SQLite's memory statistics off for this process; False where it cannot be done
    (SQLite linked into Python without its functions visible, or not Linux, where the call is
    untested). Call it before any SQLite connection is opened."""
    if sys.platform != "linux":
        return False
    import _sqlite3  # the module linked to the library that Python's sqlite3 uses

    try:
        # symbols are looked up in the module and the libraries it links: the same SQLite
        lib = ctypes.CDLL(_sqlite3.__file__)
        shutdown, config, initialize = (lib.sqlite3_shutdown, lib.sqlite3_config,
                                        lib.sqlite3_initialize)
    except (OSError, AttributeError):
        log.debug("SQLite's functions are not reachable: its memory statistics stay on")
        return False
    if shutdown() != 0:
        return False
    done = bool(config(SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == 0)
    initialize()
    return done
