"""Qwen3-VL-Embedding served by vLLM on another machine: ``--model remote:URL[#model]``.

Started there with ``vllm serve Qwen/Qwen3-VL-Embedding-2B --runner pooling`` (vLLM 0.14 or
later). Each input is one request to ``/v1/embeddings`` in its chat form (vLLM's
``EmbeddingChatRequest``): the instruction as the system turn, the user turn holding the picture
as a ``data:`` URI and then the text, exactly the conversation the local embedder renders
(qwen3_vl.py). Two settings make vLLM end the prompt where the reference pools:

- an empty assistant turn with ``continue_final_message: true`` renders the conversation up to
  "<|im_start|>assistant\\n" and stops there, as ``add_generation_prompt`` does locally; vLLM
  refuses both at once (``ChatRequestOptionsMixin.check_generation_prompt`` in
  vllm/entrypoints/pooling/base/protocol.py);
- ``add_special_tokens: true`` adds what the tokenizer adds to a whole text, as the local
  embedder does; vLLM's default for chat requests is false (same file).

Plain ``input`` strings are never sent: vLLM embeds them without the chat template, and for this
model they give other vectors (cosine 0.27 where the reference gives 0.77, reported on vLLM's
tracker). Pictures are resized here to the size the model's processor would give them under the
pixel cap, so the server resizes nothing and the vectors match the local ones. A control token
written in a note ("<|im_end|>") is sent as characters (``as_text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, normalise
from vaultlens.embedders.qwen3_vl import (
    DOCUMENT_INSTRUCTION,
    GPU_IMAGE_TOKENS,
    QUERY_INSTRUCTION,
)
from vaultlens.embedders.vllm_client import (  # noqa: F401 - processor_size, redact: the API
    VLLMClient,
    as_text,
    processor_size,
    redact,
)


class Remote(Embedder):
    supports_images = True
    mixed = True
    multilingual = True

    def __init__(self, spec: str, dims: int | None = None, max_image_tokens: int | None = None,
                 timeout: float = 60.0, retries: int = 4, parallel: int = 4,
                 key: str | None = None) -> None:
        """``spec``: ``URL`` or ``URL#model`` (the server's model id; default: the one it
        serves). Asks the server at once which model it serves and how long its vectors are:
        the signature needs both before anything is embedded."""
        url, _, wanted = spec.partition("#")
        # a GPU serves it: the reference's detail unless told otherwise
        self.max_image_tokens = max_image_tokens or GPU_IMAGE_TOKENS
        self.server = VLLMClient(url, "the embedding server", timeout, retries, key,
                                 self.max_image_tokens)
        self.location, self.parallel = self.server.location, parallel
        self.model: str | None = None
        self.model = self.server.served(wanted or None)
        full = len(self._request([Input(text="dimension probe")], "document")[0])
        if dims is not None and not 0 < dims <= full:
            raise ModelError(f"--dims {dims}: must be between 1 and {full}")
        self.full_dimension = full
        self.dimension = dims or full
        self._dims = dims
        self.name = f"remote:{self.model}"
        self.signature = (f"qwen3-vl-remote:{self.model}:{self.dimension}:"
                          f"img{self.max_image_tokens}:{DOCUMENT_INSTRUCTION}|{QUERY_INSTRUCTION}")

    # what is sent ----------------------------------------------------------------------------
    def body(self, item: Input, role: Role) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if item.image is not None:
            content.append({"type": "image_url",
                            "image_url": {"url": self.server.image_uri(item.image)}})
        if item.text is not None or item.image is None:
            content.append({"type": "text", "text": as_text(item.text or "")})
        instruction = QUERY_INSTRUCTION if role == "query" else DOCUMENT_INSTRUCTION
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": instruction}]},
                {"role": "user", "content": content},
                {"role": "assistant", "content": [{"type": "text", "text": ""}]},
            ],
            "continue_final_message": True,
            "add_special_tokens": True,
            "encoding_format": "float",
        }

    def _one(self, item: Input, role: Role) -> list[float]:
        answer = self.server.call("/v1/embeddings", self.body(item, role))
        try:
            vector = answer["data"][0]["embedding"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError(f"{self.location}/v1/embeddings: no embedding in the answer"
                             ) from exc
        if not isinstance(vector, list):
            raise ModelError(f"{self.location}/v1/embeddings: the embedding is not a list")
        return vector

    def _request(self, inputs: Sequence[Input], role: Role) -> list[list[float]]:
        if len(inputs) == 1:
            return [self._one(inputs[0], role)]
        with ThreadPoolExecutor(min(self.parallel, len(inputs))) as pool:
            return list(pool.map(lambda item: self._one(item, role), inputs))

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        if not inputs:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows = self._request(inputs, role)
        wrong = {len(r) for r in rows} - {self.full_dimension}
        if wrong:
            raise ModelError(f"{self.location} answered vectors of {sorted(wrong)[0]} "
                             f"dimensions, not {self.full_dimension}: another model?")
        return normalise(np.asarray(rows, dtype=np.float32), self._dims)

