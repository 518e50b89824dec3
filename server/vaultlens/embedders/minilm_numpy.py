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
from vaultlens.embedders.minilm import MiniLM, bundled_path, length_batches

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
    batch_size = 64
    batch_tokens = 1024  # padded tokens per forward pass: see minilm.length_batches

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or bundled_path()
        for need in ("config.json", "tokenizer.json", "model.safetensors"):
            if not (self.path / need).is_file():
                raise ModelError(f"{self.path}: no MiniLM model here ({need} missing)")
        self.signature = f"minilm:all-MiniLM-L6-v2:{self.dimension}:mean:{self.max_tokens}"
        self._loaded: tuple[Any, Weights] | None = None
        self._counter: Any = None  # a second tokenizer, which never truncates
        self._lock = threading.Lock()  # the first calls load once

    def _load(self) -> tuple[Any, Weights]:
        with self._lock:
            if self._loaded is None:
                from safetensors.numpy import load_file
                from tokenizers import Tokenizer

                try:
                    tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
                    weights = Weights(load_file(self.path / "model.safetensors"),
                                      json.loads((self.path / "config.json").read_text()))
                except (OSError, ValueError, KeyError) as exc:
                    raise ModelError(f"{self.path}: cannot load MiniLM ({exc})") from exc
                # set once, before any thread encodes: changing it later is not thread-safe
                tokenizer.enable_truncation(self.max_tokens)
                tokenizer.no_padding()
                self._loaded = (tokenizer, weights)
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
        tokenizer, w = self._load()
        if any(item.image is not None for item in inputs):
            raise ModelError("minilm embeds text only; visual search is off")
        # one by one: encode_batch starts the tokenizer's own thread pool, which then warns in
        # every process the daemon forks (OCR workers)
        ids = [tokenizer.encode(item.text or "").ids for item in inputs]
        out = np.zeros((len(inputs), self.dimension), dtype=np.float32)
        for batch in length_batches([len(x) for x in ids], self.batch_size, self.batch_tokens):
            longest = max(len(ids[i]) for i in batch)
            padded = np.zeros((len(batch), longest), dtype=np.int64)
            mask = np.zeros((len(batch), longest), dtype=bool)
            for row, i in enumerate(batch):
                padded[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = True
            hidden = w.forward(padded, mask)
            out[batch] = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return normalise(out)


class Weights:
    """MiniLM's weights laid out for numpy: each dense layer's matrix transposed and
    contiguous (a transposed view made every product about twice as slow), and the query, key
    and value projections joined into one product."""

    def __init__(self, raw: dict[str, Array], config: dict[str, Any]) -> None:
        self.eps = float(config["layer_norm_eps"])
        self.heads = int(config["num_attention_heads"])
        e = "embeddings."
        self.words = raw[e + "word_embeddings.weight"]
        self.positions = raw[e + "position_embeddings.weight"]
        self.token_type = raw[e + "token_type_embeddings.weight"][0]
        self.norm = (raw[e + "LayerNorm.weight"], raw[e + "LayerNorm.bias"])
        self.layers: list[dict[str, Array]] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."

            def dense(*names: str, p: str = p) -> tuple[Array, Array]:
                matrix = np.concatenate([raw[p + n + ".weight"] for n in names])
                bias = np.concatenate([raw[p + n + ".bias"] for n in names])
                return np.ascontiguousarray(matrix.T), bias

            qkv = dense(*(f"attention.self.{m}" for m in ("query", "key", "value")))
            out, inter, down = (dense("attention.output.dense"), dense("intermediate.dense"),
                                dense("output.dense"))
            self.layers.append({
                "qkv": qkv[0], "qkv_b": qkv[1], "out": out[0], "out_b": out[1],
                "inter": inter[0], "inter_b": inter[1], "down": down[0], "down_b": down[1],
                "norm1": raw[p + "attention.output.LayerNorm.weight"],
                "norm1_b": raw[p + "attention.output.LayerNorm.bias"],
                "norm2": raw[p + "output.LayerNorm.weight"],
                "norm2_b": raw[p + "output.LayerNorm.bias"]})

    def forward(self, ids: NDArray[np.int64], mask: NDArray[np.bool_]) -> Array:
        """The last hidden states, (batch, tokens, size), of padded ``ids``; ``mask`` marks
        the real tokens (padding is never attended to)."""
        rows, n = ids.shape
        x = self.words[ids] + self.positions[:n] + self.token_type
        size = x.shape[-1]
        x = layer_norm(x.reshape(rows * n, size), *self.norm, self.eps)
        d = size // self.heads
        # padded keys get a large negative score: exp() makes their weight exactly 0
        hide = np.where(mask, 0.0, -1e9).astype(np.float32)[:, None, None, :]
        for layer in self.layers:
            qkv = (x @ layer["qkv"] + layer["qkv_b"]).reshape(rows, n, 3, self.heads, d)
            q, k, v = qkv.transpose(2, 0, 3, 1, 4)  # each (rows, heads, n, d)
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d)) + hide
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = (scores / scores.sum(-1, keepdims=True)) @ v
            attn = attn.transpose(0, 2, 1, 3).reshape(rows * n, size)
            x = layer_norm(x + attn @ layer["out"] + layer["out_b"], layer["norm1"],
                           layer["norm1_b"], self.eps)
            h: Array = x @ layer["inter"] + layer["inter_b"]
            h = h * np.float32(0.5) * (np.float32(1.0) + erf(h / np.float32(np.sqrt(2.0))))
            x = layer_norm(x + h @ layer["down"] + layer["down_b"], layer["norm2"],
                           layer["norm2_b"], self.eps)
        out: Array = x.reshape(rows, n, size)
        return out
