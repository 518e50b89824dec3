"""The keyword index's postings in memory, for the words searches ask for, while the index
stands still.

FTS5's bm25() costs about 0.8 µs for every item holding any query word, and half of that is
spent before the first row (it counts each word's items again to weigh it). With a word's
items and counts in numpy, scoring them all costs a few nanoseconds each, so a search ranks
every match exactly, however common the words.

A word's postings are read once (FTS5's own "instance" vocabulary: its items and how often each
holds it, in any field), weighed by each item's length, and kept, shared by the search
threads, until the keyword index changes. FTS5 rewrites its structure record (rowid 10 of the
_data table) on every write, so that record says whether anything changed. While the indexer
writes, it changes between most searches: then nothing is read ahead, and searches ask
SQLite. Reading starts at the second search that sees the same record.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)
K1, B = 1.2, 0.75  # FTS5's BM25 constants, for every score computed outside SQLite
MAX_ENTRIES = 2_000_000  # (item, word) pairs kept, 20 bytes each (40 MB): least used go first
MAX_WORD_ITEMS = 100_000  # a word in more items than this is left to SQLite


@dataclass(frozen=True)
class Posting:
    """One word's items (ascending ids), how often each holds it, and its BM25 term factor
    tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average)) for each."""

    items: NDArray[np.int64]
    counts: NDArray[np.int32]
    factors: NDArray[np.float64]


def decode_sizes(blobs: list[bytes], columns: int) -> NDArray[np.int64]:
    """Each row's length in tokens (all columns) from FTS5's docsize blobs: one SQLite varint
    a column (big-endian, 7 bits a byte; nine-byte varints never occur for token counts)."""
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    if len(data) == 0:
        return np.zeros(len(blobs), dtype=np.int64)
    last = np.flatnonzero(data < 0x80)  # each varint ends at a byte below 0x80
    first = np.concatenate([[0], last[:-1] + 1])
    span = last - first + 1
    values = np.zeros(len(last), dtype=np.int64)
    low = (data & 0x7F).astype(np.int64)
    for k in range(int(span.max())):
        more = span > k
        values[more] = (values[more] << 7) | low[first[more] + k]
    if len(values) != columns * len(blobs):
        raise ValueError("docsize records do not hold one size a column")
    sizes: NDArray[np.int64] = values.reshape(len(blobs), columns).sum(axis=1)
    return sizes


class Postings:
    """Shared by every search thread; each call brings the caller's own connection."""

    def __init__(self, table: str = "items_fts", columns: int = 3,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.table = table
        self.columns = columns
        self.max_entries = max_entries
        self._lock = threading.Lock()  # guards the fields below; held for moments only
        self._reading = threading.Lock()  # one thread reads the lengths; others ask SQLite
        self._seen: bytes | None = None  # the structure record the last search saw
        self._state: bytes | None = None  # ... and the one the kept postings belong to
        self._ids: NDArray[np.int64] = np.zeros(0, np.int64)  # items with a length, ascending
        self._lengths: NDArray[np.int64] = np.zeros(0, np.int64)
        self._words: OrderedDict[str, Posting] = OrderedDict()
        self._entries = 0

    def lookup(self, conn: sqlite3.Connection, stems: list[str], items_held: dict[str, int]
               ) -> tuple[int, dict[str, Posting]] | None:
        """The number of items in the keyword index and the postings of these index terms, or
        None when SQLite should rank this search: the index changed since the last search,
        another thread is reading its item lengths, or a term is in more than
        ``MAX_WORD_ITEMS`` items (``items_held``: each term's item count)."""
        if any(items_held.get(s, 0) > MAX_WORD_ITEMS for s in stems):
            return None
        state = self._structure(conn)
        with self._lock:
            stable, self._seen = state == self._seen, state
            current = state == self._state
            if current and all(s in self._words for s in stems):
                for s in stems:
                    self._words.move_to_end(s)
                return len(self._ids), {s: self._words[s] for s in stems}
        if not stable or conn.in_transaction:
            return None
        if current:  # words only: any thread reads the ones it lacks (a few ms each)
            return self._read_safely(conn, stems)
        # the item lengths first (0.1 s at 100,000 items): one thread, the others ask SQLite
        if not self._reading.acquire(blocking=False):
            return None
        try:
            return self._read_safely(conn, stems)
        finally:
            self._reading.release()

    def _read_safely(self, conn: sqlite3.Connection, stems: list[str]
                     ) -> tuple[int, dict[str, Posting]] | None:
        """A read that fails (a damaged record, a disk error) leaves the search to SQLite,
        which reports what it can."""
        try:
            return self._read(conn, stems)
        except (sqlite3.Error, ValueError) as exc:
            log.warning("keyword postings unreadable (%s); SQLite ranks this search", exc)
            return None

    def _structure(self, conn: sqlite3.Connection) -> bytes:
        row = conn.execute(f"SELECT block FROM {self.table}_data WHERE id = 10").fetchone()
        return bytes(row[0]) if row is not None and row[0] is not None else b""

    def _read(self, conn: sqlite3.Connection, stems: list[str]
              ) -> tuple[int, dict[str, Posting]] | None:
        """Read what is missing, in one snapshot of the index, and keep it."""
        conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{self.table}_instances"
                     f" USING fts5vocab(main, {self.table}, 'instance')")
        with self._lock:
            kept, ids, lengths = self._state, self._ids, self._lengths
            known = {s: self._words[s] for s in stems if s in self._words}
        conn.execute("BEGIN")
        try:
            state = self._structure(conn)
            if state != self._seen:
                return None  # the index changed again since this search began
            if state != kept:
                if not self._reading.locked():  # the lengths moved on meanwhile
                    return None
                ids, lengths = self._read_lengths(conn)
                known = {}
            average = float(lengths.mean()) if len(lengths) else 0.0
            fresh = {s: self._read_word(conn, s, ids, lengths, average)
                     for s in stems if s not in known}
        finally:
            conn.execute("COMMIT")
        with self._lock:
            if state != self._state:
                self._state, self._ids, self._lengths = state, ids, lengths
                self._words.clear()
                self._entries = 0
            for stem, posting in fresh.items():
                self._words[stem] = posting
                self._entries += len(posting.items)
            while self._entries > self.max_entries and len(self._words) > 1:
                _, dropped = self._words.popitem(last=False)
                self._entries -= len(dropped.items)
        return len(ids), {**known, **fresh}

    def _read_lengths(self, conn: sqlite3.Connection
                      ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        rows = conn.execute(f"SELECT id, sz FROM {self.table}_docsize ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, decode_sizes([bytes(r[1]) for r in rows], self.columns)

    def _read_word(self, conn: sqlite3.Connection, stem: str, ids: NDArray[np.int64],
                   lengths: NDArray[np.int64], average: float) -> Posting:
        # one row: the item of each occurrence, comma-joined (not a Python tuple each), counted
        # here; SQLite's GROUP BY took twice as long
        (joined,) = conn.execute(
            f"SELECT group_concat(doc) FROM temp.{self.table}_instances WHERE term = ?",
            (stem,)).fetchone()
        each = np.array(joined.split(","), dtype=np.int64) if joined else np.zeros(0, np.int64)
        if len(each) > 1 and (np.diff(each) < 0).any():  # FTS5 lists them by item: never seen
            each = np.sort(each)
        first = np.flatnonzero(np.diff(each, prepend=-1))  # where each item's run starts
        held = each[first]
        tf = np.diff(np.append(first, len(each))).astype(np.int32)
        at = np.minimum(np.searchsorted(ids, held), max(len(ids) - 1, 0))
        length = lengths[at] if len(held) else np.zeros(0, np.int64)
        norm = K1 * (1 - B + B * length / max(average, 1e-9))
        return Posting(held, tf, tf * (K1 + 1) / (tf + norm))
