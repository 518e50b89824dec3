"""Files of a kind nobody searches (FileKind.OTHER: css, js, audio, ...) are "ignored": never
read, counted by extension, never listed as failures; real failures come first."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from vaultlens.config import Config
from vaultlens.index.catalog import Catalog
from vaultlens.index.extractor import Extracted, Extractor
from vaultlens.index.report import Summary
from vaultlens.index.schema import MIGRATIONS
from vaultlens.vault.vault import VaultFile
from vaultlens.workspace import IndexStatus, open_workspace

MakeVault = Callable[[dict[str, str | bytes]], Path]

VAULT: dict[str, str | bytes] = {
    "Notes/Sync.md": "# Sync\n\nSelective sync leaves a folder out of Obsidian Sync.\n",
    "Empty.md": "",
    "theme.css": "body { color: red }",
    "plugin/main.js": "console.log(1)",
    "plugin/manifest.json": "{}",
    "sound.OGG": b"OggS\0\0",
    "LICENSE": "MIT",
    "broken.png": b"\x89PNG\r\n\x1a\nnot really",
}


def index(vault: Path, data: Path) -> Summary:
    ws = open_workspace(Config(vault=vault, data_dir=data, model="minilm", ocr=False),
                        writer=True)
    try:
        return ws.update()
    finally:
        ws.close()


def status(vault: Path, data: Path) -> IndexStatus:
    ws = open_workspace(Config(vault=vault, data_dir=data, model="minilm"), writer=False)
    try:
        return ws.status()
    finally:
        ws.close()


def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the extractor is asked to read from now on, in order."""
    read: list[str] = []
    original = Extractor.read

    def spy(self: Extractor, f: VaultFile, known: str | None, urgent: bool = False
            ) -> Extracted:
        read.append(f.path)
        return original(self, f, known, urgent)

    monkeypatch.setattr(Extractor, "read", spy)
    return read


def test_other_kinds_are_counted_not_listed(make_vault: MakeVault, tmp_path: Path) -> None:
    vault = make_vault(VAULT)
    summary = index(vault, tmp_path / "data")
    s = status(vault, tmp_path / "data")
    assert s.ignored == {"css": 1, "js": 1, "json": 1, "ogg": 1, "": 1}
    listed = [x.path for x in s.not_indexed]
    assert "broken.png" in listed
    assert not {"theme.css", "plugin/main.js", "plugin/manifest.json", "sound.OGG",
                "LICENSE"} & set(listed)
    assert summary.ignored == s.ignored
    assert s.counts["files_ignored"] == 5


def test_ignored_files_are_never_read(make_vault: MakeVault, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even hashed (it may be a large video): the extractor never sees them."""
    read = reads(monkeypatch)
    vault = make_vault(VAULT)
    index(vault, tmp_path / "data")
    assert sorted(read) == ["Empty.md", "Notes/Sync.md", "broken.png"]
    catalog = Catalog.open(tmp_path / "data" / "catalog.sqlite")
    row = catalog.file("theme.css")
    catalog.close()
    assert row is not None and row.status == "ignored" and row.reason is None


def test_one_added_while_the_daemon_runs_is_ignored_unread(
        make_vault: MakeVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher hands a new file to the urgent lane: a kind nobody searches is recorded as
    ignored there too, never read (a video dropped in is not hashed) nor listed."""
    vault = make_vault(VAULT)
    index(vault, tmp_path / "data")
    (vault / "clip.mp4").write_bytes(b"\0" * 4096)
    read = reads(monkeypatch)
    ws = open_workspace(Config(vault=vault, data_dir=tmp_path / "data", model="minilm",
                               ocr=False), writer=True)
    try:
        indexer = ws.indexer()
        indexer.request_urgent(["clip.mp4"])
        indexer.run()
        indexer.close()
    finally:
        ws.close()
    assert "clip.mp4" not in read
    s = status(vault, tmp_path / "data")
    assert s.ignored.get("mp4") == 1 and "clip.mp4" not in [x.path for x in s.not_indexed]


def test_a_second_run_does_not_touch_them(make_vault: MakeVault, tmp_path: Path) -> None:
    vault = make_vault(VAULT)
    index(vault, tmp_path / "data")
    again = index(vault, tmp_path / "data")
    assert again.indexed == 0 and again.ignored == {"css": 1, "js": 1, "json": 1, "ogg": 1, "": 1}
    # all unchanged but the truncated picture, which is tried again (up to three runs)
    assert [x["path"] for x in again.retry] == ["broken.png"]
    assert again.unchanged == again.files - 1


def test_failures_come_most_serious_first(make_vault: MakeVault, tmp_path: Path) -> None:
    vault = make_vault(VAULT)
    index(vault, tmp_path / "data")
    catalog = Catalog.open(tmp_path / "data" / "catalog.sqlite")
    with catalog.transaction():
        catalog.upsert_file("A.md", "note", 1, 1, "h", "partial", "OCR failed", 1)
        catalog.upsert_file("B.png", "image", 1, 1, None, "retry", "truncated", 1)
    order = [(x.status, x.path) for x in catalog.failures()]
    catalog.close()
    statuses = [s for s, _ in order]
    assert statuses == sorted(statuses, key=["skipped", "retry", "partial"].index)
    assert ("partial", "A.md") in order and ("retry", "B.png") in order


def test_an_older_catalog_shows_them_as_ignored(make_vault: MakeVault, tmp_path: Path) -> None:
    """A catalog written before "ignored" existed holds these files as skipped: after the
    upgrade they are ignored, with no file read again."""
    vault = make_vault(VAULT)
    data = tmp_path / "data"
    index(vault, data)
    path = data / "catalog.sqlite"
    conn = sqlite3.connect(path)
    # as the older version wrote them, at the schema before this change
    before = next(n for n, (name, _) in enumerate(MIGRATIONS, 1) if name == "0008_ignored_files")
    conn.execute("UPDATE files SET status = 'skipped', reason = 'not a note, image or PDF ('"
                 " || path || ')' WHERE status = 'ignored'")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(before - 1),))
    conn.execute("DELETE FROM meta WHERE key = 'migration:0008_ignored_files'")
    conn.commit()
    conn.close()
    s = status(vault, data)
    assert sum(s.ignored.values()) == 5
    assert [x.path for x in s.not_indexed] == ["broken.png"]
    again = index(vault, data)
    assert again.indexed == 0


def test_an_icon_indexed_by_an_older_version_is_ignored_after_the_upgrade(
        make_vault: MakeVault, tmp_path: Path) -> None:
    icon = '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"><path d="M0 0h9"/></svg>'
    vault = make_vault({"Note.md": "# Note\n\nWords.\n", "icons/gear.svg": icon})
    data = tmp_path / "data"
    index(vault, data)
    assert status(vault, data).ignored == {"svg": 1}
    conn = sqlite3.connect(data / "catalog.sqlite")  # as an older version left it: indexed
    before = next(n for n, (name, _) in enumerate(MIGRATIONS, 1) if name == "0009_svg_icons")
    conn.execute("UPDATE files SET status = 'indexed', hash = 'old' WHERE path LIKE '%.svg'")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(before - 1),))
    conn.execute("DELETE FROM meta WHERE key = 'migration:0009_svg_icons'")
    conn.commit()
    conn.close()
    index(vault, data)
    assert status(vault, data).ignored == {"svg": 1}
