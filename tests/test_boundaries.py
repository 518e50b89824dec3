"""One storage boundary: SQL lives in vaultlens/index/ only. Search, serve and the rest read
through index.reader.Reader and index.keyword_index.KeywordIndex, never a connection; a
statement written anywhere else fails here, by file and line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import vaultlens

PACKAGE = Path(vaultlens.__file__).parent
STORAGE = PACKAGE / "index"
RUNS = {"execute", "executemany", "executescript"}
CONNECTIONS = {"conn", "_conn"}
# statements as this code writes them: upper-case keywords
SQL = re.compile(
    r"\bSELECT\b.*\bFROM\b|\bINSERT\s+(?:OR\s+[A-Z]+\s+)?INTO\b|\bUPDATE\s+\S+\s+SET\b"
    r"|\bDELETE\s+FROM\b|\bCREATE\s+(?:UNIQUE\s+|VIRTUAL\s+|TEMP\s+)?(?:TABLE|INDEX)\b"
    r"|\bPRAGMA\b|\bMATCH\s+\?", re.DOTALL)


def offences(source: str, name: str) -> list[str]:
    """Each place in ``source`` that reaches storage directly, as "name:line: what"."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in RUNS):
            found.append((node.lineno, f"calls .{node.func.attr}()"))
        elif isinstance(node, ast.Attribute) and node.attr in CONNECTIONS:
            found.append((node.lineno, f"reaches .{node.attr}"))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and SQL.search(node.value)):
            found.append((node.lineno, f"holds SQL {node.value[:60]!r}"))
    return [f"{name}:{line}: {what}" for line, what in sorted(found)]


def test_only_the_index_speaks_sql() -> None:
    outside = [p for p in sorted(PACKAGE.rglob("*.py")) if STORAGE not in p.parents]
    assert len(outside) > 20  # the walk found the package
    found = [o for p in outside
             for o in offences(p.read_text(encoding="utf-8"), str(p.relative_to(PACKAGE)))]
    assert not found, "SQL outside vaultlens/index/:\n" + "\n".join(found)


def test_the_guard_sees_each_kind_of_leak() -> None:
    source = '''
rows = reader.catalog.conn.execute("SELECT id FROM items WHERE path = ?", (p,))
self._conn.executemany(sql, rows)
QUERY = "SELECT rowid FROM items_fts WHERE items_fts MATCH ? LIMIT 5"
ddl = f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)"
fix = "UPDATE files SET hash = NULL"
gone = "DELETE FROM links WHERE note_id = ?"
add = "INSERT OR IGNORE INTO tags(file_id, tag) VALUES (?, ?)"
mode = "PRAGMA journal_mode"
'''
    found = offences(source, "leak.py")
    assert [f.split(":")[1] for f in found] == ["2", "2", "2", "3", "3", "4", "5", "6", "7",
                                                "8", "9"]
    assert offences('text = "Select the notes from the vault"\nitems.update(x)\n', "ok.py") == []


def test_every_error_the_package_raises_derives_from_one_root() -> None:
    """A domain error has one root (vaultlens.errors), so serve/faults.py can map each one to
    HTTP and MCP in one place and nothing falls through as a bare Exception. Control flow
    that never reaches a caller (a child declining one request, a run asked to stop) is not an
    error and is named so."""
    import importlib
    import pkgutil

    from vaultlens.errors import VaultlensError

    not_errors = {"vaultlens.workers.Declined", "vaultlens.index.vectorizer.Stopped"}
    strays = []
    for info in pkgutil.walk_packages(vaultlens.__path__, "vaultlens."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (isinstance(value, type) and issubclass(value, BaseException)
                    and value.__module__ == info.name
                    and not issubclass(value, VaultlensError)
                    and f"{info.name}.{name}" not in not_errors):
                strays.append(f"{info.name}.{name}")
    assert not strays, f"errors outside the root: {strays}"
