"""What a search answers with: hits grouped the way a person reads them.

An image hit carries its placements (note, line, headings, the paragraphs around
it); a paragraph hit carries the images it places; past ``MAX_LINKS_PER_HIT`` of either, the
hit counts the rest. An image appears once however many notes place it. Snippets come with
the spans of the query's words, so a client can highlight them without parsing markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from vaultlens.extract.documents import ItemKind
from vaultlens.index.reader import ItemRow, Reader
from vaultlens.search.highlights import Highlighter, Terms
from vaultlens.search.kinds import HIT_KIND, HitKind
from vaultlens.vault.plain import plain_text

# the places listed on an image or PDF hit, and the pictures on a paragraph hit: a note that
# places a screenshot 5,000 times would make an answer of megabytes. The rest are counted,
# never dropped unsaid: ``more_links`` / ``more_images``
MAX_LINKS_PER_HIT = 20


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
    # an image or PDF page's paragraph in the first of its ``links``, as plain text, and the
    # spans of the query's words in it (as ``highlights``: UTF-16 units); "" for a note
    context_text: str = ""
    context_highlights: list[list[int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        # asdict() deep-copies every link and image dict; the event loop answers with these
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("highlights", "headings", "links", "images", "context_highlights"):
            out[name] = list(out[name])
        return out


class HitMaker:
    """Builds hits from item ids, with their links and placed images. A note's text, and the
    paragraphs around a picture, are shown as plain text (vault/plain.py); OCR and PDF text
    as read. Highlights mark the words the keyword search matched (highlights.py)."""

    def __init__(self, catalog: Reader) -> None:
        self.catalog = catalog
        self.highlighter = Highlighter(self._stems)

    def _stems(self, words: Iterable[str]) -> dict[str, str]:
        return self.catalog.keyword_index.stems(words)

    def hit(self, item_id: int, score: float, query: str) -> Hit | None:
        return self._hit(item_id, score, self.highlighter.terms(query))

    def _hit(self, item_id: int, score: float, terms: Terms) -> Hit | None:
        row = self.catalog.item(item_id)
        if row is None:
            return None
        kind = HIT_KIND[row["kind"]]
        text, marks = self.highlighter.snippet(_shown(row), terms)
        hit = Hit(id=item_id, kind=kind, path=row["path"], line=row["start_line"],
                  end_line=row["end_line"], page=row["page"], score=round(score, 6), text=text,
                  highlights=marks, headings=json.loads(row["headings"]),
                  matched="words" if marks else "meaning")
        if kind in (HitKind.IMAGE, HitKind.PDF):
            self._places(hit, row, terms)
        elif row["start_line"] is not None and row["end_line"] is not None:
            hit.images, total = self.catalog.placements_within(
                row["file_id"], row["start_line"], row["end_line"], MAX_LINKS_PER_HIT)
            hit.more_images = total - len(hit.images)
        return hit

    def _places(self, hit: Hit, row: ItemRow, terms: Terms) -> None:
        """Where an image or PDF page is placed, each paragraph as plain text; the first
        place's paragraph as ``context_text`` with its highlights."""
        links, total = self.catalog.links_to_page(
            row["path"], row["page"] if hit.kind == HitKind.PDF else None, MAX_LINKS_PER_HIT)
        hit.links = [{"note": x["note"], "line": x["line"], "headings": x["headings"],
                      "context": [{**c, "text": plain_text(c["text"])} for c in x["context"]]}
                     for x in links]
        hit.more_links = total - len(links)
        if hit.links:
            hit.context_text = paragraph(hit.links[0])
            hit.context_highlights = self.highlighter.marks(hit.context_text, terms)
        if not hit.highlights and terms:
            # the words matched around the image, not in it: show where
            around = "\n".join(paragraph(x) for x in hit.links)
            alt, alt_marks = self.highlighter.snippet(around, terms)
            if alt_marks:
                hit.text, hit.highlights, hit.matched = alt, alt_marks, "context"

    def passage(self, ids: list[int], score: float, query: str) -> Hit | None:
        """One hit for paragraphs read together: the first id is the best; the hit spans
        them all, its snippet drawn from their text in line order."""
        terms = self.highlighter.terms(query)
        hit = self._hit(ids[0], score, terms)
        if hit is None or len(ids) == 1:
            return hit
        rows = self.catalog.items(ids)
        # note sections, whose lines are never None
        rows.sort(key=lambda r: r["start_line"] or 0)
        hit.line = min(r["start_line"] or 0 for r in rows)
        hit.end_line = max(r["end_line"] or 0 for r in rows)
        hit.text, hit.highlights = self.highlighter.snippet(
            "\n".join(_shown(r) for r in rows), terms)
        hit.matched = "words" if hit.highlights else "meaning"
        hit.images, total = self.catalog.placements_within(rows[0]["file_id"], hit.line,
                                                           hit.end_line, MAX_LINKS_PER_HIT)
        hit.more_images = total - len(hit.images)
        return hit


def _shown(row: ItemRow) -> str:
    """An item's text as a reader sees it: a note's markdown as plain text, OCR and PDF text
    as read (markup characters there are the picture's own)."""
    return plain_text(row["text"]) if row["kind"] == ItemKind.SECTION else row["text"]


def paragraph(link: dict[str, Any]) -> str:
    """The paragraphs around one place of a picture (its ``context``, already plain), as one
    text: its non-empty lines, in order."""
    return "\n".join(line for c in link["context"] for line in c["text"].split("\n")
                     if line.strip())
