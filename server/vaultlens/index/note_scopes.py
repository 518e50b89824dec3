"""Which items a tag or property filter admits, from memory: part of the filter scopes
(lookups.py), read with their item table, in the same snapshot, and kept as long as it is.

Tags and properties belong to notes. A note section passes when its note does; an image or a
PDF page passes when a note that places it does (for a page, a link to that page or to the
whole PDF), so ``tag:trip kind:image`` finds the pictures of trip notes. A note passes when it
holds every wanted tag (nested: ``trip`` is held by ``#trip`` and ``#trip/lisbon``, compared
in lower case), none of the unwanted ones, and passes every property test. Every write of a
note's tags, properties or links bumps ``items_version`` in its own transaction
(index/writer.py), so the table's version covers them.

The property tests themselves belong to search (search/filters.py): they come in as a call
that says whether a note with these values of the property passes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

Values = list[tuple[str, float | None]]  # a note's values of one property: (text, number)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class PropertyTest(Hashable, Protocol):
    """A property condition (search/query.py's Condition): its property's name."""

    @property
    def name(self) -> str: ...


Test = TypeVar("Test", bound=PropertyTest)
# whether a note holding these values of the test's property (none: []) passes the test
Passes = Callable[[Test, Values], bool]


def folded(text: str) -> str:
    """ASCII letters lower-cased: how SQLite's NOCASE compares property names."""
    return text.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class Items:
    """What the note side needs of every item (ascending ids, as the scopes' table)."""

    ids: NDArray[np.int64]
    file_ids: NDArray[np.int64]
    kinds: Sequence[str]  # the item kind of each index in ``kind_of``
    kind_of: NDArray[np.int32]
    pages: NDArray[np.int64]  # -1: none


@dataclass(frozen=True)
class NoteTable:
    size: int  # the largest file id + 1
    tag_names: list[str]  # each distinct tag, lower-cased
    tag_files: NDArray[np.int64]  # a (file, tag) row each: its file
    tag_of: NDArray[np.int64]  # ... and its tag, an index into ``tag_names``
    properties: dict[str, tuple[NDArray[np.int64], list[Values]]]  # by folded name
    link_notes: NDArray[np.int64]  # a link to a file each: the placing note
    link_targets: NDArray[np.int64]  # ... the file it links to
    link_pages: NDArray[np.int64]  # ... and the page (-1: the whole file)


def read_notes(conn: sqlite3.Connection) -> NoteTable:
    """The notes' tags, properties and links (in the caller's snapshot)."""
    ids = {str(p): int(i) for i, p in conn.execute("SELECT id, path FROM files")}
    size = max(ids.values(), default=-1) + 1
    names: dict[str, int] = {}
    tag_rows = conn.execute("SELECT file_id, tag FROM tags").fetchall()
    tag_files = np.array([int(r[0]) for r in tag_rows], dtype=np.int64)
    tag_of = np.array([names.setdefault(str(r[1]).lower(), len(names)) for r in tag_rows],
                      dtype=np.int64)
    grouped: dict[str, dict[int, Values]] = {}
    for file_id, name, value, number in conn.execute(
            "SELECT file_id, name, value, number FROM properties"):
        grouped.setdefault(folded(str(name)), {}).setdefault(int(file_id), []).append(
            (value, number))
    properties = {name: (np.fromiter(by_file, dtype=np.int64, count=len(by_file)),
                         list(by_file.values())) for name, by_file in grouped.items()}
    links = [(int(r[0]), ids[r[1]], -1 if r[2] is None else int(r[2])) for r in conn.execute(
        "SELECT note_id, target, page FROM links WHERE target IS NOT NULL") if r[1] in ids]
    columns = np.array(links, dtype=np.int64).reshape(-1, 3)
    return NoteTable(size, list(names), tag_files, tag_of, properties,
                     columns[:, 0].copy(), columns[:, 1].copy(), columns[:, 2].copy())


def _tagged(table: NoteTable, tag: str) -> NDArray[np.bool_]:
    """Each file: whether it holds ``tag`` or a tag nested under it."""
    t = tag.lstrip("#").lower()
    held = np.array([x == t or x.startswith(t + "/") for x in table.tag_names], dtype=bool)
    out = np.zeros(table.size, dtype=bool)
    if len(table.tag_files):
        out[table.tag_files[held[table.tag_of]]] = True
    return out


def passing_notes(table: NoteTable, tags: Sequence[str], not_tags: Sequence[str],
                  tests: Sequence[Test], passes: Passes[Test]) -> NDArray[np.bool_]:
    """Each file id: whether it passes the tag and property filters as a note."""
    ok = np.ones(table.size, dtype=bool)
    for tag in tags:
        ok &= _tagged(table, tag)
    for tag in not_tags:
        ok &= ~_tagged(table, tag)
    for test in tests:
        files, values = table.properties.get(folded(test.name), (np.zeros(0, np.int64), []))
        held = np.full(table.size, passes(test, []), dtype=bool)  # a note without the property
        held[files] = np.array([passes(test, v) for v in values], dtype=bool)
        ok &= held
    return ok


def noted_items(table: NoteTable, items: Items, notes: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Ids (ascending) of the items that pass as ``notes`` (each file id: whether it passes)
    say: sections of passing notes, and images and PDF pages a passing note places."""
    def of_kind(name: str) -> NDArray[np.bool_]:
        return np.isin(items.kind_of, [n for n, k in enumerate(items.kinds) if k == name])

    section, page = of_kind("section"), of_kind("page")
    inside = items.file_ids < table.size
    keep = np.zeros(len(items.ids), dtype=bool)
    keep[section & inside] = notes[items.file_ids[section & inside]]
    placing = notes[table.link_notes] if len(table.link_notes) else np.zeros(0, dtype=bool)
    whole = np.unique(table.link_targets[placing & (table.link_pages < 0)])
    anywhere = np.unique(table.link_targets[placing])
    # a page with a number passes by a link to the whole file or to that page; an image (or a
    # page without a number) by any link to its file
    numbered = page & (items.pages >= 0)
    keep |= ~section & ~numbered & np.isin(items.file_ids, anywhere)
    scale = int(max(items.pages.max(initial=0), table.link_pages.max(initial=0))) + 2
    paged = (table.link_targets * scale + table.link_pages)[placing & (table.link_pages >= 0)]
    keep |= numbered & (np.isin(items.file_ids, whole)
                        | np.isin(items.file_ids * scale + items.pages, paged))
    out: NDArray[np.int64] = items.ids[keep]
    return out


def noted_items_sql(conn: sqlite3.Connection, tags: Sequence[str], not_tags: Sequence[str],
                    tests: Sequence[Test], passes: Passes[Test]) -> NDArray[np.int64]:
    """The same answer from SQLite, a note at a time (the reference the tests hold the
    memory answer to)."""
    def note_passes(file_id: int) -> bool:
        held = {str(r[0]).lower() for r in conn.execute(
            "SELECT tag FROM tags WHERE file_id = ?", (file_id,))}

        def tagged(tag: str) -> bool:
            t = tag.lstrip("#").lower()
            return any(x == t or x.startswith(t + "/") for x in held)

        return (all(tagged(t) for t in tags) and not any(tagged(t) for t in not_tags)
                and all(passes(c, [(r[0], r[1]) for r in conn.execute(
                    "SELECT value, number FROM properties WHERE file_id = ? AND name = ?",
                    (file_id, c.name))]) for c in tests))

    out: list[int] = []
    for item_id, file_id, kind, page, path in conn.execute(
            "SELECT items.id, items.file_id, items.kind, items.page, files.path FROM items"
            " JOIN files ON files.id = items.file_id"):
        if kind == "section":
            notes = [int(file_id)]
        else:
            by_page = kind == "page" and page is not None
            notes = [int(r[0]) for r in conn.execute(
                "SELECT DISTINCT note_id FROM links WHERE target = ?"
                + (" AND (page IS NULL OR page = ?)" if by_page else ""),
                (path, page) if by_page else (path,))]
        if any(note_passes(n) for n in notes):
            out.append(int(item_id))
    return np.array(sorted(out), dtype=np.int64)
