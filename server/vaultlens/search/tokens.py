"""How many tokens a context pack costs the model that reads it: one documented rule.

- Text: the loaded model's own tokenizer when it has one (``Embedder.count_tokens``), else an
  estimate that is fair to CJK: every CJK, kana or hangul character is one token (LLM
  tokenizers spend one to two per character; BPE rarely merges them), and every other run of
  characters costs one token per 4 characters or per word, whichever is more. The estimate
  errs high on English, so a budget met by the estimate is met by real tokenizers too.
- Images: ``ceil(width * height / 750)`` at the size sent, the rule Anthropic documents for
  Claude (a 1568 x 882 slide is 1,844 tokens). Other vision models cost less per pixel.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from vaultlens.text import CJK

_WORD = re.compile(r"\S+")
PIXELS_PER_TOKEN = 750
ESTIMATE_RULE = ("estimate: 1 token per CJK character, and per 4 other characters or per word, "
                 "whichever is more")


class TokenCounter:
    """Counts text tokens by a model's tokenizer, or by the stated estimate."""

    def __init__(self, tokenizer: Callable[[str], int] | None = None,
                 name: str | None = None) -> None:
        self._tokenizer = tokenizer
        self.rule = f"{name} tokenizer" if tokenizer is not None else ESTIMATE_RULE

    def count(self, text: str) -> int:
        if self._tokenizer is not None:
            return int(self._tokenizer(text))
        return estimate(text)

    def cut(self, text: str, tokens: int) -> str:
        """The longest start of ``text`` (ending with "…" when cut) that costs at most
        ``tokens``; found by halving, so a long text costs a few counts, not one per word."""
        if self.count(text) <= tokens:
            return text
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(text[:mid] + "…") <= tokens:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo] + "…" if lo else ""


def estimate(text: str) -> int:
    cjk = len(CJK.findall(text))
    rest = CJK.sub(" ", text)
    chars = len(rest.replace(" ", "").replace("\n", ""))
    words = len(_WORD.findall(rest))
    return cjk + max(math.ceil(chars / 4), words)


def image_tokens(width: int, height: int) -> int:
    return math.ceil(width * height / PIXELS_PER_TOKEN)


def side_for_tokens(width: int, height: int, tokens: int) -> int:
    """The longest side at which an image of this shape costs at most ``tokens``."""
    aspect = min(width, height) / max(width, height, 1)
    return int(math.sqrt(tokens * PIXELS_PER_TOKEN / max(aspect, 1e-6)))
