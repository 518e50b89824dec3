"""The bundled MiniLM's forward pass in numpy, for queries: no torch, so a daemon answers with
vectors about a second after it starts instead of after torch and transformers are imported,
and any number of search threads can call it at once (it holds no state but its weights).

Its vectors are MiniLM's (same signature; tests hold them to the torch model's within 1e-5), so
it searches an index that :class:`~vaultlens.embedders.minilm.MiniLM` built. The indexer keeps
the torch model: for large batches torch's kernels are faster.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, normalise
from vaultlens.embedders.minilm import MiniLM, bundled_path

Array = NDArray[np.float32]


def erf(x: Array) -> Array:
    """Abramowitz and Stegun 7.1.26 (error below 1.5e-7, under float32's step at 1): BERT's
    GELU is the exact one, and numpy has no erf."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (
        -1.453152027 + t * 1.061405429))))
    out: Array = sign * (1.0 - poly * np.exp(-a * a))
    return out


def layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Array = (x - mean) / np.sqrt(var + eps) * weight + bias
    return out


class NumpyMiniLM(Embedder):
    name = MiniLM.name
    dimension = MiniLM.dimension
    supports_images = False
    max_tokens = MiniLM.max_tokens

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or bundled_path()
        for need in ("config.json", "tokenizer.json", "model.safetensors"):
            if not (self.path / need).is_file():
                raise ModelError(f"{self.path}: no MiniLM model here ({need} missing)")
        self.signature = f"minilm:all-MiniLM-L6-v2:{self.dimension}:mean:{self.max_tokens}"
        self._loaded: tuple[Any, dict[str, Array], dict[str, Any]] | None = None
        self._counter: Any = None  # a second tokenizer, which never truncates
        self._lock = threading.Lock()  # the first calls load once

    def _load(self) -> tuple[Any, dict[str, Array], dict[str, Any]]:
        with self._lock:
            if self._loaded is None:
                from safetensors.numpy import load_file
                from tokenizers import Tokenizer

                try:
                    tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
                    weights = load_file(self.path / "model.safetensors")
                    config = json.loads((self.path / "config.json").read_text())
                except (OSError, ValueError) as exc:
                    raise ModelError(f"{self.path}: cannot load MiniLM ({exc})") from exc
                # set once, before any thread encodes: changing it later is not thread-safe
                tokenizer.enable_truncation(self.max_tokens)
                tokenizer.no_padding()
                self._loaded = (tokenizer, weights, config)
            return self._loaded

    def count_tokens(self, text: str) -> int | None:
        with self._lock:
            if self._counter is None:
                from tokenizers import Tokenizer

                self._counter = Tokenizer.from_file(str(self.path / "tokenizer.json"))
                self._counter.no_truncation()
                self._counter.no_padding()
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        tokenizer, w, config = self._load()
        out = np.zeros((len(inputs), self.dimension), dtype=np.float32)
        for row, item in enumerate(inputs):  # one at a time: a query is one text, no padding
            if item.image is not None:
                raise ModelError("minilm embeds text only; visual search is off")
            ids = np.asarray(tokenizer.encode(item.text or "").ids, dtype=np.int64)
            out[row] = self._forward(ids, w, config).mean(0)
        return normalise(out)

    @staticmethod
    def _forward(ids: NDArray[np.int64], w: dict[str, Array], config: dict[str, Any]) -> Array:
        eps = float(config["layer_norm_eps"])
        heads = int(config["num_attention_heads"])
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][: len(ids)]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        n, size = x.shape
        d = size // heads
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."

            def dense(v: Array, name: str, p: str = p) -> Array:
                out: Array = v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return out

            q, k, v = (dense(x, f"attention.self.{m}").reshape(n, heads, d).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = (scores / scores.sum(-1, keepdims=True)) @ v
            attn = attn.transpose(1, 0, 2).reshape(n, size)
            x = layer_norm(x + dense(attn, "attention.output.dense"),
                           w[p + "attention.output.LayerNorm.weight"],
                           w[p + "attention.output.LayerNorm.bias"], eps)
            h = dense(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / np.float32(np.sqrt(2.0))))
            x = layer_norm(x + dense(h, "output.dense"), w[p + "output.LayerNorm.weight"],
                           w[p + "output.LayerNorm.bias"], eps)
        return x
