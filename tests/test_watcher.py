"""The watcher on a real vault (watchfiles, real events), with a service that records what it is
asked: nothing from outside the vault gets in through a link, Excluded files set in Obsidian
while it runs are honoured, and an exclusion regex never stalls the event loop."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from vaultlens.serve.watcher import watch
from vaultlens.vault.policy import Policy

MakeVault = Callable[[dict[str, str | bytes]], Path]


class Recorder:
    """Stands in for IndexService: what the watcher asks for."""

    def __init__(self) -> None:
        self.requested: list[str] = []
        self.reconciles = 0

    def request(self, paths: list[str]) -> None:
        self.requested += paths

    def reconcile(self) -> None:
        self.reconciles += 1

    async def wait_for(self, path: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while path not in self.requested:
            assert time.monotonic() < deadline, f"{path} never requested: {self.requested}"
            await asyncio.sleep(0.05)


class Watching:
    def __init__(self, vault: Path) -> None:
        self.vault, self.service, self.stop = vault, Recorder(), asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        service: Any = self.service
        self.task = asyncio.create_task(watch(Policy(self.vault), service, self.stop,
                                              debounce_ms=50))
        await asyncio.sleep(0.5)  # the watches are in place

    async def close(self) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def watching(make_vault: MakeVault) -> AsyncIterator[Watching]:
    w = Watching(make_vault({"Home.md": "# Home\n"}))
    yield w
    await w.close()


async def test_links_out_of_the_vault_are_not_followed(watching: Watching,
                                                       tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n")
    os.symlink(outside, watching.vault / "ext")  # a folder link present at start
    await watching.start()
    (outside / "later.md").write_text("# Written out there after the start\n")
    os.symlink(outside / "secret.md", watching.vault / "passwd.md")  # a file link, made live
    (watching.vault / "Fresh.md").write_text("# Fresh\n")
    await watching.service.wait_for("Fresh.md")
    assert not [p for p in watching.service.requested if p.startswith("ext/")]
    assert "passwd.md" not in watching.service.requested
    assert watching.service.reconciles  # the scan looks at passwd.md, and says why not


async def test_a_link_to_the_data_dir_never_wakes_the_indexer(watching: Watching,
                                                              tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(data, watching.vault / "data")
    await watching.start()
    for i in range(5):  # the daemon's own writes, seen through the link
        (data / "catalog.sqlite").write_bytes(b"x" * i)
        (data / f"thumb{i}.webp").write_bytes(b"x")
        await asyncio.sleep(0.1)
    (watching.vault / "Fresh.md").write_text("# Fresh\n")
    await watching.service.wait_for("Fresh.md")
    assert watching.service.requested == ["Fresh.md"]
    assert watching.service.reconciles == 0


async def test_excluded_files_set_while_running_are_honoured(watching: Watching) -> None:
    await watching.start()
    (watching.vault / ".obsidian").mkdir()
    (watching.vault / ".obsidian" / "app.json").write_text(
        json.dumps({"userIgnoreFilters": ["Private/", "/draft/"]}))
    (watching.vault / "Private").mkdir()
    (watching.vault / "Private" / "diary.md").write_text("# Diary\n")
    (watching.vault / "a draft.md").write_text("# Draft\n")
    (watching.vault / "Fresh.md").write_text("# Fresh\n")
    await watching.service.wait_for("Fresh.md")
    assert watching.service.requested == ["Fresh.md"]
    assert watching.service.reconciles  # app.json changed: the files indexed are looked at


async def test_a_backtracking_exclusion_regex_never_stalls_the_loop(watching: Watching) -> None:
    (watching.vault / ".obsidian").mkdir()
    (watching.vault / ".obsidian" / "app.json").write_text(
        json.dumps({"userIgnoreFilters": ["/^(a+)+$/"]}))
    await watching.start()
    lag = 0.0

    async def tick() -> None:
        nonlocal lag
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.02)
            lag = max(lag, time.monotonic() - before - 0.02)

    ticker = asyncio.create_task(tick())
    try:
        name = "a" * 25 + "!.md"  # exponential for a backtracking engine
        (watching.vault / name).write_text("# Not excluded: the rule does not match\n")
        await watching.service.wait_for(name, timeout=120)
    finally:
        ticker.cancel()
    assert lag < 1.0, f"the event loop stalled {lag:.1f} s"
