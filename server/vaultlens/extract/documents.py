"""What gets searched: items built from a note, an image or a PDF, and what the embedder sees.

An item's ``content_hash`` covers exactly what the embedder is given, so an unchanged item is
never embedded twice (the catalog caches vectors by hash and model signature). File names and
note titles go to the keyword index only, never into what is embedded: a rename must not
re-embed anything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from itertools import pairwise
from pathlib import PurePosixPath
from typing import Any

from PIL.Image import Image

from vaultlens.embedders.base import Input
from vaultlens.vault.context import has_words
from vaultlens.vault.notes import Note

# Sections that carry text a person would search for; headings ride along as each item's path.
SEARCHABLE = frozenset({"paragraph", "list", "callout", "blockquote", "table", "code", "html",
                        "text", "card"})  # card: a canvas's text card (vault/canvas.py)
MAX_EMBED_CHARS = 4000  # beyond this a section's head is what the models can use anyway


class ItemKind(StrEnum):
    """What an item is; the value is what the catalog stores in ``items.kind``."""

    SECTION = "section"  # one block of a note (or a note of headings alone, whole)
    IMAGE = "image"  # an image file
    PAGE = "page"  # one page of a PDF


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def readable_name(path: str) -> str:
    """'Attachments/Mac-OS-DateTime.png' → 'Mac OS Date Time MacOS DateTime': file names are
    words too, split at separators and case changes, and each neighbouring pair joined again,
    because people type "macOS" for Mac-OS and "datetime" for DateTime."""
    stem = PurePosixPath(path).stem
    parts = [p for p in re.split(r"[\s_\-.]+|(?<=[a-z])(?=[A-Z])", stem) if p]
    pairs = [a + b for a, b in pairwise(parts) if a.isalpha() and b.isalpha()]
    return " ".join(parts + pairs)


@dataclass
class Document:
    """The items of one file, each with the input its vector comes from."""

    items: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    fts: list[tuple[str, str, str]] = field(default_factory=list)  # (text, names, context)
    tags: list[str] | None = None  # a note's tags (None: not a note)
    properties: list[tuple[str, str, float | None]] | None = None  # (name, value, number)

    def add(self, item: dict[str, Any], embed: Input, fts: tuple[str, str, str]) -> None:
        self.items.append(item)
        self.inputs.append(embed)
        self.fts.append(fts)


def property_rows(properties: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """Frontmatter as (name, value, number) rows: one per list element; dates as ISO text, so
    that they compare in order as text."""
    rows: list[tuple[str, str, float | None]] = []
    for name, value in properties.items():
        for v in value if isinstance(value, list) else [value]:
            if v is None or isinstance(v, dict | list):
                continue
            if isinstance(v, bool):
                rows.append((name, str(v).lower(), None))
            elif isinstance(v, int | float):
                rows.append((name, str(v), float(v)))
            elif isinstance(v, date):
                rows.append((name, v.isoformat(), None))
            else:
                text = str(v).strip()
                try:
                    number: float | None = float(text)
                except ValueError:
                    number = None
                rows.append((name, text, number if number == number else None))  # NaN
    return rows


def note_document(note: Note) -> Document:
    doc = Document(tags=list(note.tags), properties=property_rows(note.properties))
    names = " ".join([note.title, note.path, *note.aliases, *(f"#{t}" for t in note.tags)])
    # a paragraph that is only a placement ("![[tram.png]]") holds no words to search: the
    # image is its own item, and its place is kept with the links
    sections = [s for s in note.sections if s.kind in SEARCHABLE and has_words(s.text)]
    if not sections and note.line_count:
        # a note of headings or properties only is still findable by them
        text = "\n".join(s.text for s in note.sections if s.kind != "yaml") or note.title
        embed = text[:MAX_EMBED_CHARS]
        doc.add({"kind": ItemKind.SECTION, "section": "note", "start_line": 1,
                 "end_line": note.line_count, "headings": [], "text": text,
                 "content_hash": digest("section", embed)}, Input(text=embed), (text, names, ""))
        return doc
    for s in sections:
        header = " > ".join(s.headings)
        embed = f"{header}\n{s.text}"[:MAX_EMBED_CHARS] if header else s.text[:MAX_EMBED_CHARS]
        doc.add({"kind": ItemKind.SECTION, "section": s.kind, "start_line": s.start,
                 "end_line": s.end, "headings": list(s.headings), "text": s.text,
                 "content_hash": digest("section", embed)},
                Input(text=embed), (s.text, names, " ".join(s.headings)))
    return doc


def link_text(links: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """(captions, context) of an image's links: what the notes around it say."""
    captions = [x["caption"] for x in links if x.get("caption")]
    context: list[str] = []
    for x in links:
        context += [" > ".join(x["headings"])] if x["headings"] else []
        context += [c["text"] for c in x["context"]]
    return " ".join(captions), "\n".join(dict.fromkeys(context))


def image_document(path: str, file_hash: str, ocr_text: str, picture: Image | None,
                   links: Sequence[dict[str, Any]], visual: bool) -> Document:
    """One item. With a visual model the vector comes from the pixels; otherwise from the text
    the image itself carries: captions and OCR. The paragraphs around it are searched as
    themselves and lend the image their score (see search.py), so they are not folded into its
    vector, where they would dilute the OCR and make the image a weaker copy of its paragraph.
    An image with no text of its own is described by its context instead."""
    captions, context = link_text(links)
    names = f"{path} {readable_name(path)} {captions}"
    if visual and picture is not None:
        embed, content_hash = Input(image=picture), digest("image", file_hash)
    else:
        own = "\n".join(t for t in (captions, ocr_text) if t.strip())
        text = (own or context or "(no text)")[:MAX_EMBED_CHARS]
        embed, content_hash = Input(text=text), digest("image-text", text)
    doc = Document()
    doc.add({"kind": ItemKind.IMAGE, "text": ocr_text, "content_hash": content_hash},
            embed, (ocr_text, names, context))
    return doc


def pdf_document(path: str, pages: Sequence[tuple[int, str, Image | None]],
                 links: Sequence[dict[str, Any]], visual: bool, file_hash: str) -> Document:
    """One item per page: its text layer (or OCR), and with a visual model its rendering."""
    captions, context = link_text(links)
    names = f"{path} {readable_name(path)} {captions}"
    doc = Document()
    for number, text, image in pages:
        if visual and image is not None:
            embed, content_hash = Input(image=image), digest("page", file_hash, str(number))
        else:
            body = (text or "(no text)")[:MAX_EMBED_CHARS]
            embed, content_hash = Input(text=body), digest("page-text", body)
        doc.add({"kind": ItemKind.PAGE, "page": number, "text": text, "content_hash": content_hash},
                embed, (text, names, context))
    return doc
