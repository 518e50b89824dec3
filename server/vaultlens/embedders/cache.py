"""The last few hundred query vectors, by text: search-as-you-type, a client polling for a
paste and an assistant asking again all repeat queries, and each repeat would cost a forward
pass (tens of milliseconds of CPU that a search, or an urgent OCR, could use)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from vaultlens.embedders.base import Embedder, Input, Role, Vectors, Wrapper


class QueryCache(Wrapper):
    """Wraps a model; text queries are answered from the cache when they can be, anything
    else (documents, images) goes to the model."""

    def __init__(self, model: Embedder, size: int = 512) -> None:
        super().__init__(model)
        self.size = size
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def ahead(self, text: str) -> None:
        with self._lock:
            known = text in self._cache
        if not known:
            self.model.ahead(text)

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        if role != "query" or any(i.image is not None for i in inputs):
            return self.model.embed(inputs, role)
        texts = [i.text or "" for i in inputs]
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = self.model.embed([Input(text=t) for t in missing], role)
            with self._lock:
                for t, v in zip(missing, fresh, strict=True):
                    found[t] = self._cache[t] = v
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[t] for t in texts])
