"""Per-thread read connections: each search thread reads with its own SQLite connection, the
searcher over it, and the pictures it loads.

SQLite connections must not be shared by threads that query at once, so each search thread has
its own. They are all opened at start and each thread takes one on first use: a connection
opened later would create an empty catalog if the data dir had been deleted meanwhile, where
one opened before keeps reading the deleted file until the index is rescued from it. When the
index is reopened (its data dir was deleted or damaged),
``reopen`` bumps a generation: each thread moves to the new catalog before its next request,
and closes its old connection itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from vaultlens.search.pictures import Pictures
from vaultlens.search.searcher import Searcher

Make = Callable[[], tuple[Searcher, Pictures]]


class ThreadReaders:
    """One (searcher, pictures) per search thread, each over its own read connection."""

    def __init__(self, make: Make, count: int) -> None:
        self._make = make
        self._generation = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._spare = [make() for _ in range(count)]  # one per search thread, opened now
        self._open: list[Searcher] = [s for s, _ in self._spare]  # to close at shutdown

    def reopen(self, make: Make) -> None:
        with self._lock:
            self._make = make
            self._generation += 1

    def get(self) -> tuple[Searcher, Pictures]:
        local = self._local
        with self._lock:
            generation, make = self._generation, self._make
        if getattr(local, "generation", -1) != generation:
            stale: Searcher | None = getattr(local, "searcher", None)
            with self._lock:
                spare = self._spare.pop() if self._spare and generation == 0 else None
            local.searcher, local.pictures = spare or make()
            local.generation = generation
            with self._lock:
                if spare is None:
                    self._open.append(local.searcher)
                if stale is not None:
                    self._open.remove(stale)
            if stale is not None:
                stale.catalog.close()
        return local.searcher, local.pictures

    def close(self) -> None:
        with self._lock:
            for searcher in self._open:
                searcher.catalog.close()
            self._open.clear()
            self._spare.clear()
