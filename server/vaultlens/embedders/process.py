"""A text model in a process of its own: the daemon's query model.

A search holds Python's GIL for most of its work (ranking, hits, snippets, usearch), and a
query's forward pass lets go of it a hundred times, once for each numpy product, then waits to
get it back. With four search threads in one process, two cores stayed a third idle at eight
searches at once: the threads took turns for the GIL. In a process of its own the model has a
core and a GIL to itself; the calling thread waits on a pipe, holding nothing.

The worker is a child of ``vaultlens.workers``: its hello is the model's factory (a picklable
callable that builds it), each request ``(texts, role)``, each answer the vectors. An answer
out of step (another request's, another shape, not a frame) fails the request with
ModelError and the next one starts a new worker. The worker ends when its request stream
closes (the daemon stopped or died).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, Wrapper
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
    answers, cost the searches' process a GIL handoff more a query, and p95 at eight searches
    at once went from 80 to 90 ms."""

    def __init__(self, model: Embedder, factory: Callable[[], Embedder],
                 timeout: float = 60.0) -> None:
        """``timeout``: seconds a request may take, the model's load included (a stuck
        worker is killed, and the searches waiting on it hear why)."""
        if model.supports_images:
            raise ValueError(f"{model.name}: only a text model runs in a worker process")
        super().__init__(model)
        self.factory = factory
        self.timeout = timeout
        self.child = Worker(Recipe(MODULE, hello=factory, env=ONE_THREAD))

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
        try:
            return self.child.request((texts, role), WallClock(self.timeout),
                                      lambda value: self._vectors(value, len(inputs)))
        except Declined as exc:  # the model's own failure: the worker carries on
            raise ModelError(str(exc)) from exc
        except WorkerTimeout as exc:
            raise ModelError(f"{self.name}: the query model's worker process did not "
                             f"answer within {self.timeout:.0f} s") from exc
        except BadFrame as exc:
            raise ModelError(f"{self.name}: the query model's worker process answered "
                             f"out of step ({exc}); it is restarted") from exc
        except WorkerDied as exc:
            why = f" ({exc.last_words})" if exc.last_words else ""
            raise ModelError(f"{self.name}: the query model's worker process ended{why}") from exc

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
        self.child.close()


def load(factory: Callable[[], Embedder]) -> Handler:
    """The worker's side: build the model, and embed each request's texts with it."""
    model = factory()

    def embed(request: tuple[list[str], Role]) -> Vectors:
        texts, role = request
        try:
            return model.embed_texts(texts, role)
        except Exception as exc:  # the caller hears of it; the worker carries on
            raise Declined(f"{model.name}: {type(exc).__name__}: {exc}") from exc

    return embed


if __name__ == "__main__":
    serve(load)
