"""Queries that arrive together are embedded together: one forward pass for all of them.

Eight searches at once each calling the model make eight small matrix products fight over the
same cores (and over numpy's BLAS threads, which are shared by the whole process). Here the
first caller leads: it embeds every query waiting at that moment in one batch, then hands the
lead to a caller that came in meanwhile. No thread of its own, no timer: a lone query is
embedded at once, and a crowd costs about one padded batch (a third of the CPU per query at
eight). Callers that came in together also share an error: the batch failed for all.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vaultlens.embedders.base import Embedder, Input, Role, Vectors

MOST = 32  # queries per batch: a crowd larger than this is embedded in rounds


@dataclass
class _Ask:
    inputs: Sequence[Input]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead the next round, not with an answer
    vectors: Vectors | None = None
    error: BaseException | None = None


class Coalesced(Embedder):
    """Wraps a model that several threads call at once; text queries are batched, anything
    else (documents, images) goes straight to the model."""

    def __init__(self, model: Embedder, most: int = MOST) -> None:
        self.model = model
        self.most = most
        self.name, self.signature, self.dimension = model.name, model.signature, model.dimension
        self.supports_images, self.mixed = model.supports_images, model.mixed
        self.multilingual, self.batch_size = model.multilingual, model.batch_size
        self._lock = threading.Lock()
        self._waiting: list[_Ask] = []
        self._busy = False  # a caller is leading a round
        self.rounds = 0  # forward passes made for queries (read by tests)

    def count_tokens(self, text: str) -> int | None:
        return self.model.count_tokens(text)

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        if role != "query" or any(i.image is not None for i in inputs) or not inputs:
            return self.model.embed(inputs, role)
        ask = _Ask(inputs)
        with self._lock:
            self._waiting.append(ask)
            ask.lead = not self._busy
            self._busy = True
        while not ask.lead:
            ask.done.wait()
            if ask.vectors is not None or ask.error is not None:
                break
            ask.done.clear()  # woken to lead: run the next round
        if ask.lead and ask.vectors is None and ask.error is None:
            self._round()
        if ask.error is not None:
            raise ask.error
        assert ask.vectors is not None
        return ask.vectors

    def _round(self) -> None:
        """Embed the waiting queries (the leader's among them), answer them, and pass the lead
        to the first caller still waiting, if any."""
        with self._lock:
            batch: list[_Ask] = []
            count = 0
            while self._waiting and (not batch or count + len(self._waiting[0].inputs)
                                     <= self.most):
                ask = self._waiting.pop(0)
                batch.append(ask)
                count += len(ask.inputs)
        try:
            vectors = self.model.embed([i for a in batch for i in a.inputs], "query")
            start = 0
            for a in batch:
                a.vectors = np.asarray(vectors[start : start + len(a.inputs)])
                start += len(a.inputs)
        except BaseException as exc:  # every caller in the batch hears of it
            for a in batch:
                a.error = exc
        with self._lock:
            self.rounds += 1
            if self._waiting:
                nxt = self._waiting[0]
                nxt.lead = True
                nxt.done.set()
            else:
                self._busy = False
        for a in batch:
            a.done.set()
