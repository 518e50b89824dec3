"""The reranker served by vLLM on another machine: ``--rerank remote:URL[#model]``.

Started there with (vLLM's ``examples/pooling/score/vision_rerank_api_online.py``)::

    vllm serve Qwen/Qwen3-VL-Reranker-2B --runner pooling --hf_overrides \\
      '{"architectures": ["Qwen3VLForSequenceClassification"],
        "classifier_from_token": ["no", "yes"], "is_original_qwen3_reranker": true}' \\
      --chat-template vaultlens-reranker.jinja

where ``vaultlens-reranker.jinja`` is TEMPLATE below (``vaultlens model template`` prints it).
vLLM renders each pair as ``[{"role": "query", ...}, {"role": "document", ...}]`` through that
template (``get_score_prompt`` in vllm/entrypoints/pooling/score/utils.py), each side's picture
as its placeholder followed by "\\n" and its text (``interleave_strings=False``), then
tokenises the whole prompt. vLLM's own example template asks with another instruction, and a
request cannot name one; TEMPLATE renders exactly the local reranker's prompt instead (the
reference's), dropping that "\\n". The score is vLLM's sigmoid(logit("yes") - logit("no")) at
the last token, the local reranker's.

The request is vLLM's ``RerankRequest`` (vllm/entrypoints/pooling/score/protocol.py): the query
and each document a string, or ``{"content": [parts]}`` with the picture as a ``data:`` URI at
the size the processor would give it, then the text. All of a search's documents go in one
request; vLLM batches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaultlens.embedders.base import Input, ModelError
from vaultlens.embedders.qwen3_vl import GPU_IMAGE_TOKENS
from vaultlens.embedders.vllm_client import VLLMClient, as_text
from vaultlens.search.reranker import INSTRUCTION, MAX_DOCUMENT_CHARS, SYSTEM, Reranker

_SIDE = ('{{{{ messages | selectattr("role", "eq", "{role}") | map(attribute="content") | first'
         ' | replace("<|vision_end|>\\n", "<|vision_end|>") }}}}')
# Jinja drops one newline at the end of a template: the prompt ends "<|im_start|>assistant\n"
TEMPLATE = (
    f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
    f"<Instruct>: {INSTRUCTION}<Query>:{_SIDE.format(role='query')}\n"
    f"<Document>:{_SIDE.format(role='document')}<|im_end|>\n<|im_start|>assistant\n\n"
)


class RemoteReranker(Reranker):
    def __init__(self, spec: str, max_image_tokens: int | None = None, timeout: float = 60.0,
                 retries: int = 4, key: str | None = None) -> None:
        """``spec``: ``URL`` or ``URL#model``. The server is first asked which model it
        serves at the first search it reranks, not here: a reranking server that is down
        when the daemon starts must not stop searches, which go unreranked meanwhile."""
        url, _, wanted = spec.partition("#")
        self.max_image_tokens = max_image_tokens or GPU_IMAGE_TOKENS
        self.server = VLLMClient(url, "the reranking server", timeout, retries, key,
                                 self.max_image_tokens)
        self.location = self.server.location
        self.wanted = wanted or None
        self.model: str | None = None
        self.name = f"remote:{self.wanted or self.location}"

    def side(self, item: Input) -> str | dict[str, Any]:
        """A query or a document as vLLM takes it: as the local prompt's part (reranker.py),
        the text cut to the same length, "NULL" for an empty side."""
        text = as_text((item.text or "")[:MAX_DOCUMENT_CHARS])
        if item.image is None:
            return text or "NULL"
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": self.server.image_uri(item.image)}}]
        if text:
            parts.append({"type": "text", "text": text})
        return {"content": parts}

    def scores(self, query: Input, documents: Sequence[Input]) -> list[float]:
        if not documents:
            return []
        if self.model is None:
            self.model = self.server.served(self.wanted)
        answer = self.server.call("/rerank", {
            "model": self.model, "query": self.side(query),
            "documents": [self.side(d) for d in documents], "top_n": len(documents)})
        where = f"{self.location}/rerank"
        try:
            scores = {int(r["index"]): float(r["relevance_score"]) for r in answer["results"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where}: no scores in the answer") from exc
        if sorted(scores) != list(range(len(documents))):
            raise ModelError(f"{where}: scores for {len(scores)} documents, "
                             f"not the {len(documents)} sent")
        return [scores[i] for i in range(len(documents))]
