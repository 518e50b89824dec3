"""The kinds of hit a person searches for (``kind:note|image|pdf``), and the item kind each one
comes from, said once: a note's hits are its sections, a PDF's are its pages."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from vaultlens.extract.documents import ItemKind


class HitKind(StrEnum):
    NOTE = "note"
    IMAGE = "image"
    PDF = "pdf"


HIT_KIND: Mapping[str, HitKind] = {
    ItemKind.SECTION: HitKind.NOTE, ItemKind.IMAGE: HitKind.IMAGE, ItemKind.PAGE: HitKind.PDF}
ITEM_KIND: Mapping[str, ItemKind] = {hit: ItemKind(item) for item, hit in HIT_KIND.items()}
