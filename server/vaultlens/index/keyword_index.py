"""The keyword index as search sees it: FTS5's matches and bm25(), its stems, how many items
hold a term, each item's term counts and length, its totals, and the postings kept in memory
(postings.py). search/keywords.py does the ranking; every statement it needs is here.

One per connection (a search thread's, or the writer's): what it remembers is valid for what
that connection sees.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from vaultlens.index.postings import Posting, Postings
from vaultlens.index.scratch import scratch_savepoint, set_scratch_ids

STEMS_KEPT = 100_000  # words whose stem a connection remembers


def _varints(data: bytes) -> list[int]:
    """SQLite's varints (big-endian, 7 bits a byte, the ninth byte whole), as FTS5 writes them."""
    out: list[int] = []
    i = 0
    while i < len(data):
        value = 0
        for n in range(9):
            byte = data[i]
            i += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        out.append(value)
    return out


class KeywordIndex:
    """The FTS5 index over items (``items_fts``) through one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # what every search asks again: a word's stem (the tokenizer's: it never changes),
        # and, until the index changes, how many items hold a stem and how many items there are
        self._stems: dict[str, str] = {}
        self._stem_counts: dict[str, int] = {}
        self._item_total: int | None = None
        self._seen: tuple[int, int] = (-1, -1)
        self._commits = 0  # by this connection: data_version counts only the others'

    def committed(self) -> None:
        """This connection committed a change (SQLite's data_version does not count it)."""
        self._commits += 1

    def term_frequencies(self, words: list[str]) -> list[tuple[str, int]]:
        """How many items hold each word, after the index's own stemming (porter): a word in a
        large share of items tells BM25 almost nothing and costs the most to rank. Both are
        remembered (a search's words come back in the next one) until the index changes."""
        self._forget_if_changed()
        stems = self.stems(words)
        for stem in set(stems.values()) - self._stem_counts.keys():
            row = self._conn.execute("SELECT doc FROM items_vocab WHERE term = ?",
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
        self._conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words USING fts5("
            "w, tokenize = 'porter unicode61 remove_diacritics 2')")
        self._conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms"
                           " USING fts5vocab(temp, query_words, 'instance')")
        self._conn.execute("DELETE FROM temp.query_words")
        self._conn.executemany("INSERT INTO temp.query_words(rowid, w) VALUES (?, ?)",
                               list(enumerate(words)))
        stems = {int(doc): term for term, doc in self._conn.execute(
            "SELECT term, doc FROM temp.query_terms")}
        return {w: stems.get(i, "") for i, w in enumerate(words)}

    def item_count(self) -> int:
        """Items in the index (remembered until it changes)."""
        self._forget_if_changed()
        if self._item_total is None:
            self._item_total = int(self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
        return self._item_total

    def _forget_if_changed(self) -> None:
        """Drop the remembered counts when items may have changed since they were counted:
        another connection committed (SQLite's data_version), or this one did."""
        seen = (int(self._conn.execute("PRAGMA data_version").fetchone()[0]), self._commits)
        if seen != self._seen:
            self._seen = seen
            self._stem_counts.clear()
            self._item_total = None

    def bm25(self, match: str, limit: int, allowed: Sequence[int] | None = None
             ) -> dict[int, float]:
        """FTS5's best ``limit`` items for a MATCH expression (among ``allowed``, when given),
        best first, with bm25() negated (higher is better). Raises sqlite3.OperationalError
        for an expression FTS5 cannot take."""
        if allowed is None:
            sql = ("SELECT rowid, bm25(items_fts) FROM items_fts WHERE items_fts MATCH ?"
                   " ORDER BY bm25(items_fts) LIMIT ?")
        else:
            # `rowid IN (...)` on an FTS5 table runs the match once per id: match once, then join
            set_scratch_ids(self._conn, allowed)
            sql = ("WITH m AS MATERIALIZED (SELECT rowid AS id, bm25(items_fts) AS r"
                   " FROM items_fts WHERE items_fts MATCH ?)"
                   " SELECT m.id, m.r FROM m JOIN temp.scratch_ids USING (id) ORDER BY m.r LIMIT ?")
        rows = self._conn.execute(sql, (match, limit)).fetchall()
        return {int(r[0]): -float(r[1]) for r in rows}

    def postings(self, kept: Postings, stems: list[str], items_held: dict[str, int]
                 ) -> tuple[int, dict[str, Posting]] | None:
        """The postings of these terms from ``kept`` (shared by the search threads), read
        through this connection where missing; None when SQLite should rank (postings.py)."""
        return kept.lookup(self._conn, stems, items_held)

    def term_counts(self, ids: Sequence[int], stems: Sequence[str]
                    ) -> tuple[dict[int, dict[str, int]], dict[int, int]]:
        """How often each item holds each of ``stems`` (the index's terms: porter stems, CJK
        bigrams), in all its fields, and each item's length in tokens: what BM25 counts. Read
        through a small temporary FTS5 table of those items with the index's tokenizer."""
        conn = self._conn
        # contentless: its index is all that is read, and 'delete-all' empties it at once,
        # where deleting rows of a table with content tokenises each of them again (half of
        # this lookup's time)
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.held_words USING fts5("
            "t, content = '', tokenize = 'porter unicode61 remove_diacritics 2')")
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.held_terms"
                     " USING fts5vocab(temp, held_words, 'instance')")
        set_scratch_ids(conn, ids)
        with scratch_savepoint(conn):
            conn.execute("INSERT INTO temp.held_words(held_words) VALUES ('delete-all')")
            # one statement, in SQLite, not a round trip per item; CROSS JOIN keeps the id
            # list outside, so each item is a direct rowid lookup (`rowid IN` scans FTS5)
            conn.execute(
                "INSERT INTO temp.held_words(rowid, t) SELECT f.rowid, coalesce(f.text, '') || ' '"
                " || coalesce(f.names, '') || ' ' || coalesce(f.context, '')"
                " FROM temp.scratch_ids AS s CROSS JOIN items_fts AS f WHERE f.rowid = s.id")
        lengths = {int(doc): int(n) for doc, n in conn.execute(
            "SELECT doc, count(*) FROM temp.held_terms GROUP BY doc")}
        counts: dict[int, dict[str, int]] = {}
        wanted = [s for s in dict.fromkeys(stems) if s]
        if wanted:
            for doc, term, n in conn.execute(
                    "SELECT doc, term, count(*) FROM temp.held_terms"
                    f" WHERE term IN ({','.join('?' * len(wanted))}) GROUP BY doc, term",
                    wanted):
                counts.setdefault(int(doc), {})[str(term)] = int(n)
        return counts, lengths

    def totals(self) -> tuple[int, int]:
        """(rows, tokens) of the keyword index, the totals its bm25() divides by: FTS5 keeps
        them in its "averages" record (rowid 1 of the _data table: varints, the row count and
        then each column's token count). A test holds Python's BM25 to bm25() on them."""
        row = self._conn.execute("SELECT block FROM items_fts_data WHERE id = 1").fetchone()
        try:
            values = _varints(bytes(row[0])) if row is not None and row[0] else []
        except IndexError:  # a record cut short: no totals, and BM25 stays with SQLite
            values = []
        return (values[0], sum(values[1:])) if values else (0, 0)

    def texts(self, item_id: int) -> tuple[str, ...]:
        """An item's indexed fields (text, names, context), as the index holds them."""
        row = self._conn.execute("SELECT text, names, context FROM items_fts WHERE rowid = ?",
                                 (item_id,)).fetchone()
        return tuple(str(x) for x in (row or ()))
