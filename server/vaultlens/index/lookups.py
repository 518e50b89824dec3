"""Search's heavier reads, part of Reader (reader.py): which items a path, kind, tag or
property filter admits, where sections sit, which images a paragraph places or sits beside,
which notes place an image.

Which items a filter admits (``Scopes``): SQLite would answer it with a join of items and
files and a LIKE on every path, for every filtered search. Here the
items are read once (id, kind, file path) into a table the search threads share, and a
filter's answer is a sorted id array, kept per filter until the items change. While the
indexer writes, they change between most searches: then the table is not read again and
SQLite answers; it is read at the first filtered search, and again at the second that sees
the same items.
The answer is SQLite's exactly: an item is under a folder when its path equals the folder as
given, or starts with the folder (its slashes stripped) and a slash, compared as SQLite's LIKE
compares (ASCII letters without regard to case, every other character as it is). Tag and
property filters are answered from the same table (note_scopes.py), or, without one, checked
on each hit after ranking (search/filters.py).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np
from numpy.typing import NDArray

from vaultlens.index.note_scopes import (
    Items,
    NoteTable,
    Passes,
    Test,
    noted_items,
    passing_notes,
    read_notes,
)

FILTERS_KEPT = 64  # filters whose admitted ids a connection keeps
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
Key = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
Version = tuple[str | None, int | None]


def like_prefix(folder: str) -> str:
    """A LIKE pattern for everything under a folder, with % and _ in its name taken literally."""
    escaped = folder.strip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


def _folded(text: str) -> str:
    return text.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class _Table:
    ids: NDArray[np.int64]  # every item, ascending
    files: NDArray[np.int32]  # each item's file, an index into ``paths``
    kinds: NDArray[np.int32]  # each item's kind, an index into ``kind_names``
    paths: list[str]
    folded: list[str]  # the paths with ASCII letters lower-cased (LIKE's comparison)
    kind_names: list[str]
    file_ids: NDArray[np.int64]  # each item's file id
    pages: NDArray[np.int64]  # each item's page (-1: none)
    starts: NDArray[np.int64]  # each item's first line (-1: none)
    ends: NDArray[np.int64]  # ... and last line
    heading_of: NDArray[np.int64]  # each item's headings, an index into ``headings``
    headings: list[str]  # (JSON, as stored)
    notes: NoteTable  # the notes' tags, properties and links (note_scopes.py)


class ScopeTable:
    """The item table and the filters' answers, shared by every search thread's ``Scopes``
    (each reads through its own connection), so that it is read once, not once a thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards the fields below; held for moments only
        self.reading = threading.Lock()  # one thread reads the table; the others ask SQLite
        self.seen: Version | None = None  # the version the last search saw
        self.version: Version | None = None  # ... and the one the table belongs to
        self.table: _Table | None = None
        self.answers: OrderedDict[Hashable, NDArray[np.int64]] = OrderedDict()


class Scopes:
    """Filter answers through one connection (its caller's thread only, as the connection),
    kept in ``shared``: the search threads' common ``ScopeTable``, or one of its own."""

    def __init__(self, conn: sqlite3.Connection, shared: ScopeTable | None = None) -> None:
        self._conn = conn
        self.shared = shared or ScopeTable()

    def _version(self) -> Version:
        """What changes whenever the items do: every write that adds or removes items bumps
        ``items_version`` in its own transaction (index/writer.py, indexer.py), and a new
        item has the largest id."""
        row = self._conn.execute(
            "SELECT (SELECT value FROM meta WHERE key = 'items_version'),"
            " (SELECT max(id) FROM items)").fetchone()
        return (None if row[0] is None else str(row[0]), None if row[1] is None else int(row[1]))

    def items_in(self, paths: Sequence[str], not_paths: Sequence[str], kinds: Sequence[str],
                 not_kinds: Sequence[str]) -> NDArray[np.int64] | None:
        """Ids (ascending) of the items at or under any of ``paths`` and of one of ``kinds``
        (item kinds), and not under ``not_paths`` or of ``not_kinds``; None when no such
        filter is set."""
        if not (paths or not_paths or kinds or not_kinds):
            return None
        key: Key = (tuple(paths), tuple(not_paths), tuple(kinds), tuple(not_kinds))
        found = self._kept(key, lambda table: self._answer(table, *key))
        return self.items_in_sql(*key) if found is None else found

    def noted(self, tags: Sequence[str], not_tags: Sequence[str],
              tests: Sequence[Test], passes: Passes[Test]) -> NDArray[np.int64] | None:
        """Ids (ascending) of the items that pass these tag and property filters (see
        note_scopes.py; ``passes``: whether a note with these values of a property passes
        its test); None when the table cannot be had now (the caller checks each hit)."""
        key = ("notes", tuple(tags), tuple(not_tags), tuple(tests))
        return self._kept(key, lambda table: noted_items(
            table.notes, Items(table.ids, table.file_ids, table.kind_names, table.kinds,
                               table.pages),
            passing_notes(table.notes, tags, not_tags, tests, passes)))

    def _kept(self, key: Hashable, answer_from: Callable[[_Table], NDArray[np.int64]]
              ) -> NDArray[np.int64] | None:
        """``key``'s answer from the current table, kept for the next search to ask; None when
        there is no current table to be had (the items change between searches)."""
        shared = self.shared
        version = self._version()
        with shared.lock:
            stable, shared.seen = version == shared.seen, version
            table = shared.table if version == shared.version else None
            answer = shared.answers.get(key) if table is not None else None
            if answer is not None:
                shared.answers.move_to_end(key)
                return answer
        if table is None:
            table = self._read_shared(version, stable)
            if table is None:
                return None
        answer = answer_from(table)
        with shared.lock:
            if shared.version == version:
                shared.answers[key] = answer
                if len(shared.answers) > FILTERS_KEPT:
                    shared.answers.popitem(last=False)
        return answer

    def _read_shared(self, version: Version, stable: bool) -> _Table | None:
        """The table of ``version``, read and shared; None (SQLite answers) while the items
        change between searches (once a table was read), or another thread reads it."""
        shared = self.shared
        first = shared.version is None  # the first table is read at once, whatever the writer
        if (not (stable or first) or self._conn.in_transaction
                or not shared.reading.acquire(blocking=False)):
            return None
        try:
            self._conn.execute("BEGIN")  # the version and the table from one snapshot
            try:
                if self._version() != version:
                    return None
                table = self._read()
            finally:
                self._conn.execute("COMMIT")
            with shared.lock:
                shared.version, shared.table = version, table
                shared.answers.clear()
            return table
        finally:
            shared.reading.release()

    def _read(self) -> _Table:
        # one row a file and kind, its ids comma-joined: a row an item (a Python tuple each)
        # costs half again as much at 100,000 items
        # (pages: one aggregate's rows come in the same order as another's of the group)
        # (headings: JSON, which holds no raw control character, so char(31) separates them)
        rows = self._conn.execute(
            "SELECT items.kind, files.path, group_concat(items.id), items.file_id,"
            " group_concat(coalesce(items.page, -1)), group_concat(coalesce(start_line, -1)),"
            " group_concat(coalesce(end_line, -1)), group_concat(headings, char(31)) FROM items"
            " JOIN files ON files.id = items.file_id GROUP BY items.file_id, items.kind"
            ).fetchall()
        paths: dict[str, int] = {}
        kind_names: dict[str, int] = {}
        groups = [np.array(str(r[2]).split(","), dtype=np.int64) for r in rows]
        sizes = [len(g) for g in groups]
        ids = np.concatenate(groups) if groups else np.zeros(0, np.int64)
        pages, starts, ends = (
            np.concatenate([np.array(str(r[c]).split(","), dtype=np.int64) for r in rows])
            if rows else np.zeros(0, np.int64) for c in (4, 5, 6))
        headings: dict[str, int] = {}
        heading_of = np.array([headings.setdefault(h, len(headings)) for r in rows
                               for h in str(r[7]).split("\x1f")], dtype=np.int64)
        files = np.repeat(np.array([paths.setdefault(str(r[1]), len(paths)) for r in rows],
                                   dtype=np.int32), sizes)
        file_ids = np.repeat(np.array([int(r[3]) for r in rows], dtype=np.int64), sizes)
        kinds = np.repeat(np.array([kind_names.setdefault(str(r[0]), len(kind_names))
                                    for r in rows], dtype=np.int32), sizes)
        order = np.argsort(ids, kind="stable")
        names = list(paths)
        return _Table(ids[order], files[order], kinds[order], names,
                      [_folded(p) for p in names], list(kind_names), file_ids[order],
                      pages[order], starts[order], ends[order], heading_of[order],
                      list(headings), read_notes(self._conn))

    def places(self, ids: Iterable[int]) -> dict[int, tuple[int, str, int, int]] | None:
        """:meth:`Lookups.section_places` from the table, when it is of the catalog's items
        now; None when it is not."""
        shared = self.shared
        with shared.lock:
            table, version = shared.table, shared.version
        if table is None or version != self._version():
            return None
        want = np.fromiter(ids, dtype=np.int64)
        if not len(want) or not len(table.ids):
            return {}
        at = np.minimum(np.searchsorted(table.ids, want), len(table.ids) - 1)
        section = [n for n, k in enumerate(table.kind_names) if k == "section"]
        # a section without lines has no place
        hit = ((table.ids[at] == want) & np.isin(table.kinds[at], section)
               & (table.starts[at] >= 0) & (table.ends[at] >= 0))
        at, want = at[hit], want[hit]
        return {i: (f, table.headings[h], a, b) for i, f, h, a, b in zip(
            want.tolist(), table.file_ids[at].tolist(), table.heading_of[at].tolist(),
            table.starts[at].tolist(), table.ends[at].tolist(), strict=True)}

    @staticmethod
    def _answer(table: _Table, paths: tuple[str, ...], not_paths: tuple[str, ...],
                kinds: tuple[str, ...], not_kinds: tuple[str, ...]) -> NDArray[np.int64]:
        keep = np.ones(len(table.ids), dtype=bool)
        if paths or not_paths:
            under = [np.array(_under(table, p), dtype=bool) for p in (*paths, *not_paths)]
            files = np.ones(len(table.paths), dtype=bool)
            if paths:
                files &= np.logical_or.reduce(under[: len(paths)])
            for excluded in under[len(paths):]:
                files &= ~excluded
            keep &= files[table.files] if len(table.paths) else keep
        if kinds or not_kinds:
            allowed = np.array([(not kinds or k in kinds) and k not in not_kinds
                                for k in table.kind_names], dtype=bool)
            keep &= allowed[table.kinds] if len(table.kind_names) else keep
        out: NDArray[np.int64] = table.ids[keep]
        return out

    def items_in_sql(self, paths: Sequence[str], not_paths: Sequence[str],
                     kinds: Sequence[str], not_kinds: Sequence[str]) -> NDArray[np.int64]:
        """The same answer from SQLite."""
        clauses: list[str] = []
        args: list[str] = []

        def under(folder: str) -> str:
            args.extend([folder, like_prefix(folder)])
            return "(files.path = ? OR files.path LIKE ? ESCAPE '\\')"

        if paths:
            clauses.append("(" + " OR ".join(under(p) for p in paths) + ")")
        clauses += [f"NOT {under(p)}" for p in not_paths]
        if kinds:
            clauses.append(f"items.kind IN ({','.join('?' * len(kinds))})")
            args += kinds
        if not_kinds:
            clauses.append(f"items.kind NOT IN ({','.join('?' * len(not_kinds))})")
            args += not_kinds
        ids = [int(r[0]) for r in self._conn.execute(
            "SELECT items.id FROM items JOIN files ON files.id = items.file_id WHERE "
            + " AND ".join(clauses), args)]
        return np.array(sorted(ids), dtype=np.int64)


def _under(table: _Table, folder: str) -> list[bool]:
    """Each file: its path is ``folder`` as given, or lies under it (LIKE's comparison)."""
    prefix = _folded(folder.strip("/") + "/")
    return [path == folder or low.startswith(prefix)
            for path, low in zip(table.paths, table.folded, strict=True)]


class Lookups:
    """Mixed into Reader; needs only its connection."""

    _conn: sqlite3.Connection
    scopes: Scopes

    def section_places(self, ids: Iterable[int]) -> dict[int, tuple[int, str, int, int]]:
        """(file id, headings, start line, end line) of each note section among ``ids``: from
        the filters' table when it is current, else from SQLite."""
        unique = list(ids)
        kept = self.scopes.places(unique)
        if kept is not None:
            return kept
        out: dict[int, tuple[int, str, int, int]] = {}
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for r in self._conn.execute(
                    f"SELECT id, file_id, headings, start_line, end_line FROM items"
                    f" WHERE id IN ({marks}) AND kind = 'section'", chunk):
                if r[3] is not None and r[4] is not None:  # one without lines has no place
                    out[int(r[0])] = (int(r[1]), str(r[2]), int(r[3]), int(r[4]))
        return out

    def placements_within(self, note_id: int, start: int, end: int, limit: int
                      ) -> tuple[list[dict[str, Any]], int]:
        """The first ``limit`` images and PDFs a note places between these lines (a
        paragraph's pictures), in line order, and how many it places there in all."""
        where = "note_id = ? AND target IS NOT NULL AND line BETWEEN ? AND ?"
        total = int(self._conn.execute(f"SELECT count(*) FROM links WHERE {where}",
                                      (note_id, start, end)).fetchone()[0])
        # the limit applies to the links before any join: a paragraph placing one picture
        # 5,000 times costs ``limit`` lookups of its item, not 5,000
        rows = self._conn.execute(
            "SELECT l.target, l.line, l.page, l.caption, items.id AS item FROM"
            f" (SELECT target, line, col, page, caption FROM links WHERE {where}"
            "   ORDER BY line, col LIMIT ?) AS l"
            " LEFT JOIN files ON files.path = l.target"
            " LEFT JOIN items ON items.file_id = files.id"
            "  AND (items.page IS NULL OR items.page = COALESCE(l.page, 1))"
            " ORDER BY l.line, l.col", (note_id, start, end, limit)).fetchall()
        return [{"path": r["target"], "line": r["line"], "page": r["page"],
                 "caption": r["caption"], "item": r["item"]} for r in rows], total

    def links_to_page(self, target: str, page: int | None, limit: int
                      ) -> tuple[list[dict[str, Any]], int]:
        """The first ``limit`` places of ``target`` (by note path, then line) and how
        many there are in all. ``page``: a PDF page's, so only links to that page or to the
        whole PDF count."""
        where = "links.target = ?" + (" AND (links.page IS NULL OR links.page = ?)"
                                      if page is not None else "")
        args: list[Any] = [target] if page is None else [target, page]
        total = int(self._conn.execute(f"SELECT count(*) FROM links WHERE {where}",
                                      args).fetchone()[0])
        # ids first, then the rows: the sort carries ids, not every link's context
        rows = self._conn.execute(
            "SELECT links.*, files.path AS note FROM"
            " (SELECT links.id, files.path, links.line, links.col FROM links"
            f"   JOIN files ON files.id = links.note_id WHERE {where}"
            "   ORDER BY files.path, links.line, links.col LIMIT ?) AS chosen"
            " JOIN links ON links.id = chosen.id JOIN files ON files.id = links.note_id"
            " ORDER BY chosen.path, chosen.line, chosen.col", [*args, limit]).fetchall()
        return [{**dict(r), "headings": json.loads(r["headings"]),
                 "context": json.loads(r["context"])} for r in rows], total

    def images_around(self, section_ids: Iterable[int],
                      places: dict[int, tuple[int, str, int, int]] | None = None
                      ) -> dict[int, set[int]]:
        """For each note section, the image and PDF-page items whose placement it holds or whose
        context (the paragraphs shown around a placement) it overlaps. ``places``: the
        sections' from :meth:`section_places`, when read already (every one of them)."""
        ids = list(section_ids)
        spans: dict[int, list[tuple[int, int, int]]] = {}  # note -> (start, end, section)
        if places is not None:
            for i in ids:
                if i in places:
                    note, _, start, end = places[i]
                    spans.setdefault(note, []).append((start, end, i))
            ids = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for r in self._conn.execute(
                    "SELECT id, file_id, start_line, end_line FROM items"
                    f" WHERE id IN ({','.join('?' * len(chunk))}) AND kind = 'section'", chunk):
                if r[2] is not None and r[3] is not None:  # a section without lines holds none
                    spans.setdefault(int(r[1]), []).append((int(r[2]), int(r[3]), int(r[0])))
        out: dict[int, set[int]] = {}
        # each note's links are read once, not once per section: the work is its links times
        # the few sections each one touches, not its sections times its links (a note that
        # places a picture 5,000 times has thousands of both), and 500 notes' links in one
        # statement (a filter's 2,000 candidates are hundreds of notes)
        notes = list(spans)
        for sections in spans.values():
            sections.sort()
        starts = {n: [a for a, _, _ in spans[n]] for n in notes}
        reach = {n: list(accumulate((b for _, b, _ in spans[n]), max)) for n in notes}
        for i in range(0, len(notes), 500):
            chunk = notes[i : i + 500]
            for note_id, line, context, target in self._conn.execute(
                    "SELECT links.note_id, links.line, links.context, t.id FROM links"
                    " JOIN files ON files.path = links.target"
                    " JOIN items AS t ON t.file_id = files.id"
                    "  AND (t.page IS NULL OR t.page = COALESCE(links.page, 1))"
                    f" WHERE links.note_id IN ({','.join('?' * len(chunk))})", chunk):
                sections, firsts, furthest = spans[note_id], starts[note_id], reach[note_id]
                lines = [(int(line), int(line))] + [(int(c["start"]), int(c["end"]))
                                                    for c in json.loads(context)]
                for lo, hi in lines:
                    # sections before k start at or before hi; stop once none of them can
                    # reach down to lo
                    k = bisect_right(firsts, hi) - 1
                    while k >= 0 and furthest[k] >= lo:
                        if sections[k][1] >= lo:
                            out.setdefault(sections[k][2], set()).add(int(target))
                        k -= 1
        return out
