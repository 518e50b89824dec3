"""MiniLM's BERT encoder, read straight from its safetensors and tokenizer.json: the forward
pass in numpy (queries: no torch to import) or in torch (indexing: faster kernels, bfloat16).

Neither needs transformers: importing it and building the model through it took three of the
five seconds before the first batch, and in the daemon those seconds hold the GIL while a
paste waits. Tests hold both passes to transformers' own BertModel.

The weights are laid out once for inference: each dense layer's matrix transposed and
contiguous (a transposed view made every product about twice as slow in numpy), and the
query, key and value projections joined into one product.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vaultlens.embedders.base import ModelError

Array = NDArray[np.float32]
MASKED = -1e9  # a padded key's score: exp() gives it a weight of exactly 0


def load_tokenizer(path: Path, max_tokens: int | None) -> Any:
    """The model's fast tokenizer, cutting at ``max_tokens`` (None: never), unpadded. Set
    before any thread encodes: changing these later is not thread-safe."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    except Exception as exc:  # the Rust side raises its own exception type
        raise ModelError(f"{path}: cannot read tokenizer.json ({exc})") from exc
    if max_tokens is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_tokens)
    tokenizer.no_padding()
    return tokenizer


def padded(ids: Sequence[Sequence[int]]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Token ids in one zero-padded matrix, and the mask of the real ones."""
    longest = max(len(x) for x in ids)
    out = np.zeros((len(ids), longest), dtype=np.int64)
    mask = np.zeros((len(ids), longest), dtype=bool)
    for row, x in enumerate(ids):
        out[row, : len(x)] = x
        mask[row, : len(x)] = True
    return out, mask


def mean_pool(hidden: Array, mask: NDArray[np.bool_]) -> Array:
    """The mean of each row's real tokens (sentence-transformers' pooling for MiniLM)."""
    out: Array = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
    return out


def layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    # sums over the size, not mean(): the same numbers, without numpy's Python-level wrapper
    # (a query's pass runs 13 of these, holding the GIL while other searches wait)
    size = np.float32(x.shape[-1])
    centred = x - x.sum(-1, keepdims=True) / size
    var = (centred * centred).sum(-1, keepdims=True) / size
    out: Array = centred / np.sqrt(var + np.float32(eps)) * weight + bias
    return out


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


class Bert:
    """The encoder's weights, laid out for inference."""

    def __init__(self, raw: dict[str, Any], config: dict[str, Any]) -> None:
        """``raw``: tensors by transformers' BertModel names, matrices (out, in); the word
        table may be anything that ``table[ids]`` turns into rows (e5_weights.WordTable);
        ``config``: its config.json's fields."""
        self._lay_out(raw, config)

    @classmethod
    def load(cls, path: Path) -> Bert:
        """A BERT checkpoint folder: model.safetensors and config.json."""
        from safetensors.numpy import load_file

        try:
            raw = load_file(path / "model.safetensors")
            config = json.loads((path / "config.json").read_text())
            return cls(raw, config)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})"
                             ) from exc

    def _lay_out(self, raw: dict[str, Any], config: dict[str, Any]) -> None:
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
        """The last hidden states, (batch, tokens, size), of padded ``ids``, in numpy (zeros
        at padded positions)."""
        rows, n = ids.shape
        real = mask.reshape(rows * n)
        # the dense layers, most of the work, run on the real tokens only: queries batched
        # together differ in length, and padding was up to a third of the rows; only attention
        # needs the padded layout
        x = (self.words[ids] + self.positions[:n] + self.token_type).reshape(rows * n, -1)[real]
        size = x.shape[-1]
        x = layer_norm(x, *self.norm, self.eps)
        d = size // self.heads
        hide = np.where(mask, 0.0, MASKED).astype(np.float32)[:, None, None, :]
        padded = np.zeros((rows * n, 3 * size), dtype=np.float32)
        for layer in self.layers:
            padded[real] = x @ layer["qkv"] + layer["qkv_b"]
            q, k, v = padded.reshape(rows, n, 3, self.heads, d).transpose(2, 0, 3, 1, 4)
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d)) + hide
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = (scores / scores.sum(-1, keepdims=True)) @ v  # (rows, heads, n, d)
            attn = attn.transpose(0, 2, 1, 3).reshape(rows * n, size)[real]
            x = layer_norm(x + attn @ layer["out"] + layer["out_b"], layer["norm1"],
                           layer["norm1_b"], self.eps)
            h: Array = x @ layer["inter"] + layer["inter_b"]
            h = h * np.float32(0.5) * (np.float32(1.0) + erf(h / np.float32(np.sqrt(2.0))))
            x = layer_norm(x + h @ layer["down"] + layer["down_b"], layer["norm2"],
                           layer["norm2_b"], self.eps)
        out = np.zeros((rows * n, size), dtype=np.float32)
        out[real] = x
        return out.reshape(rows, n, size)


class TorchBert:
    """The same pass in torch: dense layers through ``linear`` (matrices back in torch's
    (out, in) order) and fused attention, as transformers' BertModel runs it."""

    MATRICES = ("qkv", "out", "inter", "down")

    def __init__(self, bert: Bert) -> None:
        import torch

        def t(a: Array) -> Any:
            return torch.from_numpy(np.ascontiguousarray(a))

        self.eps, self.heads = bert.eps, bert.heads
        self.words, self.positions = bert.words, t(bert.positions)  # rows looked up in numpy
        self.token_type, self.norm = t(bert.token_type), tuple(t(a) for a in bert.norm)
        self.layers = [{k: t(v.T if k in self.MATRICES else v) for k, v in layer.items()}
                       for layer in bert.layers]

    def forward(self, ids: NDArray[np.int64], mask: NDArray[np.bool_], bf16: bool = False
                ) -> Array:
        """The last hidden states as float32 numpy; ``bf16``: the products in bfloat16."""
        import torch
        from torch.nn import functional as tf

        rows, n = ids.shape
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                    enabled=bf16):
            x = torch.from_numpy(self.words[ids]) + self.positions[:n] + self.token_type
            size = x.shape[-1]
            d = size // self.heads
            x = tf.layer_norm(x, (size,), self.norm[0], self.norm[1], self.eps)
            keep = torch.from_numpy(mask)[:, None, None, :]  # True: attend to this key
            for w in self.layers:
                qkv = tf.linear(x, w["qkv"], w["qkv_b"]).view(rows, n, 3, self.heads, d)
                q, k, v = qkv.permute(2, 0, 3, 1, 4)
                attn = tf.scaled_dot_product_attention(q, k, v, attn_mask=keep)
                attn = attn.transpose(1, 2).reshape(rows, n, size)
                x = tf.layer_norm(x + tf.linear(attn, w["out"], w["out_b"]), (size,),
                                  w["norm1"], w["norm1_b"], self.eps)
                h = tf.gelu(tf.linear(x, w["inter"], w["inter_b"]))
                x = tf.layer_norm(x + tf.linear(h, w["down"], w["down_b"]), (size,),
                                  w["norm2"], w["norm2_b"], self.eps)
            out: Array = x.float().numpy()
        return out
