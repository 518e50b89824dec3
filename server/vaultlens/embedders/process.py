"""A text model in a process of its own: the daemon's query model, and its indexing model.

A search holds Python's GIL for most of its work (ranking, hits, snippets, usearch), and a
query's forward pass lets go of it a hundred times, once for each numpy product, then waits to
get it back. With four search threads in one process, two cores stayed a third idle at eight
searches at once: the threads took turns for the GIL. In a process of its own the model has a
core and a GIL to itself; the calling thread waits on a pipe, holding nothing.

The indexing model (torch, with a thread per core) runs in one too, for another reason: torch
and the model are about 1.2 GB that only indexing needs, and memory a process has used is not
reliably given back to the system while it runs. The worker holds them instead, and ends once
it has had no request for ``idle`` seconds (``Resting``): at rest the daemon is as light as
after a warm start. The next batch starts it again (a second or two).

The worker is a child of ``vaultlens.workers``: its hello is the model's factory (a picklable
callable that builds it), each request ``(texts, role)``, each answer the vectors. An answer
out of step (another request's, another shape, not a frame) fails the request with
ModelError and the next one starts a new worker. The worker ends when its request stream
closes (the daemon stopped or died).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, Wrapper
from vaultlens.heap import give_back
from vaultlens.workers import (
    BadFrame,
    Declined,
    Handler,
    Recipe,
    WallClock,
    Worker,
    WorkerDied,
    WorkerTimeout,
    serve,
)

MODULE = "vaultlens.embedders.process"
# one BLAS thread, set for the worker alone: the searches have the other cores
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


class InWorker(Wrapper):
    """``model``'s vectors, computed by a worker process that builds its own copy with
    ``factory``. ``model`` answers everything else (name, signature, tokens) here and is
    never loaded in this process.

    One request at a time, and the caller reads its own answer: queries come batched
    (coalesce.py). A worker answering two at once, with a thread here handing out the
    answers, costs the searches' process one more GIL handoff a query: slower under
    concurrent searches (docs/decisions/0005-search-latency.md)."""

    def __init__(self, model: Embedder, factory: Callable[[], Embedder],
                 timeout: float = 60.0, *, env: Mapping[str, str] = ONE_THREAD,
                 idle: float | None = None, what: str = "the query model") -> None:
        """``timeout``: seconds a request may take, the model's load included (a stuck
        worker is killed, and the searches waiting on it hear why). ``env``: over this
        process's environment, for the worker. ``idle``: the worker ends after this many
        seconds without a request, and the next one starts it again (None: it runs until
        closed). ``what``: the model, as errors name it."""
        if model.supports_images:
            raise ValueError(f"{model.name}: only a text model runs in a worker process")
        super().__init__(model)
        self.factory = factory
        self.timeout = timeout
        self.what = what
        self.child = Worker(Recipe(MODULE, hello=factory, env=dict(env)))
        self.resting = Resting(self.child, idle) if idle is not None else None

    @property
    def pid(self) -> int | None:
        return self.child.pid

    def ahead(self, text: str) -> None:
        return None  # the model here is never loaded: nothing to start on

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        if any(item.image is not None for item in inputs):
            raise ModelError(f"{self.name} embeds text only; visual search is off")
        if not inputs:
            return np.zeros((0, self.dimension), dtype=np.float32)
        texts = [item.text or "" for item in inputs]
        if self.resting is None:
            return self._request(texts, role)
        with self.resting.working():
            return self._request(texts, role)

    def _request(self, texts: list[str], role: Role) -> Vectors:
        try:
            return self.child.request((texts, role), WallClock(self.timeout),
                                      lambda value: self._vectors(value, len(texts)))
        except Declined as exc:  # the model's own failure: the worker carries on
            raise ModelError(str(exc)) from exc
        except WorkerTimeout as exc:
            raise ModelError(f"{self.name}: {self.what}'s worker process did not "
                             f"answer within {self.timeout:.0f} s") from exc
        except BadFrame as exc:
            raise ModelError(f"{self.name}: {self.what}'s worker process answered "
                             f"out of step ({exc}); it is restarted") from exc
        except WorkerDied as exc:
            why = f" ({exc.last_words})" if exc.last_words else ""
            raise ModelError(f"{self.name}: {self.what}'s worker process ended{why}") from exc

    def _vectors(self, value: Any, count: int) -> Vectors:
        """``value`` as the vectors of ``count`` texts; BadFrame for anything else."""
        try:
            vectors = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise BadFrame("vectors that are not numbers") from exc
        if vectors.shape != (count, self.dimension):
            raise BadFrame(f"vectors of shape {vectors.shape}, not {(count, self.dimension)}")
        return vectors

    def close(self) -> None:
        """End the worker (it finishes the request in hand first)."""
        if self.resting is not None:
            self.resting.close()
        self.child.close()


class Resting:
    """Ends ``child`` once it has had no request for ``idle`` seconds. A thread of its own
    watches the clock while the child may be running, and ends with it: a child that is
    not running costs nothing, not even a thread."""

    def __init__(self, child: Worker, idle: float) -> None:
        self.child = child
        self.idle = idle
        self.stops = 0  # times the child was ended for want of work (read by tests)
        self._lock = threading.Lock()
        self._busy = 0  # requests in hand
        self._last = time.monotonic()  # when the last one ended
        self._watch: threading.Thread | None = None
        self._closed = threading.Event()

    @contextmanager
    def working(self) -> Iterator[None]:
        """A request in hand: the clock starts again when it ends."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            self._ended()

    def _ended(self) -> None:
        with self._lock:
            self._busy -= 1
            self._last = time.monotonic()
            if self._watch is None and not self._closed.is_set():
                self._watch = threading.Thread(target=self._watch_clock, daemon=True,
                                               name="vaultlens-model-rest")
                self._watch.start()

    def _watch_clock(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                stamp = self._last
                wait = self.idle if self._busy else stamp + self.idle - time.monotonic()
            if wait > 0:
                self._closed.wait(wait)
                continue
            self.child.close()  # after the request in hand, if one began meanwhile
            with self._lock:
                if not self._busy and self._last == stamp:  # none came: the child is gone
                    self.stops += 1
                    self._watch = None
                    return
        with self._lock:
            self._watch = None

    def close(self) -> None:
        self._closed.set()


def load(factory: Callable[[], Embedder]) -> Handler:
    """The worker's side: build the model, and embed each request's texts with it."""
    model = factory()
    # the load (matrices dequantised, then laid out again) freed tens of MB that the heap
    # would keep for the worker's whole life: handed back once, not after every request
    give_back()

    def embed(request: tuple[list[str], Role]) -> Vectors:
        texts, role = request
        try:
            return model.embed_texts(texts, role)
        except Exception as exc:  # the caller hears of it; the worker carries on
            raise Declined(f"{model.name}: {type(exc).__name__}: {exc}") from exc

    return embed


if __name__ == "__main__":
    serve(load)
