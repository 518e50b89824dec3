"""Queries that arrive together are embedded together: one forward pass for all of them.

A query's forward pass reads the whole model from memory (for MiniLM, 42 MB of weights for a
dozen tokens), so four queries in one pass cost little more than one. Here the first caller
leads: it embeds every query waiting at that moment in one batch, then hands the lead to a
caller that came in meanwhile. No thread of its own, no timer: a lone query is embedded at
once. Callers that came in together also share an error: the batch failed for all.

Searches that wait for a search thread announce their query with :meth:`Coalesced.ahead`: it
joins the next round that anyone leads, so the queries of requests waiting in line are
embedded in one pass with the one being searched, and are ready when their turn comes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vaultlens.embedders.base import Embedder, Input, Role, Vectors, Wrapper

MOST = 32  # queries per batch: a crowd larger than this is embedded in rounds
AHEAD_KEPT = 64  # announced queries kept for their search; older ones are dropped


@dataclass
class _Ask:
    inputs: Sequence[Input]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to lead the next round, not with an answer
    claimed: bool = True  # a caller waits for it (False: announced by ahead, not asked yet)
    vectors: Vectors | None = None
    error: BaseException | None = None


class Coalesced(Wrapper):
    """Wraps a model that several threads call at once; text queries are batched, anything
    else (documents, images) goes straight to the model."""

    def __init__(self, model: Embedder, most: int = MOST) -> None:
        super().__init__(model)
        self.most = most
        self._lock = threading.Lock()
        self._waiting: list[_Ask] = []
        self._busy = False  # a caller is leading a round
        self._ahead: dict[str, _Ask] = {}  # announced queries, by text, oldest first
        self.rounds = 0  # forward passes made for queries (read by tests)

    def ahead(self, text: str) -> None:
        """``text`` will be asked for as a query soon: embed it with the next round."""
        with self._lock:
            if text in self._ahead:
                return
            ask = _Ask([Input(text=text)], claimed=False)
            self._ahead[text] = ask
            self._waiting.append(ask)
            if len(self._ahead) > AHEAD_KEPT:  # never asked for (a request given up)
                old = self._ahead.pop(next(iter(self._ahead)))
                if old in self._waiting:
                    self._waiting.remove(old)

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        if role != "query" or any(i.image is not None for i in inputs) or not inputs:
            return self.model.embed(inputs, role)
        with self._lock:
            text = inputs[0].text if len(inputs) == 1 else None
            ask = self._ahead.pop(text, None) if text is not None else None
            if ask is None or ask.error is not None:  # an announced query's batch failed
                # before its search came: the search tries afresh, as any other would
                ask = _Ask(inputs)
                self._waiting.append(ask)
            ask.claimed = True
            done = ask.vectors is not None or ask.error is not None
            if not done:
                ask.lead = not self._busy
                self._busy = True
        while not done and not ask.lead:
            ask.done.wait()
            if ask.vectors is not None or ask.error is not None:
                break
            ask.done.clear()  # woken to lead: run the next round
        if ask.lead and ask.vectors is None and ask.error is None:
            self._round(ask)
        if ask.error is not None:
            raise ask.error
        assert ask.vectors is not None
        return ask.vectors

    def _round(self, leader: _Ask) -> None:
        """Embed the leader's query and those waiting (callers first, then announced ones, up
        to ``most``), answer them, and pass the lead to the first caller still waiting."""
        with self._lock:
            if leader in self._waiting:
                self._waiting.remove(leader)
            batch = [leader]
            count = len(leader.inputs)
            for ask in sorted(self._waiting, key=lambda a: not a.claimed):  # stable
                # announced queries ride along only up to the model's own batch size: the
                # leader's search waits for the whole pass
                if count + len(ask.inputs) > (self.most if ask.claimed else
                                              min(self.most, self.batch_size)):
                    break
                batch.append(ask)
                count += len(ask.inputs)
            for ask in batch[1:]:
                self._waiting.remove(ask)
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
            # the lead goes to a caller that waits; announced queries wait for any round
            nxt = next((a for a in self._waiting if a.claimed), None)
            if nxt is not None:
                nxt.lead = True
                nxt.done.set()
            else:
                self._busy = False
        for a in batch:
            a.done.set()
