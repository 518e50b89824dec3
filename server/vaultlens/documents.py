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
from pathlib import PurePosixPath
from typing import Any

from PIL.Image import Image

from vaultlens.embedders import Input
from vaultlens.notes import Note

# Sections that carry text a person would search for; headings ride along as each item's path.
SEARCHABLE = frozenset({"paragraph", "list", "callout", "blockquote", "table", "code", "html",
                        "text"})
MAX_EMBED_CHARS = 4000  # beyond this a section's head is what the models can use anyway


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def readable_name(path: str) -> str:
    """'Attachments/notion-token_v2.png' → 'notion token v2': file names are words too."""
    stem = PurePosixPath(path).stem
    return " ".join(re.split(r"[\s_\-.]+", stem)).strip()


@dataclass
class Document:
    """The items of one file, each with the input its vector comes from."""

    items: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    fts: list[tuple[str, str, str]] = field(default_factory=list)  # (text, names, context)
    tags: list[str] | None = None  # a note's tags (None: not a note)

    def add(self, item: dict[str, Any], embed: Input, fts: tuple[str, str, str]) -> None:
        self.items.append(item)
        self.inputs.append(embed)
        self.fts.append(fts)


def note_document(note: Note) -> Document:
    doc = Document(tags=list(note.tags))
    names = " ".join([note.title, note.path, *note.aliases, *(f"#{t}" for t in note.tags)])
    sections = [s for s in note.sections if s.kind in SEARCHABLE and s.text.strip()]
    if not sections and note.line_count:
        # a note of headings or properties only is still findable by them
        text = "\n".join(s.text for s in note.sections if s.kind != "yaml") or note.title
        embed = text[:MAX_EMBED_CHARS]
        doc.add({"kind": "section", "section": "note", "start_line": 1,
                 "end_line": note.line_count, "headings": [], "text": text,
                 "content_hash": digest("section", embed)}, Input(text=embed), (text, names, ""))
        return doc
    for s in sections:
        header = " > ".join(s.headings)
        embed = f"{header}\n{s.text}"[:MAX_EMBED_CHARS] if header else s.text[:MAX_EMBED_CHARS]
        doc.add({"kind": "section", "section": s.kind, "start_line": s.start, "end_line": s.end,
                 "headings": list(s.headings), "text": s.text,
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
    that describes the image: file name, captions, OCR and the paragraphs around it."""
    captions, context = link_text(links)
    names = f"{path} {readable_name(path)} {captions}"
    if visual and picture is not None:
        embed, content_hash = Input(image=picture), digest("image", file_hash)
    else:
        text = "\n".join(t for t in (captions, ocr_text, context) if t) or "(no text)"
        text = text[:MAX_EMBED_CHARS]
        embed, content_hash = Input(text=text), digest("image-text", text)
    doc = Document()
    doc.add({"kind": "image", "text": ocr_text, "content_hash": content_hash},
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
        doc.add({"kind": "page", "page": number, "text": text, "content_hash": content_hash},
                embed, (text, names, context))
    return doc
