"""Qwen3-VL-Embedding through transformers: text, images and both in one space, on CPU or GPU.

The prompt is the model's chat template with the instruction as the system message and the
content as the user message, generation prompt added. The vector is the base model's
``last_hidden_state`` at the last non-pad token (right padding), optionally truncated to
``dims`` (Matryoshka), L2-normalised.

No torchvision: the Qwen3-VL processor needs it, so we use the PIL image processor and expand
each ``<|image_pad|>`` to the image grid's token count ourselves, passing ``mm_token_type_ids``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, batches, normalise

MODELS = {
    "qwen3-vl-2b": "Qwen/Qwen3-VL-Embedding-2B",
    "qwen3-vl-8b": "Qwen/Qwen3-VL-Embedding-8B",
}
RERANKERS = {"qwen3-vl-reranker-2b": "Qwen/Qwen3-VL-Reranker-2B"}
DOCUMENT_INSTRUCTION = "Represent the user's input."
QUERY_INSTRUCTION = "Retrieve images or text relevant to the user's query."
IMAGE_PAD = "<|image_pad|>"


def locate(name: str) -> Path:
    """A local directory, or a known model name found in the Hugging Face cache, offline."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model folder (no config.json)")
        return path
    repo = {**MODELS, **RERANKERS}.get(name, name)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, local_files_only=True))
    except Exception as exc:
        raise ModelError(
            f"model {name!r} is not on this machine ({type(exc).__name__}); "
            f"download it once with `vaultlens model pull {name}`"
        ) from exc


def cpu_has_bf16() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Qwen3VLCheckpoint:
    """A Qwen3-VL checkpoint on disk, loaded on first use; turns prompts and images into model
    inputs. The embedder and the reranker are both built on it."""

    def __init__(self, name: str, max_image_tokens: int = 256, threads: int | None = None,
                 device: str | None = None, dtype: Any = None) -> None:
        self.path = locate(name)
        try:  # what a signature needs comes from the config files: weights load lazily
            self.config = json.loads((self.path / "config.json").read_text())
            self.hidden_size = int(self.config["text_config"]["hidden_size"])
            pre = json.loads((self.path / "preprocessor_config.json").read_text())
            unit = int(pre.get("patch_size", 16)) * int(pre.get("merge_size", 2))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{self.path}: cannot load a Qwen3-VL model "
                             f"({type(exc).__name__}: {exc})") from exc
        self._max_pixels = max_image_tokens * unit * unit
        self._min_pixels = min(4 * unit * unit, self._max_pixels)
        self._device, self._dtype, self._threads = device, dtype, threads
        self._model: Any = None
        # The daemon's search and indexing threads share one visual model (two copies would not
        # fit most machines). Neither torch modules nor fast tokenizers are safe to call from
        # two threads at once, so every use holds this lock; a search waits at most one batch.
        self.lock = threading.RLock()

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import (
            AutoTokenizer,
            Qwen2VLImageProcessorPil,
            Qwen3VLForConditionalGeneration,
        )

        self.device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = self._dtype
        if dtype is None:
            gpu_or_bf16 = self.device != "cpu" or cpu_has_bf16()
            dtype = torch.bfloat16 if gpu_or_bf16 else torch.float32
        if self._threads:
            torch.set_num_threads(self._threads)
        try:
            # Any: transformers' own hints are too loose (unions) to check our use against
            self._tokenizer: Any = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self._images: Any = Qwen2VLImageProcessorPil.from_pretrained(
                self.path, local_files_only=True)
            model = Qwen3VLForConditionalGeneration.from_pretrained(
                self.path, dtype=dtype, local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"{self.path}: cannot load a Qwen3-VL model ({exc})") from exc
        self._merge = int(self._images.merge_size) ** 2
        self._pad_id = self._tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        self._model = self._keep(model).to(self.device).eval()

    def _keep(self, model: Any) -> Any:
        """The part of the checkpoint used: the base model (the embedder needs no LM head)."""
        return model.model

    def _encode(self, prompts: list[str], images: Sequence[Sequence[Any]]) -> dict[str, Any]:
        """Model inputs for prompts, right-padded, where prompt i holds one <|image_pad|> per
        picture in images[i]: each pad is expanded to its picture's grid token count, as the
        torchvision-bound processor would."""
        pictures = [im.convert("RGB") for row in images for im in row]
        extra: dict[str, Any] = {}
        if pictures:
            pixels = self._images(
                images=pictures, return_tensors="pt",
                size={"shortest_edge": self._min_pixels, "longest_edge": self._max_pixels},
            )
            grid = pixels["image_grid_thw"]
            counts = iter(int(g.prod()) // self._merge for g in grid)
            expanded = []
            for prompt in prompts:
                pieces = prompt.split(IMAGE_PAD)
                out = pieces[0]
                for piece in pieces[1:]:
                    out += IMAGE_PAD * next(counts) + piece
                expanded.append(out)
            prompts = expanded
            extra = {"pixel_values": pixels["pixel_values"].to(self.device, self._model.dtype),
                     "image_grid_thw": grid.to(self.device)}
        enc = self._tokenizer(prompts, padding=True, padding_side="right", return_tensors="pt")
        ids = enc["input_ids"].to(self.device)
        return {"input_ids": ids, "attention_mask": enc["attention_mask"].to(self.device),
                "mm_token_type_ids": (ids == self._pad_id).int(), **extra}


class Qwen3VL(Qwen3VLCheckpoint, Embedder):
    supports_images = True
    mixed = True
    multilingual = True

    def __init__(
        self,
        name: str,
        dims: int | None = None,
        max_image_tokens: int = 256,
        threads: int | None = None,
        batch_size: int = 4,
        device: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name, max_image_tokens, threads, device, dtype)
        full = self.hidden_size
        if dims is not None and not 0 < dims <= full:
            raise ModelError(f"--dims {dims}: must be between 1 and {full}")
        self.dimension = dims or full
        self._dims = dims
        self.batch_size = batch_size
        self.name = name
        self.signature = (
            f"qwen3-vl:{self.path.name}:{self.dimension}:img{max_image_tokens}:"
            f"{DOCUMENT_INSTRUCTION}|{QUERY_INSTRUCTION}"
        )

    def count_tokens(self, text: str) -> int | None:
        with self.lock:
            self._load()
            return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt(self, item: Input, role: Role) -> str:
        content: list[dict[str, str]] = []
        if item.image is not None:
            content.append({"type": "image"})
        if item.text is not None or item.image is None:
            content.append({"type": "text", "text": item.text or ""})
        instruction = QUERY_INSTRUCTION if role == "query" else DOCUMENT_INSTRUCTION
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": [{"type": "text", "text": instruction}]},
            {"role": "user", "content": content},
        ]
        text: str = self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return text

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        rows = []
        for batch in batches(inputs, self.batch_size):
            with self.lock:  # per batch: a query waits for one batch, not a whole file
                self._load()
                rows.append(self._batch(batch, role))
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(rows)

    def _batch(self, items: Sequence[Input], role: Role) -> Vectors:
        import torch

        prompts = [self._prompt(item, role) for item in items]
        model_inputs = self._encode(prompts, [[item.image] if item.image is not None else []
                                              for item in items])
        with torch.inference_mode():
            out = self._model(**model_inputs)
        mask = model_inputs["attention_mask"]
        last = mask.sum(dim=1) - 1  # right padding: the last real token
        rows = torch.arange(mask.shape[0], device=self.device)
        hidden = out.last_hidden_state[rows, last]
        return normalise(hidden.float().cpu().numpy(), self._dims)
