"""The catalog: SQLite (WAL) holding files, items, links, cached embeddings and extracts.

It is the source of truth; the vector index is a cache rebuilt from it. Every change to one
file is one transaction, so a kill at any moment leaves either the old state or the new one.
Everything expensive is cached by content hash: embeddings by (hash, model signature), OCR and
PDF extraction by file hash, so a renamed or re-scanned file is never embedded or read again.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaultlens.embedders.base import Vectors
from vaultlens.errors import VaultlensError
from vaultlens.index.lookups import Lookups
from vaultlens.index.private import private_database, private_dir
from vaultlens.index.schema import MIGRATIONS, SCHEMA_VERSION

_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")


def cjk_grams(text: str) -> str:
    """Chinese and Japanese have no spaces: index each run of CJK characters as overlapping
    bigrams, so that a two-character word matches wherever it appears, and as single
    characters, so that a word written another way still shares its characters (删掉 and
    删除 share 删; a single character's IDF keeps a common one from counting much)."""
    def split(m: re.Match[str]) -> str:
        run = m.group(0)
        pairs = [run[i : i + 2] for i in range(len(run) - 1)]
        return " " + " ".join(pairs + list(run)) + " "

    return _CJK_RUN.sub(split, text)


class CatalogError(VaultlensError, RuntimeError):
    """The catalog cannot be used: the message names the file and the reason; ``damaged``
    when the file itself is broken (a writer sets it aside and starts again)."""

    def __init__(self, message: str, damaged: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged


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


STEMS_KEPT = 100_000  # words whose stem a connection remembers
# meta key: where deleted text may still be on disk, for cleanup.scrub(): "wal" in the WAL,
# "fts" in the keyword index's old segments too, "vacuum" in free pages too (a catalog written
# before secure_delete was on)
SCRUB, SCRUB_LEVELS = "scrub", ("wal", "fts", "vacuum")


class Catalog(Lookups):
    """One connection; the indexer is the only writer. Open with :meth:`open`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.identity = (0, 0)  # (device, inode) of the file when opened
        # what every search asks again: a word's stem (the tokenizer's: it never changes),
        # and, until the index changes, how many items hold a stem and how many items there are
        self._stems: dict[str, str] = {}
        self._stem_counts: dict[str, int] = {}
        self._item_total: int | None = None
        self._seen: tuple[int, int] = (-1, -1)
        self.commits = 0  # by this connection: data_version counts only the others'

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

    def close(self) -> None:
        self.conn.close()

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
                        self.conn.execute(statement)
                self.set_meta("schema_version", str(number))
                self.set_meta(f"migration:{name}", "applied")

    def _version(self) -> int:
        has_meta = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return 0
        return int(self.get_meta("schema_version") or 0)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        self.commits += 1

    # meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def bump_version(self) -> int:
        """The item set changed: the saved vector index no longer matches until saved again."""
        version = int(self.get_meta("items_version") or 0) + 1
        self.set_meta("items_version", str(version))
        return version

    # files --------------------------------------------------------------------------------
    def files(self) -> dict[str, FileRow]:
        rows = self.conn.execute("SELECT * FROM files").fetchall()
        return {r["path"]: FileRow(**dict(r)) for r in rows}

    def upsert_file(self, path: str, kind: str, size: int, mtime_ns: int, hash_: str | None,
                    status: str, reason: str | None, tries: int = 0, retry_at: float = 0.0
                    ) -> int:
        row = self.conn.execute(
            "INSERT INTO files(path, kind, size, mtime_ns, hash, status, reason, tries, retry_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET"
            " kind = excluded.kind, size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " hash = excluded.hash, status = excluded.status, reason = excluded.reason,"
            " tries = excluded.tries, retry_at = excluded.retry_at RETURNING id",
            (path, kind, size, mtime_ns, hash_, status, reason, tries, retry_at),
        ).fetchone()
        return int(row[0])

    def touch_file(self, file_id: int, size: int, mtime_ns: int) -> None:
        self.conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?",
                          (size, mtime_ns, file_id))

    def delete_file(self, file_id: int) -> list[int]:
        """Remove a file and everything derived from it; returns the item ids removed. Its
        words stay in the keyword index's old segments until cleanup.scrub() rewrites them:
        the mark that asks for it is written in the same transaction."""
        ids = self.item_ids(file_id)
        self._delete_fts(ids)
        self.conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        self.mark_scrub("fts")
        return ids

    def mark_scrub(self, level: str) -> None:
        """Ask cleanup.scrub() for at least ``level`` (of SCRUB_LEVELS); in the caller's
        transaction."""
        current = self.get_meta(SCRUB)
        if current not in SCRUB_LEVELS or SCRUB_LEVELS.index(current) < SCRUB_LEVELS.index(level):
            self.set_meta(SCRUB, level)

    # items --------------------------------------------------------------------------------
    def item_ids(self, file_id: int) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT id FROM items WHERE file_id = ?",
                                                (file_id,))]

    def replace_items(self, file_id: int, items: Iterable[dict[str, Any]]) -> tuple[list[int],
                                                                                     list[int]]:
        """Swap a file's items for new ones; returns (removed ids, new ids)."""
        old = self.item_ids(file_id)
        self._delete_fts(old)
        self.conn.execute("DELETE FROM items WHERE file_id = ?", (file_id,))
        new = []
        for it in items:
            row = self.conn.execute(
                "INSERT INTO items(file_id, kind, section, start_line, end_line, page, headings,"
                " text, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (file_id, it["kind"], it.get("section"), it.get("start_line"),
                 it.get("end_line"), it.get("page"), json.dumps(it.get("headings", [])),
                 it["text"], it["content_hash"]),
            ).fetchone()
            new.append(int(row[0]))
        return old, new

    def set_content_hash(self, item_id: int, content_hash: str) -> None:
        self.conn.execute("UPDATE items SET content_hash = ? WHERE id = ?", (content_hash, item_id))

    def set_fts(self, item_id: int, text: str, names: str, context: str) -> None:
        self.conn.execute("DELETE FROM items_fts WHERE rowid = ?", (item_id,))
        self.conn.execute(
            "INSERT INTO items_fts(rowid, text, names, context) VALUES (?, ?, ?, ?)",
            (item_id, cjk_grams(text), cjk_grams(names), cjk_grams(context)))

    def _delete_fts(self, ids: list[int]) -> None:
        self.conn.executemany("DELETE FROM items_fts WHERE rowid = ?", [(i,) for i in ids])

    def term_frequencies(self, words: list[str]) -> list[tuple[str, int]]:
        """How many items hold each word, after the index's own stemming (porter): a word in a
        large share of items tells BM25 almost nothing and costs the most to rank. Both are
        remembered (a search's words come back in the next one) until the index changes."""
        self._forget_if_changed()
        stems = self.stems(words)
        for stem in set(stems.values()) - self._stem_counts.keys():
            row = self.conn.execute("SELECT doc FROM items_vocab WHERE term = ?",
                                    (stem,)).fetchone()
            self._stem_counts[stem] = int(row[0]) if row else 0
        return [(w, self._stem_counts[stems[w]]) for w in words]

    def stems(self, words: Iterable[str]) -> dict[str, str]:
        """Each word's term in the index (its porter stem; "" for a word the tokenizer drops),
        remembered: the tokenizer never changes."""
        wanted = list(dict.fromkeys(words))
        if len(self._stems) > STEMS_KEPT:
            self._stems.clear()
        unknown = [w for w in wanted if w not in self._stems]
        if unknown:
            self._stems.update(self._stem(unknown))
        return {w: self._stems[w] for w in wanted}

    def _stem(self, words: list[str]) -> dict[str, str]:
        """Each word's stem, by a temporary FTS5 table with the index's tokenizer ("" for a
        word it drops)."""
        self.conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words USING fts5("
            "w, tokenize = 'porter unicode61 remove_diacritics 2')")
        self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms"
                          " USING fts5vocab(temp, query_words, 'instance')")
        self.conn.execute("DELETE FROM temp.query_words")
        self.conn.executemany("INSERT INTO temp.query_words(rowid, w) VALUES (?, ?)",
                              list(enumerate(words)))
        stems = {int(doc): term for term, doc in self.conn.execute(
            "SELECT term, doc FROM temp.query_terms")}
        return {w: stems.get(i, "") for i, w in enumerate(words)}

    def item_count(self) -> int:
        """Items in the index (remembered until it changes)."""
        self._forget_if_changed()
        if self._item_total is None:
            self._item_total = int(self.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
        return self._item_total

    def _forget_if_changed(self) -> None:
        """Drop the remembered counts when items may have changed since they were counted:
        another connection committed (SQLite's data_version), or this one did."""
        seen = (int(self.conn.execute("PRAGMA data_version").fetchone()[0]), self.commits)
        if seen != self._seen:
            self._seen = seen
            self._stem_counts.clear()
            self._item_total = None

    def item(self, item_id: int) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT items.*, files.path, files.kind AS file_kind FROM items"
            " JOIN files ON files.id = items.file_id WHERE items.id = ?", (item_id,)).fetchone()
        return row

    # links --------------------------------------------------------------------------------
    def replace_links(self, note_id: int, links: Iterable[dict[str, Any]]) -> None:
        self.conn.execute("DELETE FROM links WHERE note_id = ?", (note_id,))
        self.conn.executemany(
            "INSERT INTO links(note_id, link, target, reason, page, line, col, caption, headings,"
            " context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(note_id, x["link"], x["target"], x["reason"], x["page"], x["line"], x["column"],
              x["caption"], json.dumps(x["headings"], ensure_ascii=False),
              json.dumps(x["context"], ensure_ascii=False)) for x in links],
        )

    def links_to(self, target: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT links.*, files.path AS note FROM links JOIN files ON files.id = links.note_id"
            " WHERE links.target = ? ORDER BY files.path, links.line", (target,)).fetchall()
        return [{**dict(r), "headings": json.loads(r["headings"]),
                 "context": json.loads(r["context"])} for r in rows]

    def set_tags(self, file_id: int, tags: Iterable[str]) -> None:
        self.conn.execute("DELETE FROM tags WHERE file_id = ?", (file_id,))
        self.conn.executemany("INSERT OR IGNORE INTO tags(file_id, tag) VALUES (?, ?)",
                              [(file_id, t) for t in tags])

    def set_properties(self, file_id: int, properties: Iterable[tuple[str, str, float | None]]
                       ) -> None:
        self.conn.execute("DELETE FROM properties WHERE file_id = ?", (file_id,))
        self.conn.executemany(
            "INSERT OR IGNORE INTO properties(file_id, name, value, number) VALUES (?, ?, ?, ?)",
            [(file_id, *p) for p in properties])

    def link_targets_from(self, note_id: int) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT target FROM links WHERE note_id = ? AND target IS NOT NULL", (note_id,))}

    def all_links(self) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT links.id, links.link, links.target, files.path AS note FROM links"
            " JOIN files ON files.id = links.note_id").fetchall()

    def retarget(self, link_id: int, target: str | None, reason: str | None) -> None:
        self.conn.execute("UPDATE links SET target = ?, reason = ? WHERE id = ?",
                          (target, reason, link_id))

    # caches -------------------------------------------------------------------------------
    def cached_vectors(self, hashes: Iterable[str], signature: str) -> dict[str, Vectors]:
        out: dict[str, Vectors] = {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for h, blob in self.conn.execute(
                f"SELECT content_hash, vector FROM embeddings WHERE signature = ?"
                f" AND content_hash IN ({marks})", (signature, *chunk)):
                out[h] = np.frombuffer(blob, dtype=np.float32)
        return out

    def store_vectors(self, signature: str, vectors: dict[str, Vectors]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO embeddings(content_hash, signature, vector) VALUES (?, ?, ?)",
            [(h, signature, np.asarray(v, dtype=np.float32).tobytes())
             for h, v in vectors.items()])

    def extract(self, file_hash: str, extractor: str) -> Any:
        row = self.conn.execute("SELECT data FROM extracts WHERE file_hash = ? AND extractor = ?",
                                (file_hash, extractor)).fetchone()
        return None if row is None else json.loads(row[0])

    def store_extract(self, file_hash: str, extractor: str, data: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO extracts(file_hash, extractor, data)"
                          " VALUES (?, ?, ?)", (file_hash, extractor,
                                                json.dumps(data, ensure_ascii=False)))

    def live_vectors(self, signature: str) -> Iterator[tuple[int, Vectors]]:
        """(item id, cached vector) for every item that has one under this signature."""
        for item_id, blob in self.conn.execute(
            "SELECT items.id, embeddings.vector FROM items JOIN embeddings"
            " ON embeddings.content_hash = items.content_hash AND embeddings.signature = ?",
            (signature,)):
            yield int(item_id), np.frombuffer(blob, dtype=np.float32)

    def counts(self) -> dict[str, int]:
        files = dict(self.conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))
        items = dict(self.conn.execute("SELECT kind, COUNT(*) FROM items GROUP BY kind"))
        return {"files": sum(files.values()), **{f"files_{k}": v for k, v in files.items()},
                "items": sum(items.values()), **{f"items_{k}": v for k, v in items.items()}}
