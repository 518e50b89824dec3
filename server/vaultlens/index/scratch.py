"""A connection's temporary id list, for `IN (SELECT id FROM temp.scratch_ids)`: a filter's
thousands of admitted ids travel to SQLite once, not as thousands of bound parameters."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


def set_scratch_ids(conn: sqlite3.Connection, ids: Iterable[int]) -> None:
    """Fill the connection's temporary id list."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS scratch_ids (id INTEGER PRIMARY KEY)")
    with scratch_savepoint(conn):
        conn.execute("DELETE FROM temp.scratch_ids")
        conn.executemany("INSERT OR IGNORE INTO temp.scratch_ids(id) VALUES (?)",
                         [(i,) for i in ids])


@contextmanager
def scratch_savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """One commit for many writes to a temporary table: in autocommit mode each insert
    would commit on its own, a journal write for every id."""
    conn.execute("SAVEPOINT scratch")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO scratch")
        raise
    finally:
        conn.execute("RELEASE scratch")
