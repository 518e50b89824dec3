"""Memory a process freed, handed back to the system (glibc's malloc_trim).

glibc's malloc keeps what Python and the libraries free on its heaps (one per thread that
allocates, up to eight per core) to use again: after a model's load or a run that read a whole
vault, that is much of a process's resident memory, unused until the next big run.
malloc_trim(0) hands every heap's free pages back. Elsewhere (musl, macOS, Windows) there is no
such call, and nothing is done. Called at moments that free much (the end of a run, a model's
load), never after every request: pages handed back are faulted in again by the next one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)


@cache
def _trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim  # ctypes releases the GIL in the call
    except (OSError, AttributeError):
        return None
    return trim


def give_back() -> bool:
    """Hand the heaps' free pages back to the system; False where that cannot be done.
    Takes tens of milliseconds on a large heap: call it from a worker thread, never the event
    loop."""
    trim = _trim()
    if trim is None:
        return False
    start = time.perf_counter()
    trim(0)
    log.debug("freed memory given back in %.0f ms", 1000 * (time.perf_counter() - start))
    return True
