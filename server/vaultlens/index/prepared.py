"""A file read by a worker, turned into a document on the indexer's thread: the notes' links
are resolved against the files written so far, which is why this is not done on the worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vaultlens.extract.documents import Document, image_document, note_document, pdf_document
from vaultlens.index.extractor import Extracted
from vaultlens.vault.context import link_note
from vaultlens.vault.links import Resolver
from vaultlens.vault.placements import EXTERNAL
from vaultlens.vault.vault import FileKind


@dataclass
class Prepared:
    """A file read and turned into a document, waiting for its vectors."""

    read: Extracted
    doc: Document
    links: list[dict[str, Any]] | None
    warning: str | None


def prepare(got: Extracted, resolver: Resolver, kinds: dict[str, str],
            lenders: Callable[[str], list[dict[str, Any]]], visual: bool,
            context_chars: int) -> Prepared:
    """``lenders(path)``: the links of the notes that place an image or PDF (its context)."""
    f = got.file
    assert got.hash is not None
    if f.kind == FileKind.NOTE:
        assert got.note is not None
        links = [x.to_json() for x in link_note(got.note, resolver, kinds, context_chars)
                 if x.kind != EXTERNAL]
        return Prepared(got, note_document(got.note), links,
                        "; ".join(got.note.problems) or None)
    if f.kind == FileKind.IMAGE:
        doc = image_document(f.path, got.hash, got.ocr_text, got.image, lenders(f.path), visual)
    else:
        doc = pdf_document(f.path, got.pages, lenders(f.path), visual, got.hash)
    if not visual:  # the pixels are read: a batch waiting to be embedded keeps text only
        got.image, got.pages = None, []
    return Prepared(got, doc, None, None)
