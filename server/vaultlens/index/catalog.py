"""The catalog: SQLite (WAL) holding files, items, links, cached embeddings and extracts.

It is the source of truth; the vector index is a cache rebuilt from it. Every change to one
file is one transaction, so a kill at any moment leaves either the old state or the new one.
Everything expensive is cached by content hash: embeddings by (hash, model signature), OCR and
PDF extraction by file hash, so a renamed or re-scanned file is never embedded or read again.

The connection is private to vaultlens/index/: Catalog adds the schema and every write to
Reader (reader.py), which is all that search and serve read through; the keyword index's
statements are in keyword_index.py. tests/test_boundaries.py keeps SQL out of other packages.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from vaultlens.embedders.base import Vectors
from vaultlens.errors import VaultlensError
from vaultlens.index.private import private_database, private_dir
from vaultlens.index.reader import FileRow, Reader
from vaultlens.index.schema import MIGRATIONS, SCHEMA_VERSION
from vaultlens.text import cjk_grams

__all__ = ["SCRUB", "SCRUB_LEVELS", "Catalog", "CatalogError", "FileRow"]


class CatalogError(VaultlensError, RuntimeError):
    """The catalog cannot be used: the message names the file and the reason; ``damaged``
    when the file itself is broken (a writer sets it aside and starts again)."""

    def __init__(self, message: str, damaged: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged


# meta key: where deleted text may still be on disk, for cleanup.scrub(): "wal" in the WAL,
# "fts" in the keyword index's old segments too, "vacuum" in free pages too (a catalog written
# before secure_delete was on)
SCRUB, SCRUB_LEVELS = "scrub", ("wal", "fts", "vacuum")


class Catalog(Reader):
    """One connection; the indexer is the only writer. Open with :meth:`open`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        super().__init__(conn)
        self.path = path
        self.identity = (0, 0)  # (device, inode) of the file when opened

    @classmethod
    def open(cls, path: Path) -> Catalog:
        private_dir(path.parent)
        private_database(path)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            # deleted rows and freed pages are overwritten with zeros, so a deleted file's
            # text does not stay in the catalog's free space (the FTS index and the WAL need
            # more: cleanup.py)
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: never corrupt
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.DatabaseError as exc:
            damaged = any(w in str(exc) for w in ("not a database", "malformed"))
            raise CatalogError(f"{path}: cannot open the catalog ({exc})", damaged) from exc
        catalog = cls(conn, path)
        st = path.stat()
        catalog.identity = (st.st_dev, st.st_ino)  # which file this is: see repair.deleted()
        try:
            catalog._migrate()
        except sqlite3.DatabaseError as exc:  # a truncated or overwritten file
            conn.close()
            raise CatalogError(f"{path}: the catalog is damaged ({exc})",
                               damaged=True) from exc
        return catalog

    def _migrate(self) -> None:
        try:
            version = self._version()
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path}: not a vaultlens catalog ({exc})") from exc
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path}: written by a newer vaultlens (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade vaultlens or use another --data-dir"
            )
        for number, (name, sql) in enumerate(MIGRATIONS, start=1):
            if number <= version:
                continue
            with self.transaction():
                for statement in sql.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self.set_meta("schema_version", str(number))
                self.set_meta(f"migration:{name}", "applied")

    def _version(self) -> int:
        has_meta = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return 0
        return int(self.get_meta("schema_version") or 0)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        self.keyword_index.committed()

    # meta ---------------------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def bump_version(self) -> int:
        """The item set changed: the saved vector index no longer matches until saved again."""
        version = int(self.get_meta("items_version") or 0) + 1
        self.set_meta("items_version", str(version))
        return version

    # files --------------------------------------------------------------------------------
    def upsert_file(self, path: str, kind: str, size: int, mtime_ns: int, hash_: str | None,
                    status: str, reason: str | None, tries: int = 0, retry_at: float = 0.0
                    ) -> int:
        row = self._conn.execute(
            "INSERT INTO files(path, kind, size, mtime_ns, hash, status, reason, tries, retry_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET"
            " kind = excluded.kind, size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " hash = excluded.hash, status = excluded.status, reason = excluded.reason,"
            " tries = excluded.tries, retry_at = excluded.retry_at RETURNING id",
            (path, kind, size, mtime_ns, hash_, status, reason, tries, retry_at),
        ).fetchone()
        return int(row[0])

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        self._conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?",
                          (size, mtime_ns, file_id))

    def delete_file(self, file_id: int) -> list[int]:
        """Remove a file and everything derived from it; returns the item ids removed. Its
        words stay in the keyword index's old segments until cleanup.scrub() rewrites them:
        the mark that asks for it is written in the same transaction."""
        ids = self.item_ids(file_id)
        self._delete_fts(ids)
        self._conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        self.mark_scrub("fts")
        return ids

    def mark_scrub(self, level: str) -> None:
        """Ask cleanup.scrub() for at least ``level`` (of SCRUB_LEVELS); in the caller's
        transaction."""
        current = self.get_meta(SCRUB)
        if current not in SCRUB_LEVELS or SCRUB_LEVELS.index(current) < SCRUB_LEVELS.index(level):
            self.set_meta(SCRUB, level)

    # items --------------------------------------------------------------------------------
    def replace_items(self, file_id: int, items: Iterable[dict[str, Any]]) -> tuple[list[int],
                                                                                     list[int]]:
        """Swap a file's items for new ones; returns (removed ids, new ids)."""
        old = self.item_ids(file_id)
        self._delete_fts(old)
        self._conn.execute("DELETE FROM items WHERE file_id = ?", (file_id,))
        new = []
        for it in items:
            row = self._conn.execute(
                "INSERT INTO items(file_id, kind, section, start_line, end_line, page, headings,"
                " text, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (file_id, it["kind"], it.get("section"), it.get("start_line"),
                 it.get("end_line"), it.get("page"), json.dumps(it.get("headings", [])),
                 it["text"], it["content_hash"]),
            ).fetchone()
            new.append(int(row[0]))
        return old, new

    def set_content_hash(self, item_id: int, content_hash: str) -> None:
        self._conn.execute("UPDATE items SET content_hash = ? WHERE id = ?",
                           (content_hash, item_id))

    def set_fts(self, item_id: int, text: str, names: str, context: str) -> None:
        self._conn.execute("DELETE FROM items_fts WHERE rowid = ?", (item_id,))
        self._conn.execute(
            "INSERT INTO items_fts(rowid, text, names, context) VALUES (?, ?, ?, ?)",
            (item_id, cjk_grams(text), cjk_grams(names), cjk_grams(context)))

    def _delete_fts(self, ids: list[int]) -> None:
        self._conn.executemany("DELETE FROM items_fts WHERE rowid = ?", [(i,) for i in ids])

    # links --------------------------------------------------------------------------------
    def replace_links(self, note_id: int, links: Iterable[dict[str, Any]]) -> None:
        self._conn.execute("DELETE FROM links WHERE note_id = ?", (note_id,))
        self._conn.executemany(
            "INSERT INTO links(note_id, link, target, reason, page, line, col, caption, headings,"
            " context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(note_id, x["link"], x["target"], x["reason"], x["page"], x["line"], x["column"],
              x["caption"], json.dumps(x["headings"], ensure_ascii=False),
              json.dumps(x["context"], ensure_ascii=False)) for x in links],
        )

    def set_tags(self, file_id: int, tags: Iterable[str]) -> None:
        self._conn.execute("DELETE FROM tags WHERE file_id = ?", (file_id,))
        self._conn.executemany("INSERT OR IGNORE INTO tags(file_id, tag) VALUES (?, ?)",
                              [(file_id, t) for t in tags])

    def set_properties(self, file_id: int, properties: Iterable[tuple[str, str, float | None]]
                       ) -> None:
        self._conn.execute("DELETE FROM properties WHERE file_id = ?", (file_id,))
        self._conn.executemany(
            "INSERT OR IGNORE INTO properties(file_id, name, value, number) VALUES (?, ?, ?, ?)",
            [(file_id, *p) for p in properties])

    def link_targets_from(self, note_id: int) -> set[str]:
        return {r[0] for r in self._conn.execute(
            "SELECT target FROM links WHERE note_id = ? AND target IS NOT NULL", (note_id,))}

    def all_links(self) -> list[sqlite3.Row]:
        return self._conn.execute(
            "SELECT links.id, links.link, links.target, files.path AS note FROM links"
            " JOIN files ON files.id = links.note_id").fetchall()

    def retarget(self, link_id: int, target: str | None, reason: str | None) -> None:
        self._conn.execute("UPDATE links SET target = ?, reason = ? WHERE id = ?",
                          (target, reason, link_id))

    # caches -------------------------------------------------------------------------------
    def store_vectors(self, signature: str, vectors: dict[str, Vectors]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO embeddings(content_hash, signature, vector) VALUES (?, ?, ?)",
            [(h, signature, np.asarray(v, dtype=np.float32).tobytes())
             for h, v in vectors.items()])

    def extract(self, file_hash: str, extractor: str) -> Any:
        row = self._conn.execute("SELECT data FROM extracts WHERE file_hash = ? AND extractor = ?",
                                (file_hash, extractor)).fetchone()
        return None if row is None else json.loads(row[0])

    def store_extract(self, file_hash: str, extractor: str, data: Any) -> None:
        self._conn.execute("INSERT OR REPLACE INTO extracts(file_hash, extractor, data)"
                          " VALUES (?, ?, ?)", (file_hash, extractor,
                                                json.dumps(data, ensure_ascii=False)))

    def live_vectors(self, signature: str) -> Iterator[tuple[int, Vectors]]:
        """(item id, cached vector) for every item that has one under this signature."""
        for item_id, blob in self._conn.execute(
            "SELECT items.id, embeddings.vector FROM items JOIN embeddings"
            " ON embeddings.content_hash = items.content_hash AND embeddings.signature = ?",
            (signature,)):
            yield int(item_id), np.frombuffer(blob, dtype=np.float32)
