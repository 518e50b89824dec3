"""Forgetting content the vault no longer holds: the OCR and PDF text cached by file hash, the
thumbnails, and the deleted text that SQLite leaves on disk.

:func:`forget_gone` runs at the end of an indexing run that wrote every file, when the catalog
names every file of the vault with its hash. A cached extract or a thumbnail whose file hash no
file has is content gone from the vault (deleted, or changed). Nothing refers to either but a
file's hash, and a hash that a file holds is never forgotten, so a kill at any moment leaves no
dangling reference; at worst an entry that no file needs, which the next run removes. A file
renamed or moved within one run keeps its cache: by the end of the run the new path holds the
hash. Cached vectors stay: they hold numbers by content hash, never text, and they spare a
restored file its model call.

Every catalog connection deletes with ``secure_delete`` (rows and freed pages are overwritten
with zeros). Deleted text still stays in two places it does not reach:
- the keyword index: FTS5 deletes a row by writing tombstones (which hold its words too) beside
  the segments that hold them, until a merge. FTS5's own 'secure-delete' option needs SQLite
  3.42 or later, and Python here links 3.40. So 'optimize' merges the index into one segment,
  and the old segments' pages are zeroed as they are freed. It rewrites the keyword index
  (about half a second for 50,000 items), so it runs only when a file was deleted or a cached
  extract went; the words of a note's edited paragraph wait for FTS5's own merges;
- the WAL, which keeps old copies of the pages it changed until it is overwritten: a TRUNCATE
  checkpoint empties it.
The mark that asks for this (catalog.SCRUB) is written in the transaction that deletes, and
cleared only once the checkpoint has succeeded: after a kill, or while a reader holds the WAL,
the next run does it again.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from vaultlens.index.catalog import SCRUB, Catalog

log = logging.getLogger(__name__)
THUMB = re.compile(r"([0-9a-f]{64})(-p[0-9]+)?\.webp")  # DataDir.thumb_path: hash[-p<page>]
STALE_TEMP = 60.0  # seconds: a thumbnail's temp file older than this was left by a kill


@dataclass
class Forgotten:
    extracts: int = 0  # cached extracts removed (OCR of a picture or of a PDF page, PDF text)
    thumbnails: int = 0  # thumbnail files removed
    scrubbed: bool = False  # deleted text was cleared from the keyword index and the WAL


def held_hashes(catalog: Catalog) -> set[str]:
    """The hashes of the images and PDFs the catalog has: the only files with extracts or
    thumbnails."""
    return {str(r[0]) for r in catalog._conn.execute(
        "SELECT DISTINCT hash FROM files WHERE hash IS NOT NULL AND kind IN ('image', 'pdf')")}


def forget_gone(catalog: Catalog, thumbs: Path) -> Forgotten:
    """Remove what no file of the catalog holds, then clear deleted text. Call it only when
    every file of the vault is in the catalog (a run that was not stopped). A step that fails
    on the disk (full, read-only) is logged and done by a later run."""
    out = Forgotten()
    try:
        held = held_hashes(catalog)
        out.extracts = forget_extracts(catalog, held)
        out.thumbnails = forget_thumbnails(thumbs, held)
        out.scrubbed = scrub(catalog)
    except (sqlite3.OperationalError, OSError) as exc:
        log.warning("cannot clear what the vault no longer holds (%s); the next run tries again",
                    exc)
    return out


def forget_extracts(catalog: Catalog, held: set[str]) -> int:
    """Cached extracts of hashes no file holds, in one transaction with the scrub mark. Keys
    are a file's hash, or for a PDF page's OCR the hash, ':' and the page number."""
    keys = {str(r[0]) for r in catalog._conn.execute(
        "SELECT DISTINCT substr(file_hash, 1, 64) FROM extracts")}
    gone = sorted(keys - held)
    if not gone:
        return 0
    removed = 0
    with catalog.transaction() as conn:
        for h in gone:  # the hash and every "hash:page" sort in [hash, hash + ";")
            removed += conn.execute(
                "DELETE FROM extracts WHERE file_hash >= ? AND file_hash < ?",
                (h, h + ";")).rowcount
        catalog.mark_scrub("fts")  # the pictures' and pages' text was in the keyword index
    log.info("forgot %d cached extracts of %d files no longer in the vault", removed, len(gone))
    return removed


def forget_thumbnails(thumbs: Path, held: set[str]) -> int:
    """Thumbnails of hashes no file holds, and temp files a kill left behind."""
    removed = 0
    try:
        shards = [e.path for e in os.scandir(thumbs) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return 0
    now = time.time()
    for shard in shards:
        for entry in os.scandir(shard):
            match = THUMB.fullmatch(entry.name)
            if match is not None:
                gone = match.group(1) not in held
            else:  # atomic_write's temp file: "<name>.<pid>-<thread>.tmp"
                gone = (entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False)
                        and now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP)
            if gone:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed


def scrub(catalog: Catalog) -> bool:
    """Clear deleted text from the keyword index's segments and the WAL when the catalog's
    mark asks for it; True when done (False: nothing asked, or a reader held the WAL)."""
    mark = catalog.get_meta(SCRUB)
    if mark is None:
        return False
    start = time.perf_counter()
    if mark != "wal":  # "fts", "vacuum", or one this version does not know: all of it
        with catalog.transaction() as conn:
            conn.execute("INSERT INTO items_fts(items_fts) VALUES ('optimize')")
            if mark == "fts":
                catalog.set_meta(SCRUB, "wal")
        if mark != "fts":  # each step may run again after a kill: no harm
            catalog._conn.execute("VACUUM")
            with catalog.transaction():
                catalog.set_meta(SCRUB, "wal")
    if not checkpoint(catalog):
        log.info("deleted text stays in the WAL while a reader holds it; the next run clears it")
        return False
    with catalog.transaction() as conn:
        conn.execute("DELETE FROM meta WHERE key = ?", (SCRUB,))
    checkpoint(catalog)  # and the WAL is empty again
    log.info("cleared deleted text from the catalog in %.2f s", time.perf_counter() - start)
    return True


def checkpoint(catalog: Catalog) -> bool:
    """Copy the WAL into the catalog and truncate it; False when a reader kept it from
    finishing (it waits for them as long as the connection's busy timeout)."""
    busy, _, _ = catalog._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(busy) == 0
