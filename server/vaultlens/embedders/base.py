"""The embedding seam: one abstract method, capability flags, and the inputs it takes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL.Image import Image

from vaultlens.errors import VaultlensError

Role = Literal["query", "document"]
Vectors = NDArray[np.float32]


class ModelError(VaultlensError, RuntimeError):
    """A model cannot be loaded or cannot take this input; the message says what to do."""


@dataclass(frozen=True)
class Input:
    """Text, an image, or both (a model with ``mixed`` takes both in one input)."""

    text: str | None = None
    image: Image | None = None


class Embedder(ABC):
    """Turns inputs into L2-normalised float32 vectors of ``dimension`` in one shared space.

    ``signature`` names everything that changes a vector (model, dimension, instructions, image
    policy): cached embeddings are keyed by it, so changing any of these re-embeds, and nothing
    else does.
    """

    name: str
    signature: str
    dimension: int
    supports_images: bool = False  # capability flags
    mixed: bool = False
    multilingual: bool = False  # False: its vectors mean little outside English
    batch_size: int = 16
    location: str | None = None  # where a remote model runs (its URL, no credentials)

    @abstractmethod
    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        """One normalised row per input, in order."""

    def count_tokens(self, text: str) -> int | None:
        """Tokens in ``text`` by this model's tokenizer; None when it has none to offer
        (context packs then use a stated estimate)."""
        return None

    def ahead(self, text: str) -> None:
        """A hint: ``text`` will be asked for as a query soon. A model that batches queries
        starts on it with its next batch (coalesce.py); the others have nothing to do."""
        return None

    def close(self) -> None:
        """Let go of what the model holds outside this process (a worker process)."""
        return None

    def embed_texts(self, texts: Sequence[str], role: Role) -> Vectors:
        return self.embed([Input(text=t) for t in texts], role)

    def embed_images(self, images: Sequence[Image], role: Role) -> Vectors:
        if not self.supports_images:
            raise ModelError(f"{self.name} embeds text only; visual search is off")
        return self.embed([Input(image=im) for im in images], role)


class Wrapper(Embedder):
    """A model seen through another object (a cache, a batcher, a worker process): the same
    name, signature, dimension and flags as ``model``, so that vectors cached under one are
    the other's; tokens are counted and hints and closing passed on by ``model``."""

    def __init__(self, model: Embedder) -> None:
        self.model = model
        self.name, self.signature, self.dimension = model.name, model.signature, model.dimension
        self.supports_images, self.mixed = model.supports_images, model.mixed
        self.multilingual, self.batch_size = model.multilingual, model.batch_size
        self.location = model.location

    def count_tokens(self, text: str) -> int | None:
        return self.model.count_tokens(text)

    def ahead(self, text: str) -> None:
        self.model.ahead(text)

    def close(self) -> None:
        self.model.close()


def normalise(vectors: NDArray[np.floating], dims: int | None = None) -> Vectors:
    """Optionally truncate (Matryoshka), then scale each row to unit length."""
    v = np.asarray(vectors, dtype=np.float32)
    if dims is not None:
        v = v[:, :dims]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    out: Vectors = v / np.maximum(norms, 1e-12)
    return out


def batches(items: Sequence[Input], size: int) -> list[Sequence[Input]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
