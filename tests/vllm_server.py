"""A stand-in for vLLM's embedding server, for conformance tests with no GPU.

It takes ``/v1/embeddings`` in its chat form with vLLM's request schema (EmbeddingChatRequest,
vllm/entrypoints/pooling/base/protocol.py) and answers as vLLM does, embedding with the tiny
Qwen3-VL model: it renders the messages with the model's chat template (image parts become the
template's picture, as vLLM's "openai" content format does), tokenises the whole prompt with or
without the tokenizer's special tokens as the request says, and pools the last token.

It is stricter than vLLM in one way, on purpose: vLLM ignores a field it does not know (with a
warning in its log), and an ignored setting silently changes the vectors; here it is a 400. A
plain ``input`` request is refused too: for this model it gives wrong vectors.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch
from PIL import Image

from vaultlens.embedders.base import normalise
from vaultlens.embedders.qwen3_vl import Prompt, Qwen3VL
from vaultlens.search.reranker import Qwen3VLReranker

FIELDS = {  # EmbeddingChatRequest's fields, with their JSON types
    "model": str, "user": str, "truncate_prompt_tokens": int, "padding": str,
    "truncation_side": str, "request_id": str, "priority": int, "mm_processor_kwargs": dict,
    "cache_salt": str, "messages": list, "add_generation_prompt": bool,
    "continue_final_message": bool, "add_special_tokens": bool, "chat_template": str,
    "chat_template_kwargs": dict, "media_io_kwargs": dict, "encoding_format": str,
    "embed_dtype": str, "endianness": str, "dimensions": int, "use_activation": bool,
}
ROLES = {"system", "user", "assistant"}
RERANK_FIELDS = {  # RerankRequest's fields (vllm/entrypoints/pooling/score/protocol.py and the
    # mixins it takes from pooling/base/protocol.py), with their JSON types
    "model": str, "user": str, "truncate_prompt_tokens": int, "padding": str,
    "truncation_side": str, "request_id": str, "priority": int, "mm_processor_kwargs": dict,
    "cache_salt": str, "use_activation": bool, "query": (str, dict), "documents": (str, dict, list),
    "top_n": int,
}
PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"  # Qwen3-VL's, in vLLM


class Invalid(ValueError):
    pass


def checked(request: Any, fields: dict[str, Any]) -> None:
    """As vLLM's request models check a body, but an unknown field is refused (see above)."""
    if not isinstance(request, dict):
        raise Invalid("the body is not an object")
    unknown = set(request) - set(fields)
    if unknown:
        raise Invalid(f"unknown fields: {sorted(unknown)}")
    for name, kind in fields.items():
        if name in request and request[name] is not None and (
                not isinstance(request[name], kind)
                or (kind is int and isinstance(request[name], bool))):
            raise Invalid(f"{name}: wrong type")


class FakeVLLM:
    def __init__(self, model: Qwen3VL | None = None,
                 model_id: str = "Qwen/Qwen3-VL-Embedding-2B", key: str | None = None,
                 reranker: Qwen3VLReranker | None = None, score_template: str | None = None
                 ) -> None:
        """An embedding server with ``model``, or a reranking one with ``reranker`` and the
        ``--chat-template`` it was started with."""
        self.model, self.model_id, self.key = model, model_id, key
        self.reranker, self.score_template = reranker, score_template
        self.fail: list[int] = []  # statuses to answer with, one per request, first
        self.delay = 0.0  # seconds before each answer
        self.dimension: int | None = None  # answer vectors cut to this length (a wrong server)
        self.requests: list[dict[str, Any]] = []
        self.token_ids: list[list[int]] = []  # each request's prompt, as it was tokenised
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                server.handle(self, self.rfile.read(length))

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def handle(self, h: BaseHTTPRequestHandler, body: bytes | None) -> None:
        time.sleep(self.delay)
        with self.lock:
            status = self.fail.pop(0) if self.fail else None
        if status is not None:
            return self.answer(h, status, {"error": {"message": "injected", "code": status}})
        if self.key and h.headers.get("Authorization") != f"Bearer {self.key}":
            return self.answer(h, 401, {"error": {"message": "unauthorized", "code": 401}})
        if body is None and h.path == "/v1/models":
            return self.answer(h, 200, {"object": "list", "data": [
                {"id": self.model_id, "object": "model", "owned_by": "vllm"}]})
        if body is not None and h.path in ("/rerank", "/v1/rerank") and self.reranker:
            try:
                request = json.loads(body)
                self.requests.append(request)
                return self.answer(h, 200, self.rerank(request))
            except Invalid as exc:
                return self.answer(h, 400, {"error": {"message": str(exc), "code": 400}})
        if body is None or h.path != "/v1/embeddings" or self.model is None:
            return self.answer(h, 404, {"error": {"message": "not found", "code": 404}})
        try:
            request = json.loads(body)
            self.requests.append(request)
            vector, tokens = self.embed(request)
        except Invalid as exc:
            return self.answer(h, 400, {"error": {"message": str(exc), "code": 400}})
        if self.dimension is not None:
            vector = vector[: self.dimension]
        return self.answer(h, 200, {
            "id": "embd-test", "object": "list", "created": int(time.time()),
            "model": self.model_id,
            "data": [{"index": 0, "object": "embedding", "embedding": vector}],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    @staticmethod
    def answer(h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def validate(self, request: Any) -> tuple[list[dict[str, Any]], list[Image.Image]]:
        if isinstance(request, dict) and "input" in request:
            raise Invalid("plain 'input' is refused here: it skips the chat template")
        checked(request, FIELDS)
        if "messages" not in request:
            raise Invalid("messages: field required")
        if request.get("continue_final_message") and request.get("add_generation_prompt"):
            raise Invalid("Cannot set both `continue_final_message` and "
                          "`add_generation_prompt` to True.")
        if request.get("encoding_format", "float") not in ("float", "base64"):
            raise Invalid("encoding_format: use float or base64")
        if request.get("model") not in (None, self.model_id):
            raise Invalid(f"The model `{request['model']}` does not exist.")
        messages, images = [], []
        for m in request["messages"]:
            if not isinstance(m, dict) or set(m) - {"role", "content", "name"} or \
                    m.get("role") not in ROLES:
                raise Invalid(f"bad message: {m!r:.80}")
            content = m.get("content")
            if isinstance(content, str):
                messages.append({"role": m["role"], "content": content})
                continue
            if not isinstance(content, list):
                raise Invalid("content: a string or a list of parts")
            parts: list[dict[str, Any]] = []
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and set(part) == {"type", "text"} and isinstance(
                        part["text"], str):
                    parts.append({"type": "text", "text": part["text"]})
                elif kind == "image_url" and set(part) == {"type", "image_url"}:
                    images.append(self.picture(part))
                    parts.append({"type": "image"})
                else:
                    raise Invalid(f"bad content part: {part!r:.80}")
            messages.append({"role": m["role"], "content": parts})
        return messages, images

    def embed(self, request: dict[str, Any]) -> tuple[list[float], int]:
        messages, images = self.validate(request)
        q = self.model
        assert q is not None
        with q.lock:
            q._load()
            rendered = q._tokenizer.apply_chat_template(
                messages, tokenize=False,
                add_generation_prompt=bool(request.get("add_generation_prompt", False)),
                continue_final_message=bool(request.get("continue_final_message", False)))
            # vLLM tokenises the rendered prompt whole; the special tokens of the tokenizer
            # only when the request asks for them
            kept = q._around
            if not request.get("add_special_tokens", False):
                q._around = ([], [])
            try:
                inputs = q._encode([Prompt(template=rendered)], [images])
            finally:
                q._around = kept
            self.token_ids.append([int(t) for t in inputs["input_ids"][0]])
            with torch.inference_mode():
                hidden = q._model(**inputs).last_hidden_state
            last = int(inputs["attention_mask"].sum()) - 1
            vector = normalise(hidden[0, last][None].float().numpy())[0]
        return [float(x) for x in vector], last + 1

    # the reranking side ------------------------------------------------------------------------
    @staticmethod
    def picture(part: Any) -> Image.Image:
        url = part["image_url"].get("url", "") if isinstance(part["image_url"], dict) else ""
        if not url.startswith("data:image/"):
            raise Invalid("image_url: only data: URIs in this test server")
        return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")

    def side(self, data: Any, images: list[Image.Image]) -> str:
        """One query or document as vLLM's score path makes it a string: the pictures'
        placeholders, then the texts, joined by "\n" (interleave_strings=False)."""
        if isinstance(data, str):
            return data
        if not isinstance(data, dict) or set(data) != {"content"} or not isinstance(
                data["content"], list):
            raise Invalid(f"bad score input: {data!r:.80}")
        marks, texts = [], []
        for part in data["content"]:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and set(part) == {"type", "text"} and isinstance(part["text"], str):
                texts.append(part["text"])
            elif kind == "image_url" and set(part) == {"type", "image_url"}:
                images.append(self.picture(part))
                marks.append(PLACEHOLDER)
            else:
                raise Invalid(f"bad content part: {part!r:.80}")
        return "\n".join(marks + texts)

    def rerank(self, request: Any) -> dict[str, Any]:
        checked(request, RERANK_FIELDS)
        if "query" not in request or "documents" not in request:
            raise Invalid("query and documents: fields required")
        if request.get("model") not in (None, self.model_id):
            raise Invalid(f"The model `{request['model']}` does not exist.")
        documents = request["documents"]
        documents = documents if isinstance(documents, list) else [documents]
        r = self.reranker
        assert r is not None and self.score_template is not None
        prompts, pictures = [], []
        with r.lock:
            r._load()
            for document in documents:
                images: list[Image.Image] = []
                query, text = self.side(request["query"], images), self.side(document, images)
                rendered = r._tokenizer.apply_chat_template(
                    [{"role": "query", "content": query}, {"role": "document", "content": text}],
                    chat_template=self.score_template, tokenize=False)
                prompts.append(Prompt(template=rendered))  # tokenised whole, as vLLM does
                pictures.append(images)
            scores = r.judge(prompts, pictures)
            # the tokens of each pair without pictures (what the tests look at); [] for the
            # others, so the list keeps one entry a pair
            self.token_ids += [r._ids(p, iter([])) if not im else [] for p, im in
                               zip(prompts, pictures, strict=True)]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
        top = request.get("top_n") or len(ranked)
        return {"id": "rerank-test", "model": self.model_id,
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
                "results": [{"index": i, "document": {"text": documents[i]}
                             if isinstance(documents[i], str) else {"multi_modal":
                                                                    documents[i]["content"]},
                             "relevance_score": scores[i]} for i in ranked[:top]]}
