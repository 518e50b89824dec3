"""The urgent lane: files someone waits for (a paste, a reindex request), as one object.

:class:`Urgent` owns the three parts of serving them first:
  - the queue of paths asked for (:class:`UrgentLane`, from any thread);
  - their reading, ahead of everything else (the read-ahead's urgent lane, with an OCR worker
    of its own: the extractor's ``urgent`` reads);
  - the moment between two model calls of a batch (``between_calls``), where they are served
    so that a paste does not wait for a long batch, and where a stop ends the batch.
The indexer binds a run to it (``serving``): how a path taken from the queue is claimed
from the run's plan, and how a file read is written. Between runs the lane only queues.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from vaultlens.extract.ocr import OCRPool
from vaultlens.index.extractor import Extracted
from vaultlens.index.pipeline import ReadAhead
from vaultlens.index.plan import Admitted, UrgentLane
from vaultlens.index.vectorizer import Stopped
from vaultlens.vault.vault import VaultFile


@dataclass(frozen=True)
class Serving:
    """One run's part in the lane: its read-ahead, and what the run does with a path taken
    (``claim``: no other lane reads it any more), the hash the catalog has for a file
    (``known``), and a file read (``write``: embedded and written at once)."""

    ahead: ReadAhead
    claim: Callable[[Admitted], None]
    known: Callable[[VaultFile], str | None]
    write: Callable[[Extracted], None]


class Urgent:
    def __init__(self, lane: UrgentLane, stop: threading.Event, ocr: OCRPool | None) -> None:
        self.lane = lane
        self._stop = stop  # set: the batch in hand ends at the next model call
        self._ocr = ocr
        self._run: Serving | None = None

    # from any thread ----------------------------------------------------------------------
    def prepare(self) -> None:
        """Start the urgent OCR worker now: its models take a second or more to load, in a
        process of its own; started on the first paste instead, that paste waits for it."""
        if self._ocr is not None:
            self._ocr.start_urgent()

    def request(self, paths: Iterable[str]) -> None:
        self.lane.request(paths)

    def waiting(self) -> int:
        return self.lane.waiting()

    def take(self) -> list[str]:
        return self.lane.take()

    # on the run's thread ------------------------------------------------------------------
    @contextmanager
    def serving(self, run: Serving) -> Iterator[None]:
        """Bind a run: until it ends, urgent paths are read and written through it."""
        self._run = run
        try:
            yield
        finally:
            self._run = None

    def admit(self) -> None:
        """Hand the paths asked for to the urgent reads, at once (a path being read already
        is written as soon as it is)."""
        run = self._run
        assert run is not None, "no run is serving the urgent lane"
        taken = self.lane.admit(run.ahead.paths)
        run.claim(taken)
        for f in taken.files:
            run.ahead.urgent(f, run.known(f))

    def reading(self) -> bool:
        """An urgent file is being read: the cores are its own, nothing else starts."""
        return self._run is not None and self._run.ahead.urgent_in_flight()

    def between_calls(self) -> None:
        """Between two model calls of a batch: urgent files are served here, and the batch
        waits while they are read (their OCR then has the cores). A stop ends the batch
        here (raises :class:`Stopped`), before anything of it is written."""
        if self._stop.is_set():
            raise Stopped
        run = self._run
        if run is None:  # a batch outside a run (none today): nothing to serve
            return
        self.admit()
        while run.ahead.urgent_in_flight():
            run.ahead.wait(0.25, urgent_only=True)
            while (got := run.ahead.ready(urgent_only=True)) is not None:
                run.write(got)
            self.admit()
