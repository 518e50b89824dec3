"""What a search answers with: hits grouped the way a person reads them.

An image hit carries its placements (note, line, headings, the paragraphs around
it); a paragraph hit carries the images it places; past ``MAX_LINKS_PER_HIT`` of either, the
hit counts the rest. An image appears once however many notes place it. Snippets come with
the spans of the query's words, so a client can highlight them without parsing markup.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from dataclasses import dataclass, field, fields
from typing import Any

from vaultlens.index.reader import Reader
from vaultlens.search.kinds import HIT_KIND, HitKind
from vaultlens.text import CJK
from vaultlens.vault.placements import strip_placements

SNIPPET_CHARS = 240
# the places listed on an image or PDF hit, and the pictures on a paragraph hit: a note that
# places a screenshot 5,000 times would make an answer of megabytes. The rest are counted,
# never dropped unsaid: ``more_links`` / ``more_images``
MAX_LINKS_PER_HIT = 20
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Hit:
    id: int
    kind: HitKind
    path: str
    line: int | None  # 1-based start line, for notes
    end_line: int | None
    page: int | None  # 1-based, for PDFs
    score: float
    text: str  # a snippet
    # [start, end) in ``text``, counted in UTF-16 code units, as JavaScript's String.slice
    # counts: an emoji before a match is two units, not one character
    highlights: list[list[int]] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)  # where an image/PDF is used
    images: list[dict[str, Any]] = field(default_factory=list)  # what a paragraph places
    more_links: int = 0  # places past the MAX_LINKS_PER_HIT listed in ``links``
    more_images: int = 0  # pictures past the MAX_LINKS_PER_HIT listed in ``images``
    # why it matched: "words" (query words in its own text: for a picture, words read in it),
    # "context" (in the paragraphs around a picture), or "meaning" (no query word: vectors)
    matched: str = "meaning"

    def to_json(self) -> dict[str, Any]:
        # asdict() deep-copies every link and image dict; the event loop answers with these
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("highlights", "headings", "links", "images"):
            out[name] = list(out[name])
        return out


def highlight_words(query: str) -> list[str]:
    """Words worth highlighting: Latin words of 2+ letters, and each CJK character run."""
    return [t for t in dict.fromkeys(w.lower() for w in _WORD.findall(query))
            if len(t) > 1 or CJK.match(t)]


def _spans(flat: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where the terms occur: whole words, or a word's start ("sync" in "syncing"); CJK runs
    as any two characters of them."""
    lowered = flat.lower()
    spans: list[tuple[int, int]] = []
    for term in terms:
        if CJK.match(term):
            parts = [term[i : i + 2] for i in range(max(1, len(term) - 1))]
            for part in parts:
                spans += [(m.start(), m.end()) for m in re.finditer(re.escape(part), lowered)]
        else:
            spans += [(m.start(), m.end())
                      for m in re.finditer(rf"(?<!\w){re.escape(term)}\w*", lowered)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> tuple[str, list[list[int]]]:
    """A window of ``text`` around the densest run of query words, and their spans in it."""
    flat = " ".join(text.split())
    spans = _spans(flat, highlight_words(query))
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
    marks = [[s + shift, min(e, start + width) + shift] for s, e in spans[first:last]]
    return out, utf16_spans(out, marks)


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


class HitMaker:
    """Builds hits from item ids, with their links and placed images."""

    def __init__(self, catalog: Reader) -> None:
        self.catalog = catalog

    def hit(self, item_id: int, score: float, query: str) -> Hit | None:
        row = self.catalog.item(item_id)
        if row is None:
            return None
        kind = HIT_KIND[row["kind"]]
        text, marks = snippet(row["text"], query)
        hit = Hit(id=item_id, kind=kind, path=row["path"], line=row["start_line"],
                  end_line=row["end_line"], page=row["page"], score=round(score, 6), text=text,
                  highlights=marks, headings=json.loads(row["headings"]),
                  matched="words" if marks else "meaning")
        if kind in (HitKind.IMAGE, HitKind.PDF):
            links, total = self.catalog.links_to_page(
                row["path"], row["page"] if kind == HitKind.PDF else None, MAX_LINKS_PER_HIT)
            hit.links = [{"note": x["note"], "line": x["line"], "headings": x["headings"],
                          "context": x["context"]} for x in links]
            hit.more_links = total - len(links)
            if not marks and query:
                # the words matched around the image, not in it: show where (without the
                # placement itself, which the block holding it would otherwise show as markup)
                around = "\n".join(s for x in hit.links for c in x["context"]
                                   if (s := strip_placements(c["text"]).strip()))
                alt, alt_marks = snippet(around, query)
                if alt_marks:
                    hit.text, hit.highlights, hit.matched = alt, alt_marks, "context"
        elif row["start_line"] is not None and row["end_line"] is not None:
            hit.images, total = self.catalog.placements_within(
                row["file_id"], row["start_line"], row["end_line"], MAX_LINKS_PER_HIT)
            hit.more_images = total - len(hit.images)
        return hit

    def passage(self, ids: list[int], score: float, query: str) -> Hit | None:
        """One hit for paragraphs read together: the first id is the best; the hit spans
        them all, its snippet drawn from their text in line order."""
        hit = self.hit(ids[0], score, query)
        if hit is None or len(ids) == 1:
            return hit
        rows = [r for r in (self.catalog.item(i) for i in ids) if r is not None]
        # note sections, whose lines are never None
        rows.sort(key=lambda r: r["start_line"] or 0)
        hit.line = min(r["start_line"] or 0 for r in rows)
        hit.end_line = max(r["end_line"] or 0 for r in rows)
        hit.text, hit.highlights = snippet("\n".join(r["text"] for r in rows), query)
        hit.matched = "words" if hit.highlights else "meaning"
        hit.images, total = self.catalog.placements_within(rows[0]["file_id"], hit.line,
                                                           hit.end_line, MAX_LINKS_PER_HIT)
        hit.more_images = total - len(hit.images)
        return hit
