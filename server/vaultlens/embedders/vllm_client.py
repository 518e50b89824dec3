"""A vLLM server on another machine, as the remote embedder and the remote reranker reach it:
requests with retries, its model list, pictures as ``data:`` URIs at the size its processor
would give them, and user text that stays text."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from vaultlens.embedders.base import ModelError
from vaultlens.embedders.pixels import reference_size

KEY_ENV = "VAULTLENS_REMOTE_KEY"
# what Qwen's tokenizer reads as one added token wherever it stands: the chat format's
# "<|im_end|>", "<|image_pad|>" and the like, and its <think> and tool-call tags
CONTROL = re.compile(r"<(?=\|[a-z_]+\|>|/?(?:think|tool_call|tool_response)>)")
PIXEL_UNIT = 32  # Qwen3-VL: 16-pixel patches, merged 2 x 2 into one visual token
RETRY_STATUSES = {429, 500, 502, 503, 504}


def redact(url: str) -> str:
    """The URL without any user or password in it (what status shows)."""
    parts = urlsplit(url)
    # the netloc after any "user:password@", kept as written: an IPv6 host keeps its brackets
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def as_text(text: str) -> str:
    """A text a user wrote, safe to render into the conversation. vLLM tokenises the rendered
    prompt whole, control tokens included, so "<|im_end|>" in a note would end the turn and
    "<|image_pad|>" would ask for a picture nobody sent (vLLM refuses the request). A zero-width
    space after the "<" keeps them characters. The local models tokenise a user's text apart
    and need no such change, so the vector (or score) of a text holding one differs a little
    from the local one; every other text is sent as it is."""
    return CONTROL.sub("<\u200b", text)


def processor_size(width: int, height: int, max_pixels: int, min_pixels: int) -> tuple[int, int]:
    """(width, height) the reference resizes a picture to (pixels.reference_size)."""
    h, w = reference_size(height, width, PIXEL_UNIT, min_pixels, max_pixels)
    return w, h


class VLLMClient:
    """``url``: the server (any ``/v1`` suffix dropped). A password in the URL is the bearer
    key, unless ``key`` or VAULTLENS_REMOTE_KEY gives one; requests go to the URL without it.
    ``what``: what the server is, for errors ("the embedding server")."""

    def __init__(self, url: str, what: str, timeout: float = 60.0, retries: int = 4,
                 key: str | None = None, max_image_tokens: int = 1800) -> None:
        if not url.startswith(("http://", "https://")):
            raise ModelError(f"remote model {url!r}: use remote:http://host:port[#model]")
        self.url = self.location = redact(url.rstrip("/").removesuffix("/v1"))
        self.what, self.timeout, self.retries = what, timeout, retries
        self.key = key if key is not None else (os.environ.get(KEY_ENV)
                                                or urlsplit(url).password)
        self.max_pixels = max_image_tokens * PIXEL_UNIT * PIXEL_UNIT
        self.min_pixels = min(4 * PIXEL_UNIT * PIXEL_UNIT, self.max_pixels)

    def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
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
                    raise ModelError(f"{where}: {self.what} cannot be reached "
                                     f"({reason})") from exc
            except ValueError as exc:  # not JSON: not a vLLM server
                raise ModelError(f"{where}: the answer is not JSON ({exc})") from exc
            time.sleep(min(0.5 * 2 ** attempt, 8.0))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def served(self, wanted: str | None) -> str:
        """The model id to ask for: ``wanted`` if the server serves it, else its first."""
        try:
            models = [m["id"] for m in self.call("/v1/models")["data"]]
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{self.location}/v1/models: not a model list") from exc
        if wanted is not None and wanted not in models:
            raise ModelError(f"{self.location} serves {', '.join(models) or 'no model'}, "
                             f"not {wanted!r}")
        if not models:
            raise ModelError(f"{self.location} serves no model")
        return wanted or str(models[0])

    def image_uri(self, image: Any) -> str:
        """The picture as a PNG ``data:`` URI, already at the size the server's processor
        would resize it to: the server resizes nothing, so it sees what a local model sees."""
        picture = image.convert("RGB")
        size = processor_size(picture.width, picture.height, self.max_pixels, self.min_pixels)
        if picture.size != size:
            from PIL import Image

            picture = picture.resize(size, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
