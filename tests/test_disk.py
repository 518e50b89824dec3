"""The data dir goes wrong under a running daemon: deleted, full, read-only, damaged. Each time
the daemon says so in /api/status, keeps answering from what it has, repairs what it can by
itself, and never leaves a catalog that SQLite's integrity check rejects."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from inprocess_api import VAULT, Api, Client, MakeVault, open_api
from vaultlens.index.catalog import Catalog
from vaultlens.serve.daemon import DAEMON


@pytest.fixture
async def api(aiohttp_client: Client, make_vault: MakeVault, tmp_path: Path) -> Api:
    a = await open_api(aiohttp_client, make_vault(VAULT), tmp_path / "data")
    a.app[DAEMON].service.retry_every = 0.2  # seconds, not the default 30
    return a


def intact(catalog: Path) -> bool:
    with sqlite3.connect(catalog) as conn:
        return bool(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


async def index_note(api: Api, name: str, text: str) -> None:
    (api.vault / name).write_text(f"# {name}\n\n{text}\n")
    api.app[DAEMON].service.request([name])
    await api.idle()


async def paths(api: Api, query: str) -> list[str]:
    status, body = await api.post("/api/search", {"query": query, "k": 5})
    assert status == 200, body
    return [h["path"] for h in body["results"]]


async def until(check: Any, what: str, timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_deleted_data_dir_is_recreated_with_everything_in_it(api: Api,
                                                                     tmp_path: Path) -> None:
    data = tmp_path / "data"
    daemon = api.app[DAEMON]
    policy = daemon.workspace.policy  # the watcher holds it: the repair keeps it
    shutil.rmtree(data)
    assert "Sync.md" in await paths(api, "selective sync settings")  # from what is open
    await index_note(api, "Lighthouse.md", "The lighthouse keeper logs every ship.")
    _, status = await api.get("/api/status")
    assert status["problem"] is None and "deleted" in status["repairs"][-1]["what"]
    assert daemon.workspace.policy is policy and daemon.service.indexer.policy is policy
    assert intact(data / "catalog.sqlite") and (data / "vectors.usearch").exists()
    assert (data / "token").read_text().strip() == api.token  # the same token, written again
    # old and new are both there, and the old needed no new embedding: the cache came along
    assert "Lighthouse.md" in await paths(api, "lighthouse keeper")
    assert "Sync.md" in await paths(api, "selective sync settings")
    assert status["last_run"]["embedded"] <= 2


@pytest.mark.parametrize("error", ["database or disk is full",
                                   "attempt to write a readonly database"])
async def test_a_full_or_read_only_disk_is_said_and_outlived(
        api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: str) -> None:
    def fail(*_: Any, **__: Any) -> None:
        raise sqlite3.OperationalError(error)

    monkeypatch.setattr(Catalog, "replace_items", fail)
    await index_note(api, "Lighthouse.md", "The lighthouse keeper logs every ship.")
    _, status = await api.get("/api/status")
    kind = "full" if "full" in error else "read-only"
    assert status["problem"] and f"is {kind}" in status["problem"]
    assert "Sync.md" in await paths(api, "selective sync settings")  # still answering
    monkeypatch.undo()  # space is freed / write access is back

    async def recovered() -> bool:
        _, s = await api.get("/api/status")
        return bool(s["problem"] is None and "Lighthouse.md" in await paths(
            api, "lighthouse keeper"))

    await until(recovered, "the daemon to recover by itself")
    assert intact(tmp_path / "data" / "catalog.sqlite")


async def test_a_catalog_damaged_while_running_is_set_aside_and_rebuilt(
        api: Api, tmp_path: Path) -> None:
    catalog = tmp_path / "data" / "catalog.sqlite"
    with sqlite3.connect(catalog) as conn:  # everything into the main file, as it will be
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(catalog, "r+b") as fh:  # then truncated, and a stray write over what is left
        fh.truncate(8192)
        fh.write(b"\x00garbage" * 512)
    await index_note(api, "Lighthouse.md", "The lighthouse keeper logs every ship.")

    async def rebuilt() -> bool:
        _, s = await api.get("/api/status")
        return bool(s["repairs"] and s["problem"] is None and not s["indexing"]
                    and "Lighthouse.md" in await paths(api, "lighthouse keeper"))

    await until(rebuilt, "the index to be rebuilt")
    _, status = await api.get("/api/status")
    assert "damaged" in status["repairs"][-1]["what"]
    assert list(catalog.parent.glob("catalog.sqlite.damaged-*"))  # kept for a post-mortem
    assert intact(catalog) and "Sync.md" in await paths(api, "selective sync settings")


async def test_a_damaged_catalog_at_start_is_set_aside(aiohttp_client: Client,
                                                       make_vault: MakeVault,
                                                       tmp_path: Path) -> None:
    vault, data = make_vault(VAULT), tmp_path / "data"
    data.mkdir()
    (data / "catalog.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 3000)
    api = await open_api(aiohttp_client, vault, data)
    _, status = await api.get("/api/status")
    assert "damaged" in (status["notice"] or "")
    assert "Sync.md" in await paths(api, "selective sync settings")
    assert intact(data / "catalog.sqlite")
