"""OCR through the worker process, with the bundled RapidOCR models."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from PIL import Image, ImageDraw

from documents import text_picture as screenshot
from vaultlens.extract.ocr import OCR, OCRError, split_run_together


def busy_screenshot(text: str) -> Image.Image:
    """A screenshot with sixteen lines of text: about a second of one core's reading."""
    im = Image.new("RGB", (1280, 720), "white")
    draw = ImageDraw.Draw(im)
    for row in range(16):
        draw.text((20, 10 + 44 * row), f"{text} row {row} of the quarterly friction report",
                  fill="black", font_size=28)
    return im


@pytest.fixture(scope="module")
def ocr() -> OCR:
    engine = OCR(timeout=60)
    yield engine  # type: ignore[misc]
    engine.close()


@pytest.mark.slow
def test_reads_words_in_a_picture(ocr: OCR) -> None:
    text = ocr.read(screenshot("Quarterly friction report"))
    assert "friction" in text.lower()
    assert ocr.read(Image.new("RGB", (50, 50), "white")) == ""


@pytest.mark.slow
def test_a_dead_worker_is_restarted(ocr: OCR) -> None:
    ocr.read(screenshot("warm"))
    proc = ocr.child.process
    assert proc is not None
    proc.kill()
    proc.wait()
    assert "zebra" in ocr.read(screenshot("zebra crossing")).lower()


@pytest.mark.slow
def test_death_during_a_read_is_an_error_not_a_hang(ocr: OCR) -> None:
    """What a hostile image that crashes the OCR engine looks like from the indexer."""
    ocr.read(screenshot("warm"))
    proc = ocr.child.process
    assert proc is not None
    noisy = Image.effect_noise((1600, 1600), 100).convert("RGB")  # seconds of OCR work
    threading.Timer(0.3, proc.kill).start()
    with pytest.raises(OCRError, match="died"):
        ocr.read(noisy)
    assert "zebra" in ocr.read(screenshot("zebra crossing")).lower()


@pytest.mark.slow
def test_the_timeout_counts_the_workers_work_not_the_wall_clock() -> None:
    """A bulk worker at low priority on a busy machine gets little CPU: a screenshot of a few
    seconds' work once ran past the 30 s timeout and lost its words. Here the worker is stopped
    for longer than its timeout in the middle of a read (no CPU at all), and still answers;
    one stopped past its cap on wall time is given up on."""
    import os
    import signal
    import time
    from contextlib import suppress

    if not sys.platform.startswith("linux"):
        pytest.skip("CPU time is read from /proc")
    engine = OCR(threads=1)
    try:
        # the models loaded and this very picture read once (a new shape costs onnxruntime
        # extra work the first time), under the usual timeout. Reading it takes about 1 s of
        # CPU here (a picture read in less would be done before it is stopped); the budget is four
        engine.read(busy_screenshot("zebra crossing"))
        engine.timeout = 4.0  # threads=1: 4 s of CPU
        engine.wall_factor = 2.5
        pid = engine.pid
        assert pid is not None

        def stop_for(seconds: float) -> None:
            os.kill(pid, signal.SIGSTOP)
            time.sleep(seconds)
            with suppress(ProcessLookupError):  # given up on, and killed, meanwhile
                os.kill(pid, signal.SIGCONT)

        threading.Timer(0.05, stop_for, [5.0]).start()
        start = time.monotonic()
        assert "zebra" in engine.read(busy_screenshot("zebra crossing")).lower()
        assert time.monotonic() - start > 4.0  # it was stopped past its timeout
        # stopped past the cap (here twice 0.5 s of wall time), it is given up on
        engine.timeout = 0.5
        engine.wall_factor = 2.0
        threading.Timer(0.05, stop_for, [3.0]).start()
        start = time.monotonic()
        with pytest.raises(OCRError, match="longer than"):
            engine.read(busy_screenshot("zebra crossing"))
        assert time.monotonic() - start < 2.5
    finally:
        engine.close()
    # the cap: long for a bulk worker a busy machine may starve, short for the urgent one
    assert OCR(nice=10).wall_factor > OCR(nice=0).wall_factor == 2.0


@pytest.mark.parametrize(("raw", "split"), [
    ("QUARTERLYZEBRAMETRICS", "QUARTERLY ZEBRA METRICS"),
    ("Togglestackedtabs here", "Toggle stacked tabs here"),
    ("ExporttoPDF", "Export to PDF"),
    ("Settings and Obsidian stay whole", "Settings and Obsidian stay whole"),
    ("同步设置 unchanged", "同步设置 unchanged"),
    ("Quarterly vonugige report", "Quarterly vonugige report"),  # a name, not "von ug ige"
])
def test_run_together_words_are_split(raw: str, split: str) -> None:
    assert split_run_together(raw) == split


def test_the_main_process_never_loads_onnxruntime() -> None:
    """onnxruntime segfaults when imported after usearch: it must stay in the OCR worker.
    (PyMuPDF 2.0 imports it on `import pymupdf`; that is why pymupdf is pinned below 2.)"""
    code = ("import sys, usearch.index, pymupdf, vaultlens.workspace, vaultlens.cli; "
            "print('onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() == "False"


KILLED_DAEMON = """
import os, signal, threading, time
from vaultlens.extract.ocr import OCRPool
pool = OCRPool(1)
pool.start_urgent()
bulk = pool._all[0]
# started from a reading thread that then ends, as in a run: the worker must live on
def read():
    bulk.start()
    # until the worker has asked for its parent-death signal: it does so first, then loads
    # onnxruntime (a fixed sleep was too short on a busy machine)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(f"/proc/{bulk.pid}/maps") as fh:
            if "onnxruntime" in fh.read():
                break
        time.sleep(0.05)
reader = threading.Thread(target=read)
reader.start()
reader.join()
time.sleep(0.5)
os.kill(bulk.pid, signal.SIGSTOP)  # stopped, as while an urgent image is read
print(bulk.pid, pool._all[-1].pid, flush=True)
time.sleep(120)
"""


def state(pid: int) -> str:
    """A process's state letter (R, S, T for stopped, Z), or "gone"."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_workers_die_with_a_killed_daemon_even_when_stopped() -> None:
    """A daemon SIGKILLed while it holds its bulk OCR workers stopped (an urgent read) must
    not leave them behind: a stopped worker never sees its stdin close."""
    import signal
    import time

    daemon = subprocess.Popen([sys.executable, "-c", KILLED_DAEMON], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert daemon.stdout is not None
        bulk, urgent = (int(x) for x in daemon.stdout.readline().split())
        stopping = time.monotonic() + 5  # SIGSTOP lands a moment after it is sent
        while state(bulk) != "T" and time.monotonic() < stopping:
            time.sleep(0.01)
        assert state(bulk) == "T" and state(urgent) in ("R", "S")  # alive after its thread
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    deadline = time.monotonic() + 10
    while {state(bulk), state(urgent)} - {"gone", "Z"} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {state(bulk), state(urgent)} <= {"gone", "Z"}, (state(bulk), state(urgent))


def test_idle_bulk_workers_stop_and_come_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """At rest only the urgent worker is left: a bulk worker holds hundreds of MB. The next
    image starts one again."""
    import time

    from vaultlens.extract.ocr import OCRPool

    pool = OCRPool(1, timeout=60, idle_s=0.5)
    try:
        pool.start_urgent()
        assert "zebra" in pool.read(screenshot("zebra crossing")).lower()
        first = pool.bulk_pids()
        assert len(first) == 1
        deadline = time.monotonic() + 10
        while pool.bulk_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.bulk_pids() == [] and pool._all[-1].pid is not None  # the urgent one stays
        # bulk_pids() forgets the worker when its stop begins; the process then ends
        while state(first[0]) not in ("gone", "Z") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state(first[0]) in ("gone", "Z")
        assert "friction" in pool.read(screenshot("Quarterly friction report")).lower()
        assert len(pool.bulk_pids()) == 1 and pool.bulk_pids() != first
    finally:
        pool.close()


def test_a_busy_bulk_worker_is_not_stopped_for_idleness() -> None:
    """The idle stop waits for the reads in progress: one slower than the idle time still
    gets its words."""
    from vaultlens.extract.ocr import OCRPool

    pool = OCRPool(2, timeout=60, idle_s=0.2)
    try:
        pool.read(screenshot("warm"))  # one worker started, then idle for a moment
        noisy = Image.effect_noise((1400, 1400), 100).convert("RGB")  # over a second of work
        results: list[str] = []
        slow = threading.Thread(target=lambda: results.append(pool.read(noisy)))
        slow.start()
        # a quick read ends while the slow one runs: its idle timer must not stop the other
        assert "zebra" in pool.read(screenshot("zebra crossing")).lower()
        slow.join(120)
        assert len(results) == 1  # answered, not failed by a stop
    finally:
        pool.close()


@pytest.mark.slow
def test_a_worker_gives_back_the_memory_of_a_large_picture() -> None:
    """A worker keeps large buffers in its heap between images (speed); after a picture that
    made it larger than TRIM_ABOVE_MB it hands the free heap back."""
    from vaultlens.extract.ocr import TRIM_ABOVE_MB

    if not sys.platform.startswith("linux"):
        pytest.skip("RSS is read from /proc")
    engine = OCR(timeout=120, threads=1)
    try:
        big = Image.new("RGB", (2000, 1900), "white")
        draw = ImageDraw.Draw(big)
        for row in range(60):
            draw.text((10, 10 + 31 * row), "Quarterly friction report " * 6, fill="black",
                      font_size=22)
        assert "friction" in engine.read(big).lower()
        pid = engine.pid
        assert pid is not None
        with open(f"/proc/{pid}/status") as fh:
            rss = next(int(x.split()[1]) for x in fh if x.startswith("VmRSS:")) / 1024
        assert rss <= TRIM_ABOVE_MB + 50, rss
    finally:
        engine.close()
