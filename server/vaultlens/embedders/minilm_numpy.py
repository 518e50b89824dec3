"""The bundled MiniLM's forward pass in numpy, for queries: no torch, so a daemon answers with
vectors about a second after it starts instead of after torch is imported, and any number of
search threads can call it at once (it holds no state but its weights).

Its vectors are MiniLM's (same signature; tests hold them to transformers' BertModel within
1e-5), so it searches an index that :class:`~vaultlens.embedders.minilm.MiniLM` built. The
indexer keeps torch: for large batches its kernels are faster.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, normalise
from vaultlens.embedders.bert import Bert, load_tokenizer, mean_pool, padded
from vaultlens.embedders.minilm import MiniLM, bundled_path, length_batches


class NumpyMiniLM(Embedder):
    name = MiniLM.name
    dimension = MiniLM.dimension
    supports_images = False
    max_tokens = MiniLM.max_tokens
    batch_size = 64
    batch_tokens = 1024  # padded tokens per forward pass: see minilm.length_batches

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or bundled_path()
        for need in ("config.json", "tokenizer.json", "model.safetensors"):
            if not (self.path / need).is_file():
                raise ModelError(f"{self.path}: no MiniLM model here ({need} missing)")
        self.signature = f"minilm:all-MiniLM-L6-v2:{self.dimension}:mean:{self.max_tokens}"
        self._loaded: tuple[Any, Bert] | None = None
        self._counter: Any = None  # a second tokenizer, which never truncates
        self._lock = threading.Lock()  # the first calls load once

    def _load(self) -> tuple[Any, Bert]:
        with self._lock:
            if self._loaded is None:
                self._loaded = (load_tokenizer(self.path, self.max_tokens), Bert.load(self.path))
            return self._loaded

    def count_tokens(self, text: str) -> int | None:
        with self._lock:
            if self._counter is None:
                self._counter = load_tokenizer(self.path, None)
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        tokenizer, bert = self._load()
        if any(item.image is not None for item in inputs):
            raise ModelError("minilm embeds text only; visual search is off")
        # one by one: encode_batch starts the tokenizer's own thread pool, which then warns in
        # every process the daemon forks (OCR workers)
        ids = [tokenizer.encode(item.text or "").ids for item in inputs]
        out = np.zeros((len(inputs), self.dimension), dtype=np.float32)
        for batch in length_batches([len(x) for x in ids], self.batch_size, self.batch_tokens):
            tokens, mask = padded([ids[i] for i in batch])
            out[batch] = mean_pool(bert.forward(tokens, mask), mask)
        return normalise(out)
