"""Vectors for the documents of several files at once, from the cache where it has them.

One model call covers every missing input of the batch: a vault of many small notes costs a
few full batches instead of a small call per note (the embedder sorts the inputs by length, so
a batch pads little). Inputs shared by several files are embedded once. If the batch call
fails, each file is tried alone, so one input a model chokes on costs only its own file: that
file is indexed with what the cache has, and tried again later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vaultlens.embedders.base import Embedder, Input, Vectors
from vaultlens.extract.documents import Document
from vaultlens.index.catalog import Catalog
from vaultlens.index.report import Summary

log = logging.getLogger(__name__)


class Stopped(Exception):
    """Raised between two model calls: the run is stopping, the batch is not written."""


class Pause(Protocol):
    """What a batch's vectorizer sees of the run between two of its model calls (the urgent
    lane: ``index/urgent.py``)."""

    def between_calls(self) -> None:
        """Serve what cannot wait for the rest of the batch; raise :class:`Stopped` to end
        the batch unwritten."""


@dataclass
class Embedded:
    """One document's vectors: ``keep`` the items they belong to (all, unless it failed)."""

    vectors: Vectors
    keep: list[int]
    failure: str | None = None


class Vectorizer:
    def __init__(self, catalog: Catalog, embedder: Embedder, chunk_tokens: int = 1024,
                 pause: Pause | None = None) -> None:
        self.catalog = catalog
        self.embedder = embedder
        self.chunk_tokens = chunk_tokens  # about this many tokens per model call
        # between two model calls of a batch (not of a file tried alone after a failure)
        self.pause = pause

    def embed(self, docs: Sequence[Document], summary: Summary, names: Sequence[str] = (),
              again: bool = False) -> list[Embedded]:
        """``names``: the files' paths, for the log when one fails. The ``pause`` runs
        after each model call of a long batch (the indexer serves urgent files there).
        ``again``: documents written before in this run, described anew: vectors found in
        the cache are not counted as reused (they were counted when first written)."""
        signature = self.embedder.signature
        hashes = [[it["content_hash"] for it in d.items] for d in docs]
        cached = self.catalog.cached_vectors({h for hs in hashes for h in hs}, signature)
        missing: dict[str, Input] = {}
        for d, hs in zip(docs, hashes, strict=True):
            for h, inp in zip(hs, d.inputs, strict=True):
                if h not in cached:
                    missing.setdefault(h, inp)
        failed: dict[int, str] = {}
        if missing:
            try:
                self._fresh(missing, cached, summary, self.pause)
            except Stopped:
                raise
            except Exception as exc:
                if len(docs) == 1:
                    failed[0] = self._why(names[0] if names else "?", exc)
                else:  # each alone: the one that chokes costs only its own file
                    for i, (d, hs) in enumerate(zip(docs, hashes, strict=True)):
                        mine = {h: inp for h, inp in zip(hs, d.inputs, strict=True)
                                if h not in cached}
                        try:
                            self._fresh(mine, cached, summary)
                        except Exception as exc:
                            failed[i] = self._why(names[i] if i < len(names) else "?", exc)
        out = []
        for i, hs in enumerate(hashes):
            keep = [j for j, h in enumerate(hs) if h in cached]
            vectors = (np.stack([cached[hs[j]] for j in keep]) if keep
                       else np.zeros((0, self.embedder.dimension), dtype=np.float32))
            out.append(Embedded(vectors, keep, failed.get(i)))
            fresh = sum(1 for h in hs if h in missing)
            summary.reused += 0 if again else len(hs) - fresh
        summary.embedded += sum(1 for h in missing if h in cached)
        return out

    def _fresh(self, missing: dict[str, Input], cached: dict[str, Vectors], summary: Summary,
               pause: Pause | None = None) -> None:
        """Embed ``missing`` into ``cached``, in calls of inputs of similar length (little
        padding), each about ``chunk_tokens`` long, so that ``pause`` runs often enough for
        a paste."""
        order = sorted(missing, key=lambda h: len(missing[h].text or ""))
        chunks: list[list[str]] = [[]]
        tokens = 0
        # an image is a batch's share of a call (on a CPU a quarter: seconds each; beside a GPU
        # a sixteenth, and a call of 16 takes a fraction of a second)
        share = self.chunk_tokens // max(1, self.embedder.batch_size)
        for h in order:
            # a text's tokens, about
            guess = (share if missing[h].image is not None
                     else min(len(missing[h].text or "") // 4, 256) + 2)
            if chunks[-1] and (tokens + guess > self.chunk_tokens
                               or len(chunks[-1]) >= self.embedder.batch_size):
                chunks.append([])
                tokens = 0
            chunks[-1].append(h)
            tokens += guess
        for i, keys in enumerate(chunks):
            start = time.perf_counter()
            try:
                vectors = self.embedder.embed([missing[h] for h in keys], "document")
            finally:
                summary.timed("embed", start)
            new = dict(zip(keys, vectors, strict=True))
            with self.catalog.transaction():  # cached at once: a kill before the file is
                self.catalog.store_vectors(self.embedder.signature, new)  # written keeps them
            cached.update(new)
            if pause is not None and i + 1 < len(chunks):
                pause.between_calls()

    @staticmethod
    def _why(name: str, exc: Exception) -> str:
        # a model that chokes (or a GPU out of memory) must not stop the run, nor cost the
        # file: its text is indexed now, its vectors on a later try
        log.error("%s: embedding failed", name, exc_info=exc)
        return f"embedding failed: {type(exc).__name__}: {exc}"
