"""The worker toolkit (vaultlens/workers.py) with a tiny child: answers in step, a child that
dies mid-request, a deadline, a restart, an answer out of step, a child that prints, and a
child whose answer would run code in the parent; and the real children's answers."""

from __future__ import annotations

import io
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageDraw

import vaultlens
from vaultlens.embedders.minilm_numpy import NumpyMiniLM
from vaultlens.embedders.process import InWorker
from vaultlens.extract.ocr import OCR
from vaultlens.extract.pdfs import read_pdf
from vaultlens.workers import (
    BadFrame,
    CpuClock,
    Declined,
    Recipe,
    WallClock,
    Worker,
    WorkerDied,
    WorkerTimeout,
    read_frame,
    stream_reader,
    write_frame,
)
from worker_pipes import answer_pipe, framed

# what each request asks the child to do; its hello is a prefix for what it echoes
CHILD = '''
import os, pickle, struct, sys, time
from vaultlens.workers import Declined, serve


class Runs:
    """What a child taken over by a crafted file could answer: unpickling it calls ``call``."""

    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


def evil(how, marker):
    import numpy as np  # here alone: its BLAS threads would slow a killed child's reaping

    touch = Runs(os.system, f"touch {marker}")
    return {
        "os.system": touch,
        "builtins.eval": Runs(eval, f"open({marker!r}, 'w').close()"),
        "nested": ["fine", {"deep": (1.0, touch)}],
        "object array": np.array([touch], dtype=object),
    }[how]


def setup(prefix):
    def handle(request):
        what, arg = request
        if what == "echo":
            return prefix + arg
        if what == "refuse":
            raise Declined(arg)
        if what == "die":
            print("some noise first", file=sys.stderr)
            print(arg, file=sys.stderr, flush=True)
            os._exit(3)
        if what == "sleep":
            time.sleep(arg)
            return "slept"
        if what == "spin":
            end = time.monotonic() + arg
            while time.monotonic() < end:
                pass
            return "spun"
        if what == "pid":
            return os.getpid()
        if what == "evil":
            return evil(*arg)
        if what == "print":  # a chatty library: text, and bytes that look like answers
            data = pickle.dumps(("ok", "stray"))
            for seq in range(1, 10):
                os.write(1, struct.pack("<QQ", len(data), seq) + data)
            print("loading weights... done", flush=True)
            return prefix + arg
        raise ValueError(what)

    return handle


if __name__ == "__main__":
    serve(setup)
'''
SECONDS = WallClock(20.0)


def child_env(folder: Path) -> dict[str, str]:
    """PYTHONPATH for the child: its module, and this very package (not an installed one)."""
    package = Path(vaultlens.__file__).resolve().parents[1]
    return {"PYTHONPATH": os.pathsep.join([str(folder), str(package)])}


@pytest.fixture
def recipe(tmp_path: Path) -> Recipe:
    (tmp_path / "tiny_child.py").write_text(CHILD)
    return Recipe("tiny_child", hello=">", env=child_env(tmp_path))


@pytest.fixture
def worker(recipe: Recipe) -> Iterator[Worker]:
    child = Worker(recipe)
    yield child
    child.kill()


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether the process ended (a zombie not yet reaped counts)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_answers_are_their_requests_and_a_refusal_keeps_the_child(worker: Worker) -> None:
    assert worker.pid is None  # started by the first request
    assert worker.request(("echo", "a"), SECONDS) == ">a"
    pid = worker.pid
    with pytest.raises(Declined, match=r"^not this one$"):
        worker.request(("refuse", "not this one"), SECONDS)
    assert worker.request(("echo", "b"), SECONDS) == ">b"
    assert worker.pid == pid


def test_a_child_dying_mid_request_says_why_and_is_restarted(worker: Worker) -> None:
    first = worker.request(("pid", None), SECONDS)
    with pytest.raises(WorkerDied) as died:
        worker.request(("die", "the disk is on fire"), SECONDS)
    assert died.value.last_words == "the disk is on fire"
    assert died.value.returncode == 3
    assert gone(first)
    assert worker.request(("pid", None), SECONDS) not in (None, first)


def test_a_deadline_passing_kills_the_child(worker: Worker) -> None:
    first = worker.request(("pid", None), SECONDS)
    start = time.monotonic()
    with pytest.raises(WorkerTimeout):
        worker.request(("sleep", 30), WallClock(0.5))
    assert time.monotonic() - start < 5
    assert gone(first)
    assert worker.request(("echo", "again"), SECONDS) == ">again"


@pytest.mark.slow
def test_the_cpu_clock_counts_the_childs_work_not_its_waiting(worker: Worker) -> None:
    clock = CpuClock(budget=0.3, cap=10.0, fallback=10.0)
    if not Path("/proc/self/stat").exists():
        pytest.skip("CPU time is read from /proc")
    assert worker.request(("sleep", 1.0), clock) == "slept"  # no CPU spent: no timeout
    start = time.monotonic()
    with pytest.raises(WorkerTimeout):
        worker.request(("spin", 8.0), clock)
    assert time.monotonic() - start < 4
    # and the cap on wall time holds for a child that gets no CPU at all
    pid = worker.request(("pid", None), SECONDS)
    os.kill(pid, signal.SIGSTOP)
    start = time.monotonic()
    with pytest.raises(WorkerTimeout):
        worker.request(("echo", "x"), CpuClock(budget=5.0, cap=0.5, fallback=0.5))
    assert time.monotonic() - start < 4 and gone(pid)


def test_a_child_killed_between_requests_is_replaced(worker: Worker) -> None:
    first = worker.request(("pid", None), SECONDS)
    os.kill(first, signal.SIGKILL)
    assert gone(first)
    second = worker.request(("pid", None), SECONDS)
    assert second != first and worker.pid == second




def frame(seq: int, value: object) -> bytes:
    data = pickle.dumps(value)
    return struct.pack("<QQ", len(data), seq) + data


OUT_OF_STEP = {
    # the warm-up is request 1: the next is 2
    "the answer to an earlier request": frame(1, ("ok", ">stray")),
    "the answer to a later request": frame(3, ("ok", ">stray")),
    "not an answer": frame(2, ">stray"),
    "an unknown status": frame(2, ("maybe", ">stray")),
    "a huge length": struct.pack("<QQ", 2**40, 2) + b"garbage",
    "does not unpickle": struct.pack("<QQ", 5, 2) + b"\x80\x04junk",
}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="writes through /proc")
@pytest.mark.parametrize("junk", OUT_OF_STEP.values(), ids=OUT_OF_STEP.keys())
def test_a_frame_out_of_step_is_an_error_and_a_new_child(worker: Worker, junk: bytes) -> None:
    first = worker.request(("pid", None), SECONDS)
    with open(answer_pipe(worker), "wb") as pipe:
        pipe.write(junk)
    start = time.monotonic()
    with pytest.raises(BadFrame):
        worker.request(("echo", "mine"), SECONDS)
    assert time.monotonic() - start < 5  # at once, not at the deadline
    assert gone(first)
    for text in ("one", "two", "three"):  # each later answer is its own request's
        assert worker.request(("echo", text), SECONDS) == ">" + text


def test_a_check_refusing_the_answer_kills_the_child(worker: Worker) -> None:
    first = worker.request(("pid", None), SECONDS)

    def only_digits(value: object) -> str:
        if not str(value).isdigit():
            raise BadFrame(f"not digits: {value!r}")
        return str(value)

    with pytest.raises(BadFrame, match="not digits"):
        worker.request(("echo", "x"), SECONDS, only_digits)
    assert gone(first)


def test_what_the_child_prints_never_reaches_the_pipe(worker: Worker) -> None:
    for text in ("a", "bb", "ccc"):
        assert worker.request(("print", text), SECONDS) == ">" + text


def test_close_ends_the_child(worker: Worker) -> None:
    pid = worker.request(("pid", None), SECONDS)
    worker.close()
    assert worker.pid is None and gone(pid)


def test_frames_carry_their_numbers() -> None:
    stream = io.BytesIO()
    write_frame(stream, 7, ("ok", [1, 2]))
    write_frame(stream, 8, "x" * 100)
    stream.seek(0)
    exactly = stream_reader(stream)
    assert read_frame(exactly) == (7, ("ok", [1, 2]))
    with pytest.raises(BadFrame, match="a frame of"):
        read_frame(exactly, most=50)
    with pytest.raises(EOFError):
        read_frame(stream_reader(io.BytesIO(b"\x01\x02")))


@pytest.mark.parametrize("how", ["os.system", "builtins.eval", "nested", "object array"])
def test_an_answer_that_would_run_code_is_a_bad_frame_and_runs_nothing(
        worker: Worker, tmp_path: Path, how: str) -> None:
    """A child that a crafted image or PDF took over answers with a pickle that calls
    something when unpickled: the parent refuses it before calling it, kills the child, and
    the next request has a new one."""
    first = worker.request(("pid", None), SECONDS)
    marker = tmp_path / "ran"
    outcome: object
    try:
        outcome = worker.request(("evil", (how, str(marker))), SECONDS)
    except BadFrame as exc:
        outcome = exc
    assert not marker.exists(), "the child's answer ran code in the parent"
    assert isinstance(outcome, BadFrame) and "an answer naming" in str(outcome), outcome
    assert gone(first)
    assert worker.request(("echo", "next"), SECONDS) == ">next"


class Runs:
    def __init__(self, call: Any, arg: object) -> None:
        self.call, self.arg = call, arg

    def __reduce__(self) -> tuple[Any, tuple[object]]:
        return self.call, (self.arg,)




def test_only_the_parents_frames_are_unpickled_as_they_are(tmp_path: Path) -> None:
    """The child reads the parent's frames (a model's factory: any callable) trusted; a
    child's answer may name nothing of the kind."""
    marker = tmp_path / "ran"
    evil = framed(("ok", Runs(os.system, f"touch {marker}")))
    with pytest.raises(BadFrame, match=r"an answer naming (posix|nt)\.system"):
        read_frame(stream_reader(evil))
    assert not marker.exists()
    factory = partial(int, "7")
    with pytest.raises(BadFrame, match=r"an answer naming functools\.partial"):
        read_frame(stream_reader(framed(factory)))
    seq, hello = read_frame(stream_reader(framed(factory)), trusted=True)
    assert seq == 1 and hello() == 7


GRID = np.arange(24, dtype=np.float32).reshape(4, 6) / 7
ARRAYS = {
    "contiguous": GRID,
    "fortran order": np.asfortranarray(GRID),
    "a strided view": GRID[:, ::2],
    "transposed": GRID.T,
    "empty": np.zeros((0, 384), dtype=np.float32),
    "float64": GRID.astype(np.float64),
}


@pytest.mark.parametrize("vectors", ARRAYS.values(), ids=ARRAYS.keys())
def test_arrays_of_numbers_come_through(vectors: np.ndarray[Any, Any]) -> None:
    """Whatever names this numpy pickles its arrays with are allowed in an answer."""
    seq, (status, value) = read_frame(stream_reader(framed(("ok", vectors))))
    assert (seq, status) == (1, "ok")
    assert value.dtype == vectors.dtype and value.shape == vectors.shape
    np.testing.assert_array_equal(value, vectors)


@pytest.mark.slow
def test_the_real_childrens_answers_come_through(tmp_path: Path) -> None:
    """Each of the package's children, end to end: the query model's vectors, a PDF's
    pages (text, a render, the page count), an image's text."""
    local = NumpyMiniLM()
    model = InWorker(local, partial(NumpyMiniLM))
    try:
        texts = ["how do I sync my vault", "同步设置", ""]
        np.testing.assert_allclose(model.embed_texts(texts, "query"),
                                   local.embed_texts(texts, "query"), atol=1e-6)
    finally:
        model.close()

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "quarterly friction cost", fontsize=14)
    doc.new_page()
    doc.save(tmp_path / "d.pdf")
    pdf = read_pdf(tmp_path / "d.pdf", render="textless")
    assert pdf.page_count == 2 and [p.number for p in pdf.pages] == [1, 2]
    assert "friction" in pdf.pages[0].text and pdf.pages[0].image is None
    assert pdf.pages[1].text == "" and pdf.pages[1].image is not None

    picture = Image.new("RGB", (640, 120), "white")
    ImageDraw.Draw(picture).text((20, 40), "Quarterly friction report", fill="black",
                                 font_size=32)
    ocr = OCR(timeout=60)
    try:
        assert "friction" in ocr.read(picture).lower()
    finally:
        ocr.close()


STOPPED_PARENT = """
import os, signal, sys, time
from vaultlens.workers import Recipe, WallClock, Worker
child = Worker(Recipe("tiny_child", hello="", env=dict(PYTHONPATH=sys.argv[1]),
                      die_with_parent=True))
pid = child.request(("pid", None), WallClock(20))
os.kill(pid, signal.SIGSTOP)  # a stopped child never reads the end of its requests
print(pid, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_a_child_dies_with_its_parent_even_when_stopped(recipe: Recipe) -> None:
    path = recipe.env["PYTHONPATH"]
    parent = subprocess.Popen([sys.executable, "-c", STOPPED_PARENT, path],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": path})
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert not gone(pid, within=0.3)
    finally:
        parent.kill()
        parent.wait()
    assert gone(pid)
