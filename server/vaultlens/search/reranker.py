"""Reranking the top hits with a cross-encoder that reads the query and each hit together.

``Qwen/Qwen3-VL-Reranker-2B`` is a Qwen3-VL causal LM asked "does this document meet the
query? yes or no". Its score is sigmoid(logit("yes") - logit("no")) at the last real token. It
reads images as pixels, so a screenshot is judged by what it shows, not only by its OCR. It
costs a forward pass per hit: off by default, and on CPU slow (use a GPU or a small top N).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from vaultlens.embedders.base import Input, ModelError
from vaultlens.embedders.qwen3_vl import IMAGE_PAD, Prompt, Qwen3VLCheckpoint, batch_for
from vaultlens.extract.images import ImageError, open_image
from vaultlens.index.reader import Reader
from vaultlens.search.hits import Hit
from vaultlens.search.kinds import HitKind

SYSTEM = ('Judge whether the Document meets the requirements based on the Query and the '
          'Instruct provided. Note that the answer can only be "yes" or "no".')
INSTRUCTION = "Retrieve images or text relevant to the user's query."
MAX_DOCUMENT_CHARS = 2000
log = logging.getLogger(__name__)


class Reranker(ABC):
    name: str

    @abstractmethod
    def scores(self, query: Input, documents: Sequence[Input]) -> list[float]:
        """Relevance in [0, 1] of each document to the query, in order."""


class Qwen3VLReranker(Qwen3VLCheckpoint, Reranker):
    def __init__(self, name: str, max_image_tokens: int | None = None, threads: int | None = None,
                 batch_size: int | None = None, device: str | None = None, dtype: Any = None
                 ) -> None:
        super().__init__(name, max_image_tokens, threads, device, dtype)
        self.name = name
        self.batch_size = batch_size or batch_for(device)

    def _keep(self, model: Any) -> Any:
        return model  # the LM head gives the yes/no logits

    def _answer_ids(self) -> tuple[int, int]:
        ids = []
        for word in ("yes", "no"):
            token = self._tokenizer.convert_tokens_to_ids(word)
            if token is None or token == self._tokenizer.unk_token_id:
                raise ModelError(f"{self.path}: the tokenizer has no single token {word!r}; "
                                 "not a Qwen3-VL reranker")
            ids.append(int(token))
        return ids[0], ids[1]

    def _prompt(self, query: Input, document: Input) -> tuple[Prompt, list[Any]]:
        prompt = Prompt()

        def part(item: Input) -> str:
            # the reference's content parts, joined as its chat template joins them: the image
            # first, then the text; "NULL" stands for an empty side
            image = "<|vision_start|>" + IMAGE_PAD + "<|vision_end|>" if item.image else ""
            text = (item.text or "")[:MAX_DOCUMENT_CHARS]
            return image + prompt.mark(text) if image or text else "NULL"

        # exactly the reference's user turn (QwenLM/Qwen3-VL-Embedding, format_mm_instruction):
        # no newline before <Query>:, no space after <Query>: or <Document>:
        user = f"<Instruct>: {INSTRUCTION}<Query>:{part(query)}\n<Document>:{part(document)}"
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        prompt.template = self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True)
        return prompt, [im for im in (query.image, document.image) if im is not None]

    def scores(self, query: Input, documents: Sequence[Input]) -> list[float]:
        if not documents:
            return []
        out: list[float] = []
        with self.lock:
            self._load()
            for start in range(0, len(documents), self.batch_size):
                pairs = [self._prompt(query, d)
                         for d in documents[start : start + self.batch_size]]
                out += self.judge([p for p, _ in pairs], [images for _, images in pairs])
        return out

    def judge(self, prompts: Sequence[Prompt], images: Sequence[Sequence[Any]]) -> list[float]:
        """sigmoid(logit("yes") - logit("no")) at the last real token of each rendered pair,
        in one forward pass; the caller holds the lock with the model loaded (a stand-in for
        vLLM in the tests scores its own renderings with it too)."""
        import torch

        yes, no = self._answer_ids()
        # only the two answers' logits, at the last real token, in float32: the whole
        # vocabulary at every position was about 0.85 GB per batch of 4 on 2B, and in
        # bfloat16 close scores tied
        head = self._model.lm_head
        answers = head.weight[[yes, no]].float()
        bias = head.bias[[yes, no]].float() if head.bias is not None else None
        inputs = self._encode(prompts, images)
        with torch.inference_mode():
            hidden = self._model.model(**inputs).last_hidden_state
            last = inputs["attention_mask"].sum(dim=1) - 1  # right padding
            rows = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            logits = rows.float() @ answers.T
            if bias is not None:
                logits = logits + bias
        return [float(x) for x in torch.sigmoid(logits[:, 0] - logits[:, 1]).cpu()]


class Rerank:
    """The search step: rerank the first ``top`` hits, keep the rest in order after them."""

    def __init__(self, model: Reranker, document: Callable[[Hit], Input], top: int = 20) -> None:
        self.model = model
        self.document = document
        self.top = top

    def apply(self, query: Input, hits: list[Hit]) -> list[Hit]:
        head, tail = hits[: self.top], hits[self.top :]
        if not head:
            return hits
        try:
            scores = self.model.scores(query, [self.document(h) for h in head])
        except ModelError as exc:  # a remote reranker down: the search's own ranking stands
            log.warning("reranking skipped: %s", exc)
            return hits
        ranked = sorted(zip(scores, range(len(head)), head, strict=True),
                        key=lambda x: (-x[0], x[1]))
        return [replace(h, score=round(s, 6)) for s, _, h in ranked] + tail


def hit_document(catalog: Reader, vault: Path) -> Callable[[Hit], Input]:
    """What the reranker reads of a hit: a passage's text under its headings; an image's
    pixels with its OCR text; a PDF page's text."""
    def document(hit: Hit) -> Input:
        row = catalog.item(hit.id)
        text = row["text"] if row is not None else hit.text
        if hit.kind == HitKind.NOTE:
            texts = [row["text"]] if row is not None else []
            if hit.line is not None and hit.end_line is not None:
                texts = [] if row is None else catalog.texts_within(
                    row["file_id"], hit.line, hit.end_line, sections_only=False)
            body = "\n".join(texts) or text
            return Input(text=" > ".join([hit.path, *hit.headings]) + "\n" + body)
        if hit.kind == HitKind.IMAGE:
            try:
                return Input(text=text or None, image=open_image(vault / hit.path).image)
            except ImageError:
                pass  # the file went away or broke since it was indexed: judge it by its text
        return Input(text=text or hit.path)

    return document
