"""Qwen3-VL-Embedding through transformers: text, images and both in one space, on CPU or GPU.

The prompt is the model's chat template with the instruction as the system message and the
content as the user message, generation prompt added. The vector is the base model's
``last_hidden_state`` at the last non-pad token (right padding), optionally truncated to
``dims`` (Matryoshka), L2-normalised.

No torchvision: the Qwen3-VL processor needs it, so we read the PIL image processor's settings,
cut pictures into patches on the model's device (pixels.py, the same numbers), and expand each
``<|image_pad|>`` to the image grid's token count ourselves, passing ``mm_token_type_ids``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, batches, normalise
from vaultlens.embedders.pixels import Patches

MODELS = {
    "qwen3-vl-2b": "Qwen/Qwen3-VL-Embedding-2B",
    "qwen3-vl-8b": "Qwen/Qwen3-VL-Embedding-8B",
}
RERANKERS = {"qwen3-vl-reranker-2b": "Qwen/Qwen3-VL-Reranker-2B"}
DOCUMENT_INSTRUCTION = "Represent the user's input."
QUERY_INSTRUCTION = "Retrieve images or text relevant to the user's query."
IMAGE_PAD = "<|image_pad|>"
CPU_IMAGE_TOKENS, GPU_IMAGE_TOKENS = 256, 1800  # visual tokens per image, by device
# inputs per forward pass, by device. On an H200 (bench/gpu_bench.py) 16 screenshots a pass
# embedded 1.7x as many a second as 4, and 16 texts 3.6x; 64 gained another 1.15-1.3x for
# images but would hold a search up behind a pass four times as long
CPU_BATCH, GPU_BATCH = 4, 16
_MARK = re.compile("\x00([0-9]+)\x00")  # where a text the user wrote stands in a template


@dataclass
class Prompt:
    """A prompt as the chat template renders it, with every text the user wrote kept apart
    (``mark`` puts one in): those are tokenised as plain text, so "<|im_end|>" or
    "<|image_pad|>" in a note is characters, never the end of a turn or a picture."""

    template: str = ""
    texts: list[str] = field(default_factory=list)

    def mark(self, text: str) -> str:
        """Keep ``text`` aside; what stands for it in the messages given to the template."""
        self.texts.append(text.replace("\x00", " "))
        return f"\x00{len(self.texts) - 1}\x00"


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


def chat_template_json(path: Path) -> str:
    """The chat template from chat_template.json: some checkpoints ship it only there, and
    tokenizers read it from tokenizer_config.json or chat_template.jinja alone."""
    try:
        template = json.loads((path / "chat_template.json").read_text())["chat_template"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: no chat template (looked in tokenizer_config.json, "
                         "chat_template.jinja and chat_template.json)") from exc
    if not isinstance(template, str) or not template:
        raise ModelError(f"{path}/chat_template.json: 'chat_template' is not a template")
    return template


def special_tokens_around(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a text of its own accord (a BOS, an EOS), so
    that a prompt tokenised in pieces gets them once, as a whole would."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    return [], []


def on_gpu(device: str | None) -> bool:
    """Whether the model will run on a GPU: ``device``, or the one it would pick."""
    if device is None:
        import torch

        return bool(torch.cuda.is_available())
    return device != "cpu"


def image_tokens_for(device: str | None) -> int:
    """Visual tokens per image when none are asked for: on a GPU the reference's 1,800 (the
    detail of a text-heavy screenshot), on a CPU 256 (each token costs there)."""
    return GPU_IMAGE_TOKENS if on_gpu(device) else CPU_IMAGE_TOKENS


def batch_for(device: str | None) -> int:
    """Inputs per forward pass when none is asked for (see GPU_BATCH)."""
    return GPU_BATCH if on_gpu(device) else CPU_BATCH


def cpu_has_bf16() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Qwen3VLCheckpoint:
    """A Qwen3-VL checkpoint on disk, loaded on first use; turns prompts and images into model
    inputs. The embedder and the reranker are both built on it."""

    def __init__(self, name: str, max_image_tokens: int | None = None,
                 threads: int | None = None, device: str | None = None, dtype: Any = None
                 ) -> None:
        self.path = locate(name)
        self.max_image_tokens = max_image_tokens or image_tokens_for(device)
        try:  # what a signature needs comes from the config files: weights load lazily
            self.config = json.loads((self.path / "config.json").read_text())
            self.hidden_size = int(self.config["text_config"]["hidden_size"])
            pre = json.loads((self.path / "preprocessor_config.json").read_text())
            unit = int(pre.get("patch_size", 16)) * int(pre.get("merge_size", 2))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{self.path}: cannot load a Qwen3-VL model "
                             f"({type(exc).__name__}: {exc})") from exc
        self._max_pixels = self.max_image_tokens * unit * unit
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
        if not getattr(self._tokenizer, "chat_template", None):
            self._tokenizer.chat_template = chat_template_json(self.path)
        self._around = special_tokens_around(self._tokenizer)
        self._merge = int(self._images.merge_size) ** 2
        # on a CPU the forward pass dwarfs preparing pictures and the cores are the model's; on
        # a GPU one core preparing them kept the GPU waiting (bench/gpu_bench.py)
        workers = 1 if self.device == "cpu" else min(8, os.cpu_count() or 1)
        self._patches = Patches(self._images, self._min_pixels, self._max_pixels, workers)
        pad: Any = self._tokenizer.convert_tokens_to_ids(IMAGE_PAD)  # one string: one id
        self._pad_id = int(pad)
        self._model = self._keep(model).to(self.device).eval()

    def _keep(self, model: Any) -> Any:
        """The part of the checkpoint used: the base model (the embedder needs no LM head)."""
        return model.model

    def _ids(self, prompt: Prompt, pictures: Iterator[int] | None = None) -> list[int]:
        """Token ids of a prompt: the template with its control tokens, each user text as
        plain text, and around it all what the tokenizer adds to a whole text (its
        post-processor's tokens, if any); each <|image_pad|> of the template expanded to its
        picture's grid token count (``pictures``), as the torchvision-bound processor would."""
        before, after = self._around
        ids: list[int] = list(before)
        for n, piece in enumerate(_MARK.split(prompt.template)):
            if n % 2:  # a user's text
                ids += self._tokenizer(prompt.texts[int(piece)], add_special_tokens=False,
                                       split_special_tokens=True)["input_ids"]
                continue
            if pictures is not None:
                first, *rest = piece.split(IMAGE_PAD)
                piece = first + "".join(IMAGE_PAD * next(pictures) + r for r in rest)
            ids += self._tokenizer(piece, add_special_tokens=False)["input_ids"]
        return ids + list(after)

    def _encode(self, prompts: Sequence[Prompt], images: Sequence[Sequence[Any]]
                ) -> dict[str, Any]:
        """Model inputs for prompts, right-padded, where prompt i holds one <|image_pad|> per
        picture in images[i]."""
        import torch

        pictures = [im.convert("RGB") for row in images for im in row]
        extra: dict[str, Any] = {}
        counts = None
        if pictures:
            pixels, grid = self._patches(pictures, self.device)
            counts = iter(int(g.prod()) // self._merge for g in grid)
            extra = {"pixel_values": pixels.to(self._model.dtype),
                     "image_grid_thw": grid.to(self.device)}
        rows = [self._ids(p, counts) for p in prompts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), int(self._tokenizer.pad_token_id))
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for n, row in enumerate(rows):
            ids[n, : len(row)] = torch.tensor(row)
            mask[n, : len(row)] = 1
        ids = ids.to(self.device)
        return {"input_ids": ids, "attention_mask": mask.to(self.device),
                "mm_token_type_ids": ids.eq(self._pad_id).int(), "use_cache": False, **extra}


class Qwen3VL(Qwen3VLCheckpoint, Embedder):
    supports_images = True
    mixed = True
    multilingual = True

    def __init__(
        self,
        name: str,
        dims: int | None = None,
        max_image_tokens: int | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name, max_image_tokens, threads, device, dtype)
        full = self.hidden_size
        if dims is not None and not 0 < dims <= full:
            raise ModelError(f"--dims {dims}: must be between 1 and {full}")
        self.dimension = dims or full
        self._dims = dims
        self.batch_size = batch_size or batch_for(device)
        self.name = name
        self.signature = (
            f"qwen3-vl:{self.path.name}:{self.dimension}:img{self.max_image_tokens}:"
            f"{DOCUMENT_INSTRUCTION}|{QUERY_INSTRUCTION}"
        )

    def count_tokens(self, text: str) -> int | None:
        with self.lock:
            self._load()
            return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt(self, item: Input, role: Role) -> Prompt:
        prompt = Prompt()
        content: list[dict[str, str]] = []
        if item.image is not None:
            content.append({"type": "image"})
        if item.text is not None or item.image is None:
            content.append({"type": "text", "text": prompt.mark(item.text or "")})
        instruction = QUERY_INSTRUCTION if role == "query" else DOCUMENT_INSTRUCTION
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": [{"type": "text", "text": instruction}]},
            {"role": "user", "content": content},
        ]
        prompt.template = self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True)
        return prompt

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
        return self._vectors([self._prompt(item, role) for item in items],
                             [[item.image] if item.image is not None else [] for item in items])

    def _vectors(self, prompts: Sequence[Prompt], images: Sequence[Sequence[Any]]) -> Vectors:
        """The pooled vectors of prompts (with their pictures): the hidden state of the last
        real token, cut to ``dims`` and normalised."""
        import torch

        model_inputs = self._encode(prompts, images)
        with torch.inference_mode():
            out = self._model(**model_inputs)
        mask = model_inputs["attention_mask"]
        last = mask.sum(dim=1) - 1  # right padding: the last real token
        rows = torch.arange(mask.shape[0], device=self.device)
        hidden = out.last_hidden_state[rows, last]
        return normalise(hidden.float().cpu().numpy(), self._dims)
