"""Process-wide settings of a daemon, decided once by its entry point (`vaultlens serve`,
`vaultlens mcp`, or the app factory for whoever builds the app) and passed in: nothing in a
constructor or at import time changes the process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tuning:
    # searches at once: SQLite, usearch and numpy release the GIL, so threads overlap even on
    # two cores; more than eight would only queue inside the process instead of in the pool
    search_threads: int
    # In the daemon, numpy's BLAS does small products for searches (the query model,
    # candidate cosines). With a thread per core, a search's product waits spinning for a
    # helper thread that another search holds off the core: at eight searches at once that
    # doubled the CPU each one costs. One thread each is faster for all of them. The
    # indexer's torch models have threads of their own (``--threads``, given to the model
    # when it loads), and the one numpy model that indexes (USE) raises the limit for its
    # own calls (embedders/use.py).
    blas_threads: int = 1

    @classmethod
    def for_machine(cls, cpus: int | None = None) -> Tuning:
        """The settings for a machine with ``cpus`` cores (this one's by default)."""
        cpus = os.cpu_count() if cpus is None else cpus
        return cls(search_threads=min(8, max(4, cpus or 1)))

    def hold(self) -> Held:
        """Apply the BLAS limit to the process until ``Held.release``."""
        from threadpoolctl import threadpool_limits

        return Held(threadpool_limits(self.blas_threads, user_api="blas"))


class Held:
    """The process's settings while a daemon runs; ``release`` gives the old ones back."""

    def __init__(self, limits: Any) -> None:
        self._limits = limits

    def release(self) -> None:
        self._limits.restore_original_limits()
