"""The daemon's indexing thread: the index's only writer.

It waits for a reason to run (the start, a watcher event, a reindex request, the periodic
reconcile) and then runs the indexer, which takes urgent paths first. When the data dir goes
wrong under it (deleted, damaged, full, read-only), it says so in /api/status, repairs what
it can through ``reopen``, and tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from vaultlens.errors import VaultlensError
from vaultlens.heap import give_back
from vaultlens.index.indexer import Indexer
from vaultlens.index.repair import classify
from vaultlens.index.report import LOG_EVERY_S, Estimate, Pace, Progress, RunLog, Summary

log = logging.getLogger(__name__)


class ReadOnly(VaultlensError, RuntimeError):
    """This daemon serves an index that another process writes."""


class IndexService:
    def __init__(self, indexer: Indexer | None, reconcile_every: float,
                 reopen: Callable[[bool], Indexer] | None = None,
                 retry_every: float = 30.0) -> None:
        self.indexer = indexer  # None: another process writes this index; we only read it
        self.reconcile_every = reconcile_every
        # reopen(damaged): the index opened again after its data dir was deleted (False) or
        # its catalog damaged (True); returns the new indexer
        self.reopen = reopen
        self.retry_every = retry_every  # while the data dir is full or read-only
        self.problem: str | None = None  # what is wrong with the data dir now
        self.repairs: list[dict[str, Any]] = []  # what was wrong, and what was done
        self.last: Summary | None = None
        self.last_error: str | None = None
        self.run_started = 0.0  # monotonic time the current run began
        self.running = False
        self.runs = 0
        self._wake = threading.Event()
        self._quit = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vaultlens-indexer", daemon=True)
        self.pace = Pace()  # the current run's pace and ETA
        self.runlog = RunLog(self.pace)  # what the log says of the runs
        self._sized = False  # the current run said how many files it reads
        self._ticker = threading.Thread(target=self._tick, name="vaultlens-progress",
                                        daemon=True)

    def start(self) -> None:
        if self.indexer is None:
            self._idle.set()
            return
        self._wake.set()  # the reconcile at start: what changed while the daemon was down
        self.indexer.prepare()  # the urgent OCR worker: the first paste must not wait for it
        if not self._quit.is_set():
            self._thread.start()
            self._ticker.start()

    def request(self, paths: list[str]) -> None:
        """Index these vault paths before anything else, as soon as possible."""
        if self.indexer is None:
            raise ReadOnly("another process writes this index; it indexes the vault")
        self.indexer.request_urgent(paths)
        self._idle.clear()
        self._wake.set()

    def reconcile(self) -> None:
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        assert self.indexer is not None  # start() runs no thread without one
        while not self._quit.is_set():
            # woken, or time for the periodic reconcile (sooner while the disk is in trouble)
            self._wake.wait(self.retry_every if self.problem else self.reconcile_every)
            if self._quit.is_set():
                break
            self._wake.clear()
            self._begin()
            try:
                if self.reopen is not None and self.indexer.catalog_deleted():
                    self._repair(False, "the data dir or its catalog was deleted: recreated "
                                        "from what the daemon still had open")
                self.indexer.observe(self._progressed)
                self.last = self.indexer.run()
                self.last_error = self.problem = None
            except Exception as exc:  # keep serving; say why in /api/status
                self._failed(exc)
            finally:
                self.running = False
                self.runs += 1
                self.runlog.ended(self.progress().done)
            if not self._wake.is_set() and not self.indexer.urgent_waiting():
                self.runlog.idle(self.last, self.last_error or self.problem)
                self._idle.set()
                # what the run read and freed goes back to the system; the indexing
                # model's worker ends on its own once idle (registry.py)
                give_back()

    def _begin(self) -> None:
        self.pace.begin()
        self._sized = False
        self.run_started = time.monotonic()
        self.running = True

    def _progressed(self, p: Progress) -> None:
        """The indexer's progress, in the indexing thread: the pace, and the run's size."""
        if not self._sized:
            self._sized = True
            self.runlog.started(p.total)
        self.pace.add(p)

    def _tick(self) -> None:
        """A progress line every few seconds while a run goes (the log is the only place a
        user of `vaultlens serve` looks)."""
        while not self._quit.wait(LOG_EVERY_S):
            if self.running and self._sized:
                self.runlog.tick(self.progress())

    def estimate(self) -> Estimate:
        """The current run's pace and ETA (None while estimating, or idle)."""
        if not self.running:
            return Estimate(None, None)
        return self.pace.estimate(self.progress())

    def _failed(self, exc: Exception) -> None:
        kind = classify(exc)
        if kind is None:
            log.exception("indexing failed")
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        log.warning("indexing stopped: the data dir is %s (%s)", kind, exc)
        self.problem = (f"the data dir is {kind} ({exc}); searches answer from the index as it "
                        f"was, and indexing tries again every {self.retry_every:.0f} s")
        if kind == "damaged" and self.reopen is not None:
            self._repair(True, f"the catalog was damaged ({exc}): set aside, and the vault is "
                               "indexed again")
            self._wake.set()  # rebuild now, not after the wait

    def _repair(self, damaged: bool, what: str) -> None:
        assert self.reopen is not None and self.indexer is not None
        log.warning("%s", what)
        old = self.indexer
        self.indexer = self.reopen(damaged)
        old.hand_over(self.indexer)
        old.close()
        self.repairs.append({"at": round(time.time(), 1), "what": what})

    def progress(self) -> Progress:
        """The current (or last) run's progress; nothing for a daemon that only reads."""
        return self.indexer.progress() if self.indexer else Progress(0, 0, "")

    def searchable(self) -> int:
        """The vault's files of a kind a run reads, as the last scan (or the catalog) has
        them; 0 for a daemon that only reads."""
        return self.indexer.searchable() if self.indexer else 0

    def waiting(self) -> int:
        """Urgent paths asked for and not yet taken by a run."""
        return self.indexer.urgent_waiting() if self.indexer else 0

    def alive(self) -> bool:
        """Whether the indexing thread still runs (after a ``stop`` that timed out)."""
        return self._thread.is_alive()

    def stop(self, timeout: float) -> bool:
        """Finish the file in hand, save the vectors. False if the thread did not end in time
        (then the next start rebuilds the vectors from the catalog's cache)."""
        self._quit.set()
        if self.indexer is None:
            return True
        self.indexer.stop()
        self._wake.set()
        if self._thread.ident is not None:  # it may never have started
            self._thread.join(timeout)
        ended = not self._thread.is_alive()
        if ended:  # else its connections stay open under it: the process is ending anyway
            self.indexer.save_vectors()
            self.indexer.close()
        return ended

