"""What searches and views read from the catalog, through one connection: items, files,
tags and properties for filters, section texts for packs and the reranker, pictures, failures.
Catalog (catalog.py) adds the schema and every write; a search thread holds a Reader of its own
(serve/connections.py), since a SQLite connection must not serve two threads at once."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypedDict, cast

import numpy as np

from vaultlens.embedders.base import Vectors
from vaultlens.index.keyword_index import KeywordIndex
from vaultlens.index.lookups import Lookups, Scopes
from vaultlens.index.report import NotIndexed
from vaultlens.index.scratch import set_scratch_ids


@dataclass(frozen=True)
class FileRow:
    id: int
    path: str
    kind: str
    size: int
    mtime_ns: int
    hash: str | None
    status: str
    reason: str | None
    tries: int
    retry_at: float = 0.0  # for a "partial" file: not retried before this (unix seconds)


class ItemRow(TypedDict):
    """An item with its file's path and kind (``headings``: a JSON list)."""

    id: int
    file_id: int
    kind: str
    section: str | None
    start_line: int | None
    end_line: int | None
    page: int | None
    headings: str
    text: str
    content_hash: str
    path: str
    file_kind: str


@dataclass(frozen=True)
class PictureRow:
    """Where an item's picture comes from: its kind, PDF page, file and the file's hash."""

    kind: str
    page: int | None
    path: str
    hash: str | None


class Reader(Lookups):
    """One connection's reads. Open a catalog with Catalog.open; a Catalog is a Reader too."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.keyword_index = KeywordIndex(conn)
        self.scopes = Scopes(conn)  # which items a path or kind filter admits (lookups.py)

    def close(self) -> None:
        self._conn.close()

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # files --------------------------------------------------------------------------------
    def files(self) -> dict[str, FileRow]:
        rows = self._conn.execute("SELECT * FROM files").fetchall()
        return {r["path"]: FileRow(**dict(r)) for r in rows}

    def file(self, path: str) -> FileRow | None:
        row = self._conn.execute("SELECT * FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else FileRow(**dict(row))

    def failures(self) -> list[NotIndexed]:
        """Every file not (fully) indexed for a reason worth fixing, the most serious first
        (skipped: not in the index at all; retry: not yet; partial: in it without some of
        its text), then by path. Ignored files (a kind nobody searches) are not failures:
        ``ignored`` counts them."""
        return [NotIndexed(r[0], r[1], r[2]) for r in self._conn.execute(
            "SELECT path, status, reason FROM files WHERE status NOT IN ('indexed', 'ignored')"
            " ORDER BY CASE status WHEN 'skipped' THEN 0 WHEN 'retry' THEN 1"
            " WHEN 'partial' THEN 2 ELSE 3 END, path")]

    def ignored(self) -> dict[str, int]:
        """Files of a kind nobody searches (css, js, audio, ...), counted by lower-case
        extension without its dot ("" for none), the most common first."""
        counts: dict[str, int] = {}
        for (path,) in self._conn.execute("SELECT path FROM files WHERE status = 'ignored'"):
            ext = PurePosixPath(str(path)).suffix.lower().removeprefix(".")
            counts[ext] = counts.get(ext, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def file_spans(self) -> list[tuple[str, int, int | None, int | None]]:
        """(path, first item id, first line, last line) of every file with items."""
        return [(str(r[0]), int(r[1]), r[2], r[3]) for r in self._conn.execute(
            "SELECT files.path, MIN(items.id), MIN(items.start_line), MAX(items.end_line)"
            " FROM files JOIN items ON items.file_id = files.id GROUP BY files.id")]

    def tags(self, file_id: int) -> list[str]:
        return [str(r[0]) for r in self._conn.execute("SELECT tag FROM tags WHERE file_id = ?",
                                                      (file_id,))]

    def property_values(self, file_id: int, name: str) -> list[tuple[str, float | None]]:
        """A note's values of one frontmatter property: (text, number when it is one)."""
        return [(r[0], r[1]) for r in self._conn.execute(
            "SELECT value, number FROM properties WHERE file_id = ? AND name = ?",
            (file_id, name))]

    def has_property(self, name: str) -> bool:
        """Whether any note has a frontmatter property of this name."""
        return self._conn.execute("SELECT 1 FROM properties WHERE name = ? LIMIT 1",
                                  (name,)).fetchone() is not None

    # items --------------------------------------------------------------------------------
    def item(self, item_id: int) -> ItemRow | None:
        row = self._conn.execute(
            "SELECT items.*, files.path, files.kind AS file_kind FROM items"
            " JOIN files ON files.id = items.file_id WHERE items.id = ?", (item_id,)).fetchone()
        return None if row is None else cast(ItemRow, dict(row))

    def items(self, item_ids: Sequence[int]) -> list[ItemRow]:
        """The rows of these items (those that exist), in one read: by id."""
        out: list[ItemRow] = []
        for i in range(0, len(item_ids), 500):
            chunk = list(item_ids[i : i + 500])
            out += [cast(ItemRow, dict(r)) for r in self._conn.execute(
                "SELECT items.*, files.path, files.kind AS file_kind FROM items"
                " JOIN files ON files.id = items.file_id"
                f" WHERE items.id IN ({','.join('?' * len(chunk))})", chunk)]
        return sorted(out, key=lambda r: r["id"])

    def item_ids(self, file_id: int) -> list[int]:
        return [r[0] for r in self._conn.execute("SELECT id FROM items WHERE file_id = ?",
                                                 (file_id,))]

    def item_hashes(self, path: str) -> list[tuple[int, str]]:
        """(id, content hash) of a file's items, by id."""
        return [(int(r[0]), str(r[1])) for r in self._conn.execute(
            "SELECT items.id, items.content_hash FROM items JOIN files ON files.id = items.file_id"
            " WHERE files.path = ? ORDER BY items.id", (path,))]

    def item_on_page(self, file_id: int, page: int | None) -> int | None:
        """A file's item on this page (its first item, for ``page`` None)."""
        row = self._conn.execute(
            "SELECT id FROM items WHERE file_id = ? AND (page IS ? OR ? IS NULL) ORDER BY page"
            " LIMIT 1", (file_id, page, page)).fetchone()
        return None if row is None else int(row[0])

    def texts_within(self, file_id: int, first: int, last: int, sections_only: bool = True
                     ) -> list[str]:
        """The texts of a file's items between these lines, in line order."""
        kind = " AND kind = 'section'" if sections_only else ""
        return [str(r[0]) for r in self._conn.execute(
            f"SELECT text FROM items WHERE file_id = ?{kind} AND start_line >= ?"
            " AND end_line <= ? ORDER BY start_line", (file_id, first, last))]

    def sections_within(self, file_id: int, first: int, last: int
                        ) -> list[tuple[int, int, str]]:
        """(start line, end line, text) of a note's sections between these lines, in order."""
        return [(int(r[0]), int(r[1]), str(r[2])) for r in self._conn.execute(
            "SELECT start_line, end_line, text FROM items WHERE file_id = ? AND kind = 'section'"
            " AND start_line >= ? AND end_line <= ? ORDER BY start_line", (file_id, first, last))]

    def items_in(self, paths: Sequence[str], not_paths: Sequence[str], kinds: Sequence[str],
                 not_kinds: Sequence[str]) -> list[int] | None:
        """Ids (ascending) of the items at or under any of ``paths`` and of one of ``kinds``
        (item kinds), and not under ``not_paths`` or of ``not_kinds``; None when no such
        filter is set. ``scopes.items_in`` gives them as an array (lookups.py)."""
        found = self.scopes.items_in(paths, not_paths, kinds, not_kinds)
        return None if found is None else [int(i) for i in found.tolist()]

    def browse(self, limit: int, allowed: Sequence[int] | None = None) -> list[int]:
        """The first ``limit`` items (of ``allowed``, when given) in path, page, line order."""
        within = ""
        if allowed is not None:
            set_scratch_ids(self._conn, allowed)
            within = " WHERE items.id IN (SELECT id FROM temp.scratch_ids)"
        return [int(r[0]) for r in self._conn.execute(
            f"SELECT items.id FROM items JOIN files ON files.id = items.file_id{within}"
            " ORDER BY files.path, items.page, items.start_line LIMIT ?", (limit,))]

    def picture(self, item_id: int) -> PictureRow | None:
        row = self._conn.execute(
            "SELECT items.kind, items.page, files.path, files.hash FROM items"
            " JOIN files ON files.id = items.file_id WHERE items.id = ?", (item_id,)).fetchone()
        return None if row is None else PictureRow(str(row[0]), row[1], str(row[2]), row[3])

    def counts(self) -> dict[str, int]:
        files = dict(self._conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))
        items = dict(self._conn.execute("SELECT kind, COUNT(*) FROM items GROUP BY kind"))
        return {"files": sum(files.values()), **{f"files_{k}": v for k, v in files.items()},
                "items": sum(items.values()), **{f"items_{k}": v for k, v in items.items()}}

    # links and vectors --------------------------------------------------------------------
    def links_to(self, target: str) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT links.*, files.path AS note FROM links JOIN files ON files.id = links.note_id"
            " WHERE links.target = ? ORDER BY files.path, links.line", (target,)).fetchall()
        return [{**dict(r), "headings": json.loads(r["headings"]),
                 "context": json.loads(r["context"])} for r in rows]

    def cached_vectors(self, hashes: Iterable[str], signature: str) -> dict[str, Vectors]:
        out: dict[str, Vectors] = {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for h, blob in self._conn.execute(
                f"SELECT content_hash, vector FROM embeddings WHERE signature = ?"
                f" AND content_hash IN ({marks})", (signature, *chunk)):
                out[h] = np.frombuffer(blob, dtype=np.float32)
        return out
