"""Reading ahead: worker threads read the next files (hash, parse, OCR, PDF pages) while the
indexer's thread embeds and writes the ones before them.

Three lanes, so that no kind of file waits behind another:
  - heavy: images and PDFs, one thread per OCR worker (a core each);
  - light: notes, one thread (parsing is quick; the notes keep the model busy while the
    heavy lane reads, instead of all notes first and all images after, one stage idle each);
  - urgent: a paste or a reindex request, with a thread and an OCR worker of its own, handed
    out before anything else.
Results are handed out as they finish, not in the order given: each file is written on its own,
and an image written before the note that places it is described again at the end of the run.
Each lane has a bound on the files in flight, so memory stays bounded (decoded screenshots are
large) and a kill loses at most those.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from vaultlens.index.extractor import Extracted
from vaultlens.vault.vault import VaultFile

# (file, the hash the catalog already has when nothing else is due, urgent) -> what was read
Read = Callable[[VaultFile, str | None, bool], Extracted]
Known = Callable[[VaultFile], str | None]


class Lane:
    def __init__(self, name: str, threads: int, ahead: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix=f"vaultlens-read-{name}")
        self.ahead = ahead
        self.flight: list[Future[Extracted]] = []


class ReadAhead:
    def __init__(self, read: Read, workers: int) -> None:
        self.read = read
        workers = max(1, workers)
        self.heavy = Lane("heavy", workers, 2 * workers)
        self.light = Lane("light", 1, 8)
        self.lane = Lane("urgent", 1, 1 << 30)
        self.paths: set[str] = set()  # in flight, any lane

    def fill(self, notes: deque[VaultFile], others: deque[VaultFile], known: Known) -> None:
        """Start reading the next notes and the next other files while their lanes have
        room, and no urgent file is being read (it has the cores until it is done)."""
        if self.lane.flight:
            return
        for lane, queue in ((self.light, notes), (self.heavy, others)):
            while queue and len(lane.flight) < lane.ahead:
                f = queue.popleft()
                self._submit(lane, f, known(f), False)

    def urgent(self, f: VaultFile, known: str | None) -> None:
        self._submit(self.lane, f, known, True)

    def _submit(self, lane: Lane, f: VaultFile, known: str | None, urgent: bool) -> None:
        self.paths.add(f.path)
        lane.flight.append(lane.pool.submit(self.read, f, known, urgent))

    def urgent_in_flight(self) -> bool:
        return bool(self.lane.flight)

    def in_flight(self) -> int:
        return sum(len(lane.flight) for lane in (self.lane, self.light, self.heavy))

    def ready(self, urgent_only: bool = False) -> Extracted | None:
        """A finished result, urgent ones first; None when none has finished."""
        for lane in (self.lane,) if urgent_only else (self.lane, self.light, self.heavy):
            for fut in lane.flight:
                if fut.done():
                    lane.flight.remove(fut)
                    out = fut.result()
                    self.paths.discard(out.file.path)
                    return out
        return None

    def wait(self, timeout: float, urgent_only: bool = False) -> bool:
        """Until a read finishes (True), or ``timeout`` (False)."""
        lanes = (self.lane,) if urgent_only else (self.lane, self.light, self.heavy)
        futures = [f for lane in lanes for f in lane.flight]
        if not futures:
            return False
        return bool(wait(futures, timeout, return_when=FIRST_COMPLETED).done)

    def close(self) -> None:
        """Drop what was not started; a read in progress ends on its own (its OCR worker is
        closed with the indexer, so it is not long)."""
        for lane in (self.lane, self.light, self.heavy):
            for fut in lane.flight:
                fut.cancel()
            lane.flight.clear()
            lane.pool.shutdown(wait=False, cancel_futures=True)
        self.paths.clear()
