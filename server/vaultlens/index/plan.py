"""What an indexing run does next: the scheduling, as plain logic with no threads in it.

A run has four kinds of work: urgent files (a paste, a reindex request: someone waits for
them), notes, other files (images and PDFs), and the batch of files read and waiting for
their vectors. :class:`Plan` holds the run's queues and decides, from a snapshot of what the
read-ahead threads are doing (:class:`Now`), which of them goes next. :class:`UrgentLane` is
the one place urgent paths wait until a run takes them.

The rules, in order:
  - urgent paths are taken before anything else, at every step and between model calls;
  - a stop ends the run within one model call (what is read and not embedded is kept);
  - a finished read is taken at once (an urgent one first: the read-ahead hands those out
    first);
  - while an urgent file is being read, nothing else is: the cores are its own;
  - the pending batch is embedded when it is full, or when nothing more comes at once;
    while the model loads it waits (urgent files go on meanwhile, with their own model).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import Generic, TypeVar

from vaultlens.vault.policy import Policy
from vaultlens.vault.vault import FileKind, Problem, VaultFile

T = TypeVar("T")


class Step(enum.Enum):
    STOP = "stop"  # asked to stop: keep what is read, end the run
    TAKE = "take"  # a read finished: take it
    WAIT_URGENT = "wait urgent"  # an urgent file is being read: wait for it alone
    WAIT_MODEL = "wait model"  # files wait for the model, still loading: wait a little
    FLUSH = "flush"  # nothing more is coming: embed the pending batch
    LINGER = "linger"  # reads in flight: wait a moment for one, else embed the pending batch
    WAIT = "wait"  # nothing pending: wait for a read
    DONE = "done"  # nothing left


@dataclass(frozen=True)
class Now:
    """What the run sees at one step (read from the read-ahead and the model's loader)."""

    stopping: bool = False
    ready: bool = False  # a read has finished and waits to be taken
    urgent_reading: bool = False  # an urgent file is being read
    in_flight: int = 0  # reads started and not taken, any lane
    loaded: bool = True  # the indexing model is loaded


class Plan(Generic[T]):
    """One run's queues: files still to read (notes, others) and files read and waiting for
    their vectors (``pending``, each ``size(item)`` model inputs)."""

    def __init__(self, files: Iterable[VaultFile], size: Callable[[T], int],
                 batch_inputs: int) -> None:
        ordered = sorted(files, key=lambda f: f.path)
        self.notes: deque[VaultFile] = deque(f for f in ordered if f.kind == FileKind.NOTE)
        self.others: deque[VaultFile] = deque(f for f in ordered if f.kind != FileKind.NOTE)
        self.pending: list[T] = []
        self.size = size
        self.batch_inputs = batch_inputs

    def next(self, now: Now) -> Step:
        if now.stopping:
            return Step.STOP
        if now.ready:
            return Step.TAKE
        if now.urgent_reading:
            return Step.WAIT_URGENT
        if self.pending and not now.loaded:
            return Step.WAIT_MODEL
        busy = bool(now.in_flight or self.notes or self.others)
        if self.pending:
            return Step.LINGER if busy else Step.FLUSH
        return Step.WAIT if busy else Step.DONE

    def claim(self, path: str) -> None:
        """An urgent request took this path: it is read on the urgent lane, not here."""
        for queue in (self.notes, self.others):
            waiting = next((f for f in queue if f.path == path), None)
            if waiting is not None:
                queue.remove(waiting)

    def hold(self, item: T) -> None:
        """A file read, waiting for the next batch."""
        self.pending.append(item)

    def pending_inputs(self) -> int:
        return sum(self.size(p) for p in self.pending)

    def batch_full(self, loaded: bool) -> bool:
        """Time to embed without waiting for more: a full batch, and a model to embed it."""
        return loaded and self.pending_inputs() >= self.batch_inputs

    def cut(self) -> list[T]:
        """The next batch: about ``batch_inputs`` inputs, at least one file."""
        cut, inputs = 0, 0
        while cut < len(self.pending) and (cut == 0 or inputs < self.batch_inputs):
            inputs += self.size(self.pending[cut])
            cut += 1
        batch, self.pending = self.pending[:cut], self.pending[cut:]
        return batch

    def put_back(self, batch: list[T]) -> None:
        """A batch that was not written (a stop): its files wait again, first."""
        self.pending = batch + self.pending

    def left(self) -> int:
        """Files not yet done that the plan holds (queued to read, or read and pending)."""
        return len(self.notes) + len(self.others) + len(self.pending)

    def unfinished(self, in_flight: int) -> bool:
        """At a stop: whether anything was left undone."""
        return bool(self.pending or self.notes or self.others or in_flight)


class UrgentLane:
    """Vault paths someone waits for, to index before anything else. Any thread may ask
    (``request``); the indexing run takes them (``admit``) at each step and between two model
    calls, and hands each to the read-ahead's urgent lane. A file born after the run's scan
    joins here, held to the scan's rules as they are now (a link made or a rule set in
    Obsidian since is refused all the same)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._paths: SimpleQueue[str] = SimpleQueue()

    def request(self, paths: Iterable[str]) -> None:
        for p in paths:
            self._paths.put(p)

    def waiting(self) -> int:
        return self._paths.qsize()

    def take(self) -> list[str]:
        """Every path asked for so far, in order; they leave the lane."""
        out: list[str] = []
        while True:
            try:
                out.append(self._paths.get_nowait())
            except Empty:
                return out

    def admit(self, reading: set[str]) -> Admitted:
        """The paths asked for, as files to read now, and those refused (with the reason).
        A path in ``reading`` is being read already: it is written as soon as it is. One
        excluded, or gone again, is dropped: the next run settles it."""
        out = Admitted()
        for path in self.take():
            if path in reading:
                continue
            out.paths.append(path)
            f = self.policy.file(path)
            if isinstance(f, Problem):
                out.refused.append(f)
            elif f is not None:
                out.files.append(f)
        return out


@dataclass
class Admitted:
    """Urgent paths taken from the lane: all of them (none is read by the run's other lanes
    any more), the files to read now, and those the scan's rules refuse."""

    paths: list[str] = field(default_factory=list)
    files: list[VaultFile] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)
