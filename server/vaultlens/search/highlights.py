"""Which words of a text a query matched, by the keyword search's own analysis, and the
snippet around the densest run of them.

A highlighted span is exactly a word whose index term is one of the query's terms: the same
tokens as the index's unicode61 tokenizer (keywords.py's ``fts_tokens``, case changes split),
stemmed by the index's own porter stemmer (``KeywordIndex.stems``), so "servers" marks
"server" and "servers", and "sync" marks "sync" but not "synchronize", which the stemmer keeps
apart. CJK runs, indexed as bigrams (text.py), mark each of the query's bigrams where it
stands; a query's lone CJK character marks that character. One-letter Latin words are matched
by the search but not marked: marking every "a" says nothing.

Spans are [start, end) in the text given, in characters; ``utf16_spans`` turns them into the
UTF-16 units that JavaScript's String.slice counts, which the API sends.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vaultlens.search.keywords import fts_tokens
from vaultlens.text import CJK, CJK_RANGES, CJK_RUN

Stems = Callable[[Iterable[str]], dict[str, str]]  # KeywordIndex.stems: word -> its term
SNIPPET_CHARS = 240
# a Latin word as unicode61 splits one (letters and digits; "_" separates), CJK apart: the
# index splits CJK runs into bigrams first (text.cjk_grams)
_LATIN_CHAR = f"[^\\W_{CJK_RANGES}]"
_LATIN = re.compile(_LATIN_CHAR + "+")


def _key(word: str) -> str:
    """What porter never changes in an ASCII word: its first two letters, but for a "y"
    second that it may write "i" ("oys" → "oi"). A word and its stem share the key (checked
    against the stemmer on 450,000 words), so a word of another key is never stemmed here."""
    return word[:2].replace("y", "i")


@dataclass(frozen=True)
class Terms:
    """A query's terms as highlighting matches them."""

    stems: frozenset[str] = frozenset()  # index terms of its Latin words (2+ letters)
    grams: frozenset[str] = frozenset()  # CJK bigrams, and lone CJK characters

    def __bool__(self) -> bool:
        return bool(self.stems or self.grams)


class Highlighter:
    """Marks the words of a text that a query's terms match; ``stems`` is the index's own
    stemmer, so what is marked is what the keyword search matched."""

    def __init__(self, stems: Stems) -> None:
        self._stems = stems

    def terms(self, query: str) -> Terms:
        latin = [t for t in fts_tokens(query) if len(t) > 1 and not CJK.search(t)]
        stems = frozenset(s for s in self._stems(latin).values() if s)
        grams: set[str] = set()
        for run in CJK_RUN.findall(query):
            grams.update([run] if len(run) == 1 else
                         (run[i : i + 2] for i in range(len(run) - 1)))
        return Terms(stems, frozenset(grams))

    def spans(self, text: str, terms: Terms) -> list[tuple[int, int]]:
        """Where the terms match in ``text``: sorted, disjoint, touching spans merged."""
        if not terms:
            return []
        spans = self._latin(text, terms.stems) if terms.stems else []
        if terms.grams:
            for m in CJK_RUN.finditer(text):
                run, at = m.group(0), m.start()
                for i in range(len(run)):
                    if run[i : i + 2] in terms.grams and i + 1 < len(run):
                        spans.append((at + i, at + i + 2))
                    elif run[i] in terms.grams:
                        spans.append((at + i, at + i + 1))
        return _merged(spans)

    def _latin(self, text: str, wanted: frozenset[str]) -> list[tuple[int, int]]:
        """The Latin words of ``text`` whose term is one of ``wanted``. Only the distinct
        words that could stem to one are stemmed (``_key``), and the matches are found in
        one pass of a pattern of them: a 5 MB note of one word repeated costs milliseconds."""
        lowered = text.lower()
        if len(lowered) != len(text):  # a letter lower-cased into two: offsets would shift
            words = [(m.start(), m.end(), m.group(0).lower()) for m in _LATIN.finditer(text)]
            stems = self._stems({w for _, _, w in words})
            return [(a, b) for a, b, w in words if stems.get(w) in wanted]
        keys = {_key(s) for s in wanted}
        candidates = [w for w in set(_LATIN.findall(lowered))
                      if not w.isascii() or _key(w) in keys or w[:1] in wanted]
        stems = self._stems(candidates)
        matched = sorted((w for w in candidates if stems.get(w) in wanted), key=len,
                         reverse=True)
        if not matched:
            return []
        pattern = re.compile(f"(?<!{_LATIN_CHAR})(?:{'|'.join(map(re.escape, matched))})"
                             f"(?!{_LATIN_CHAR})")
        return [(m.start(), m.end()) for m in pattern.finditer(lowered)]

    def marks(self, text: str, terms: Terms) -> list[list[int]]:
        """The spans of the whole text, in UTF-16 units."""
        return utf16_spans(text, [[a, b] for a, b in self.spans(text, terms)])

    def snippet(self, text: str, terms: Terms, width: int = SNIPPET_CHARS
                ) -> tuple[str, list[list[int]]]:
        """A window of ``text`` (whitespace flattened) around the densest run of matched
        words, and their spans in it, in UTF-16 units."""
        flat = " ".join(text.split())
        spans = self.spans(flat, terms)
        start = 0
        if spans and len(flat) > width:
            start = max(0, spans[_densest(spans, width * 3 // 4)][0] - width // 4)
        cut = flat[start : start + width]
        prefix = "…" if start else ""
        out = prefix + cut + ("…" if start + width < len(flat) else "")
        shift = len(prefix) - start
        # spans are sorted and disjoint: those starting inside the window are one run
        first = bisect_left(spans, (start, -1))
        last = bisect_left(spans, (start + width, -1), lo=first)
        # a word the window cuts is not marked: a mark is always a whole word
        marks = [[s + shift, e + shift] for s, e in spans[first:last] if e <= start + width]
        return out, utf16_spans(out, marks)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _densest(spans: list[tuple[int, int]], reach: int) -> int:
    """The index of the span that starts the run with the most spans starting within
    ``reach`` characters of it (the first such, on a tie). Spans are sorted and disjoint, so
    the run's end only moves forwards: one pass, however many matches a long note holds."""
    best, most, end = 0, 0, 0
    for i, (start, _) in enumerate(spans):
        end = max(end, i)
        while end < len(spans) and spans[end][0] < start + reach:
            end += 1
        if end - i > most:
            best, most = i, end - i
    return best


def utf16_spans(text: str, spans: list[list[int]]) -> list[list[int]]:
    """Character offsets as UTF-16 offsets (characters past U+FFFF take two units)."""
    if text.isascii() or not any(ord(c) > 0xFFFF for c in text):
        return spans
    units = [0]
    for c in text:
        units.append(units[-1] + (2 if ord(c) > 0xFFFF else 1))
    return [[units[s], units[e]] for s, e in spans]
