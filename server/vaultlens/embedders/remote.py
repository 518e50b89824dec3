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

import base64
import io
import json
import math
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, normalise
from vaultlens.embedders.qwen3_vl import (
    DOCUMENT_INSTRUCTION,
    GPU_IMAGE_TOKENS,
    QUERY_INSTRUCTION,
)

KEY_ENV = "VAULTLENS_REMOTE_KEY"
# what Qwen's tokenizer reads as one added token wherever it stands: the chat format's
# "<|im_end|>", "<|image_pad|>" and the like, and its <think> and tool-call tags
CONTROL = re.compile(r"<(?=\|[a-z_]+\|>|/?(?:think|tool_call|tool_response)>)")
PIXEL_UNIT = 32  # Qwen3-VL: 16-pixel patches, merged 2 x 2 into one visual token
RETRY_STATUSES = {429, 500, 502, 503, 504}


def redact(url: str) -> str:
    """The URL without any user or password in it (what status shows)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def as_text(text: str) -> str:
    """A text a user wrote, safe to render into the conversation. vLLM tokenises the rendered
    prompt whole, control tokens included, so "<|im_end|>" in a note would end the turn and
    "<|image_pad|>" would ask for a picture nobody sent (vLLM refuses the request). A zero-width
    space after the "<" keeps them characters. The local embedder tokenises a user's text
    apart and needs no such change, so the vector of a text holding one differs a little from
    the local one; every other text is sent as it is."""
    return CONTROL.sub("<\u200b", text)


def processor_size(width: int, height: int, max_pixels: int, min_pixels: int) -> tuple[int, int]:
    """The size Qwen's image processor resizes a picture to (its smart_resize): each side a
    multiple of 32, the area within the pixel bounds, the aspect ratio kept."""
    u = PIXEL_UNIT
    h, w = max(u, round(height / u) * u), max(u, round(width / u) * u)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h, w = max(u, math.floor(height / beta / u) * u), max(u, math.floor(width / beta / u) * u)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / u) * u, math.ceil(width * beta / u) * u
    return w, h


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
        if not url.startswith(("http://", "https://")):
            raise ModelError(f"remote model {spec!r}: use remote:http://host:port[#model]")
        # requests go to the URL without credentials: a password in it is the bearer key,
        # unless VAULTLENS_REMOTE_KEY gives one
        self.url = self.location = redact(url.rstrip("/").removesuffix("/v1"))
        self.timeout, self.retries, self.parallel = timeout, retries, parallel
        self.key = key if key is not None else (os.environ.get(KEY_ENV)
                                                or urlsplit(url).password)
        # a GPU serves it: the reference's detail unless told otherwise
        self.max_image_tokens = max_image_tokens or GPU_IMAGE_TOKENS
        self._max_pixels = self.max_image_tokens * PIXEL_UNIT * PIXEL_UNIT
        self._min_pixels = min(4 * PIXEL_UNIT * PIXEL_UNIT, self._max_pixels)
        self.model: str | None = None
        self.model = self._served(wanted or None)
        full = len(self._request([Input(text="dimension probe")], "document")[0])
        if dims is not None and not 0 < dims <= full:
            raise ModelError(f"--dims {dims}: must be between 1 and {full}")
        self.full_dimension = full
        self.dimension = dims or full
        self._dims = dims
        self.name = f"remote:{self.model}"
        self.signature = (f"qwen3-vl-remote:{self.model}:{self.dimension}:"
                          f"img{self.max_image_tokens}:{DOCUMENT_INSTRUCTION}|{QUERY_INSTRUCTION}")

    # the HTTP side ---------------------------------------------------------------------------
    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request, retried with backoff on 429 and 5xx and on a dropped connection;
        errors name the server."""
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        data = None if body is None else json.dumps(body).encode()
        where = f"{self.location}{path}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url + path, data=data, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode(errors="replace")
                if exc.code not in RETRY_STATUSES or attempt == self.retries:
                    raise ModelError(f"{where}: HTTP {exc.code} ({detail})") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.retries:
                    reason = getattr(exc, "reason", exc)
                    raise ModelError(f"{where}: the embedding server cannot be reached "
                                     f"({reason})") from exc
            except ValueError as exc:  # not JSON: not a vLLM server
                raise ModelError(f"{where}: the answer is not JSON ({exc})") from exc
            time.sleep(min(0.5 * 2 ** attempt, 8.0))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _served(self, wanted: str | None) -> str:
        try:
            models = [m["id"] for m in self._call("/v1/models")["data"]]
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{self.location}/v1/models: not a model list") from exc
        if wanted is not None and wanted not in models:
            raise ModelError(f"{self.location} serves {', '.join(models) or 'no model'}, "
                             f"not {wanted!r}")
        if not models:
            raise ModelError(f"{self.location} serves no model")
        return wanted or str(models[0])

    # what is sent ----------------------------------------------------------------------------
    def _image_uri(self, image: Any) -> str:
        picture = image.convert("RGB")
        size = processor_size(picture.width, picture.height, self._max_pixels, self._min_pixels)
        if picture.size != size:
            from PIL import Image

            picture = picture.resize(size, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

    def body(self, item: Input, role: Role) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if item.image is not None:
            content.append({"type": "image_url", "image_url": {"url": self._image_uri(item.image)}})
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
        answer = self._call("/v1/embeddings", self.body(item, role))
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

