"""The test suite's own layout: shared fixtures live in conftest.py and shared helpers in plain
modules (indexing.py, served.py, browsing.py, ...), so no module under tests/ imports a test
module; a test module is collected, run and deselected (-m "not slow") on its own."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_test_modules(source: str) -> list[str]:
    """The test modules ``source`` imports, anywhere in it (functions included)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                 else [])
        # tests/ is on sys.path, so a test module is imported as a top-level name
        found += [n for n in names if n.startswith(("test_", "tests."))]
    return found


def test_no_module_imports_a_test_module() -> None:
    wrong = {p.name: names for p in sorted(TESTS.glob("*.py"))
             if (names := imported_test_modules(p.read_text(encoding="utf-8")))}
    assert not wrong, f"move what they share into conftest.py or a helper module: {wrong}"


def test_an_import_of_a_test_module_is_caught() -> None:
    assert imported_test_modules("from test_indexer import VAULT\n") == ["test_indexer"]
    assert imported_test_modules("def f():\n    import tests.test_api\n") == ["tests.test_api"]
    assert imported_test_modules("from indexing import VAULT\nimport pytest\n") == []
