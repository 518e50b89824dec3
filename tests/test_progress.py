"""A daemon that says what it is doing: an honest ETA (estimating until it can be), progress
and idle lines in its log, searches that say when they may miss something, and a status that
lists a few real failures and counts the files nobody searches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from vaultlens.index.report import (
    MIN_SECONDS,
    Pace,
    Progress,
    RunLog,
    Summary,
    idle_line,
    progress_line,
)
from vaultlens.serve.answers import Found, Partial
from vaultlens.serve.indexing import IndexService
from vaultlens.serve.status import coverage, daemon_line, mcp_status, status_text
from vaultlens.workspace import IndexStatus


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_estimating_until_the_pace_is_seen() -> None:
    clock = Clock()
    pace = Pace(clock)
    total = Progress(0, 100, "", 0.0, 100.0)
    pace.add(total)
    clock.now += 30  # the model loads: nothing done
    assert pace.estimate(total).eta_s is None
    first = Progress(4, 100, "a.md", 4.0, 100.0)
    pace.add(first)
    clock.now += 2
    assert pace.estimate(first).eta_s is None  # one batch seen: too early to say
    clock.now += MIN_SECONDS / 2
    p = Progress(7, 100, "b.md", 7.0, 100.0)
    pace.add(p)
    assert pace.estimate(p).eta_s is None  # two batches seen, too soon
    clock.now += MIN_SECONDS / 2
    p = Progress(10, 100, "c.md", 10.0, 100.0)
    pace.add(p)
    e = pace.estimate(p)
    assert e.eta_s is not None and e.files_per_s is not None
    # within the usual gap between batches the ETA counts down; past it, the pace slows
    clock.now += 5
    assert pace.estimate(p).eta_s == pytest.approx(e.eta_s - 5, abs=0.2)
    clock.now += 60
    assert pace.estimate(p).eta_s > e.eta_s  # type: ignore[operator]


def test_the_eta_follows_the_recent_pace_not_the_slow_start() -> None:
    """A run whose first files waited 60 s for the model, then one unit of work a second: the
    ETA is the remaining work at one a second, not at the run's average."""
    clock = Clock()
    pace = Pace(clock)
    pace.add(Progress(0, 300, "", 0.0, 300.0))
    clock.now += 60
    done = 0
    for _ in range(90):
        clock.now += 1
        done += 1
        pace.add(Progress(done, 300, "x.md", float(done), 300.0))
    e = pace.estimate(Progress(done, 300, "x.md", float(done), 300.0))
    assert e.eta_s is not None and abs(e.eta_s - (300 - done)) < 0.05 * (300 - done)
    whole_run_average = (300 - done) / (done / 150)
    assert e.eta_s < 0.7 * whole_run_average


def test_the_eta_weighs_what_is_left() -> None:
    """Files of unequal weight: what is left is counted in work, not in files."""
    clock = Clock()
    pace = Pace(clock)
    pace.add(Progress(0, 20, "", 0.0, 110.0))
    for n in range(1, 11):  # ten light files, one unit a second
        clock.now += 1
        pace.add(Progress(n, 20, "x.md", float(n), 110.0))
    clock.now += 20  # a heavy file in hand: the pace slows to 9 units in 28 s
    # ten heavy files left (100 units): about 100 / (9 / 28) seconds; counted in files (10
    # left at the same pace) it would be a tenth of that
    e = pace.estimate(Progress(10, 20, "x.md", 10.0, 110.0))
    assert e.eta_s is not None and 250 < e.eta_s < 350


def test_a_run_logs_its_start_progress_and_end(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    pace = Pace(clock)
    runlog = RunLog(pace)
    caplog.set_level(logging.INFO)
    runlog.started(222)
    clock.now += 5
    runlog.tick(Progress(57, 222, "Editing and formatting/Properties.md", 57.0, 222.0))
    summary = Summary(model="m", visual=False, files=308, items=2345,
                      skipped=[{"path": "a.png", "reason": "truncated image"},
                               {"path": "b.png", "reason": "truncated image"}],
                      partial=[{"path": "c.pdf", "reason": "OCR failed"}],
                      ignored={"svg": 81, "css": 1})
    runlog.ended(222)
    runlog.idle(summary, None)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("indexing: 222 file(s) to read")
    assert "57/222 files (26%)" in lines[1] and "Properties.md" in lines[1]
    assert "estimating" in lines[1]
    end = lines[-1]
    assert "fully searchable" in end and "308 files, 2345 items" in end
    assert "3 not (fully) indexed" in end and "2: truncated image" in end
    assert "82 ignored" in end and "svg 81" in end
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_a_small_run_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    runlog = RunLog(Pace())
    caplog.set_level(logging.INFO)
    runlog.idle(Summary(model="m", visual=False, files=3, items=5), None)  # the first
    caplog.clear()
    runlog.started(1)  # a paste
    runlog.tick(Progress(0, 1, "Pasted image 1.png"))
    runlog.ended(1)
    runlog.idle(Summary(model="m", visual=False, files=4, items=6), None)
    assert len(caplog.records) == 1 and "1 file(s) read" in caplog.records[0].getMessage()
    caplog.clear()
    runlog.started(0)  # the periodic reconcile, nothing changed
    runlog.ended(0)
    runlog.idle(Summary(model="m", visual=False, files=4, items=6), None)
    assert not caplog.records


def test_progress_line_shortens_the_path() -> None:
    line = progress_line(Progress(1, 2, "a/" * 60 + "note.md"), Pace().estimate(Progress(1, 2, "")))
    assert len(line) < 140 and line.endswith("note.md") and "…" in line
    assert "idle: the vault is fully searchable" in idle_line(
        Summary(model="m", visual=False), 0, 1.0)


def service_at(p: Progress, running: bool, runs: int, searchable: int,
               monkeypatch: pytest.MonkeyPatch) -> IndexService:
    service = IndexService(None, 600.0)
    monkeypatch.setattr(service, "progress", lambda: p)
    monkeypatch.setattr(service, "searchable", lambda: searchable)
    service.running, service.runs = running, runs
    service.indexer = object()  # type: ignore[assignment]  # a writer
    return service


def test_a_search_during_the_first_index_is_partial(monkeypatch: pytest.MonkeyPatch) -> None:
    during = service_at(Progress(15, 308, "x.md"), True, 0, 308, monkeypatch)
    c = coverage(during, ready=True)
    assert (c.partial, c.reason) == (True, "indexing") and c.share == round(15 / 308, 3)
    assert coverage(during, ready=False).reason == "model loading"
    warm = service_at(Progress(1, 2, "x.md"), True, 3, 300, monkeypatch)  # a paste in hand
    c = coverage(warm, ready=True)
    assert c.partial and 0.99 < c.share < 1.0
    idle = service_at(Progress(2, 2, ""), False, 4, 300, monkeypatch)
    assert coverage(idle, ready=True) == coverage(idle, ready=True).__class__(False, None, 1.0)


def test_after_a_failed_run_searches_and_status_say_the_index_is_incomplete(
        monkeypatch: pytest.MonkeyPatch) -> None:
    failed = service_at(Progress(40, 300, ""), False, 1, 300, monkeypatch)
    failed.last_error = "TypeError: unhashable type: 'list'"
    c = coverage(failed, ready=True)
    assert (c.partial, c.reason, c.share) == (True, "index incomplete", round(40 / 300, 3))
    assert "failed before the end" in str(Partial(c.partial, c.reason, c.share).sentence())
    line = daemon_line({"state": "idle", "port": 1, "uptime_s": 5.0,
                        "last_error": failed.last_error})
    assert "fully searchable" not in line and "did not finish: TypeError" in line


def test_partial_answers_say_so_in_plain_words() -> None:
    found = Found([], Partial(True, "indexing", 0.23), 1.0)
    assert found.to_json()["partial_reason"] == "indexing"
    assert found.to_json()["indexed_share"] == 0.23
    back = Found.from_json(found.to_json())
    assert back.partial.sentence() == ("The vault is still being indexed (23% done); results "
                                       "may be incomplete.")
    assert Partial().sentence() is None
    assert "loading" in str(Partial(True, "model loading", 1.0).sentence())


def index_status(failures: int, ignored: dict[str, int]) -> IndexStatus:
    from vaultlens.index.report import NotIndexed

    return IndexStatus("/v", "/d", "m", None, False, None, 10, {"files": 10, "items": 20},
                       [NotIndexed(f"f{n}.png", "skipped", "truncated") for n in range(failures)],
                       ignored)


def test_status_lists_a_few_failures_and_counts_the_ignored() -> None:
    s = index_status(25, {"svg": 81, "css": 1})
    text = status_text(s, None, show_all=False)
    assert "no daemon running" in text
    assert "82 ignored (a kind nobody searches: svg 81, css 1)" in text
    assert text.count("truncated") == 10 and "15 more" in text and "--all" in text
    assert status_text(s, None, show_all=True).count("truncated") == 25
    daemon = {"state": "indexing", "port": 28123, "uptime_s": 65.0,
              "progress": {"done": 57, "total": 222, "files_per_s": 1.9, "eta_s": None}}
    text = status_text(s, daemon, show_all=False)
    assert "indexing 57/222 files, 1.9 files/s, ETA estimating (port 28123, up 1 min 05 s)" \
        in text


def test_mcp_status_is_compact() -> None:
    failures = [{"path": f"Attachments/f{n}.png", "status": "skipped",
                 "reason": "truncated image file"} for n in range(100)]
    s = {"vault": "/v", "model": "m", "visual_search": False, "counts": {"files": 308},
         "state": "idle", "uptime_s": 1.0, "progress": {"done": 1, "total": 1},
         "failures": failures, "ignored": {"svg": 81}}
    text, compact = mcp_status(s)
    assert len(compact["failures"]) == 10 and compact["more_failures"] == 90
    assert "90 more" in text and "81 ignored" in text and "fully searchable" in text
    assert len(text) + len(str(compact)) < 6000


def test_status_without_a_daemon_says_so(tmp_path: Path) -> None:
    from vaultlens.index.datadir import DataDir
    from vaultlens.serve.status import ask_daemon

    assert ask_daemon(DataDir(tmp_path / "data"), str(tmp_path)) is None


async def test_mcp_tools_tell_the_model_when_results_may_be_incomplete() -> None:
    """A search answered while the vault is indexed (or the model loads), by a daemon or by
    `vaultlens mcp` on its own: the tool's text says so in a sentence, before the hits."""
    from vaultlens.serve import tools
    from vaultlens.serve.requests import SearchRequest

    class Backend:
        async def search(self, request: SearchRequest) -> Found:
            return Found([], Partial(True, "indexing", 0.23), 1.0)

    result = await tools.search(Backend(), SearchRequest(query="sync"))  # type: ignore[arg-type]
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("The vault is still being indexed (23% done); results may be "
                           "incomplete.")
    assert result.structured_content is not None
    assert result.structured_content["partial_reason"] == "indexing"


async def test_a_daemon_says_what_it_is_doing(aiohttp_client: Any, make_vault: Any,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Through the API: a search while the first index is held half-way says it is partial
    (indexing, with the share done); the status counts the ignored files and says
    "estimating"; when the run ends the log says the vault is fully searchable."""
    import asyncio
    import threading

    from inprocess_api import Api
    from vaultlens.config import Config
    from vaultlens.index.datadir import DataDir
    from vaultlens.index.indexer import Indexer
    from vaultlens.serve.app import make_app
    from vaultlens.serve.daemon import DAEMON

    release = threading.Event()
    flush = Indexer._flush

    def held(self: Indexer, *args: Any, **kwargs: Any) -> None:
        release.wait(60)  # the first batch waits: the index is not complete
        flush(self, *args, **kwargs)

    monkeypatch.setattr(Indexer, "_flush", held)
    caplog.set_level(logging.INFO)
    vault = make_vault({"Sync.md": "# Selective sync\n\nExclude a folder from Obsidian Sync.\n",
                        "Pier.md": "# Pier\n\nThe storm rolled over the old pier.\n",
                        "theme.css": "body {}", "sound.ogg": b"OggS"})
    app = make_app(Config(vault=vault, data_dir=tmp_path / "data", model="minilm", ocr=False),
                   watching=False)
    api = Api(await aiohttp_client(app), DataDir(tmp_path / "data").token(), vault, app)
    daemon = app[DAEMON]
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, daemon.ready.wait, 60)
    for _ in range(400):  # the run has sized its work
        _, s = await api.get("/api/status")
        if s["progress"]["total"]:
            break
        await asyncio.sleep(0.05)
    _, found = await api.post("/api/search", {"query": "selective sync"})
    assert found["partial"] is True and found["partial_reason"] == "indexing"
    assert 0.0 <= found["indexed_share"] < 1.0
    _, packed = await api.post("/api/context", {"query": "selective sync"})
    assert packed["partial"] is True and packed["partial_reason"] == "indexing"
    assert s["state"] == "indexing" and s["progress"]["eta"] == "estimating"
    assert s["ignored"] == {"css": 1, "ogg": 1} and s["failures"] == []
    release.set()
    await api.idle()
    _, found = await api.post("/api/search", {"query": "selective sync"})
    assert (found["partial"], found["partial_reason"], found["indexed_share"]) == (
        False, None, 1.0)
    lines = [r.getMessage() for r in caplog.records if r.name == "vaultlens.serve.indexing"]
    assert any(x.startswith("idle: the vault is fully searchable: 4 files") for x in lines), \
        lines


def test_an_svg_icon_weighs_little_a_screenshot_much() -> None:
    from vaultlens.index.report import PICTURE_WORK, file_work
    from vaultlens.vault.vault import FileKind, VaultFile

    icon = VaultFile("Attachments/lock.svg", FileKind.IMAGE, 450, 0)
    shot = VaultFile("Attachments/shot.png", FileKind.IMAGE, 450, 0)
    note = VaultFile("Sync.md", FileKind.NOTE, 5000, 0)
    assert file_work(icon) < file_work(note) < file_work(shot) == PICTURE_WORK
