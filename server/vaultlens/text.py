"""Chinese, Japanese and Korean text, said once for every stage: which characters count as CJK,
and how a run of them is split into keyword terms.

These scripts write words without spaces, so a tokenizer that splits on spaces sees a whole
sentence as one word. The index stores each run as overlapping bigrams and single characters
(``cjk_grams``); a query is split the same way; the token estimate counts each such character
as one token; and a text model that is not multilingual is not asked to embed them.
"""

from __future__ import annotations

import re

# kana, CJK ideographs (extension A and the unified block), compatibility ideographs, hangul
CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
CJK = re.compile(f"[{CJK_RANGES}]")  # one character
CJK_RUN = re.compile(f"[{CJK_RANGES}]+")


def cjk_grams(text: str) -> str:
    """Chinese and Japanese have no spaces: index each run of CJK characters as overlapping
    bigrams, so that a two-character word matches wherever it appears, and as single
    characters, so that a word written another way still shares its characters (删掉 and
    删除 share 删; a single character's IDF keeps a common one from counting much)."""
    def split(m: re.Match[str]) -> str:
        run = m.group(0)
        pairs = [run[i : i + 2] for i in range(len(run) - 1)]
        return " " + " ".join(pairs + list(run)) + " "

    return CJK_RUN.sub(split, text)
