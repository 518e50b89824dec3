"""The daemon's query model in a worker process (embedders/process.py): the same vectors as
in this process, and a worker that dies, fails to load or outlives its parent is handled."""

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

import numpy as np
import pytest

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors
from vaultlens.embedders.minilm_numpy import NumpyMiniLM
from vaultlens.embedders.process import InWorker, load
from vaultlens.workers import read_frame, serve, stream_reader, write_frame
from worker_pipes import query_answer_pipe as answer_pipe
from worker_pipes import query_framed as framed

TEXTS = ["how do I sync my vault", "同步设置", "", "a " * 400]


@pytest.fixture
def worker() -> Iterator[InWorker]:
    model = InWorker(NumpyMiniLM(), partial(NumpyMiniLM))
    yield model
    model.close()


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether the process ended (a zombie not yet reaped by its parent counts)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_vectors_are_the_models(worker: InWorker) -> None:
    local = NumpyMiniLM()
    for role in ("query", "document"):
        np.testing.assert_allclose(worker.embed_texts(TEXTS, role),
                                   local.embed_texts(TEXTS, role), atol=1e-6)
    assert worker.embed_texts([], "query").shape == (0, local.dimension)
    assert worker.signature == local.signature


def test_counting_tokens_starts_no_worker(worker: InWorker) -> None:
    assert worker.count_tokens("how do I sync") == NumpyMiniLM().count_tokens("how do I sync")
    assert worker.pid is None


def test_a_killed_worker_is_replaced(worker: InWorker) -> None:
    """Killed between requests: the next request starts a new one. (A worker that ends in
    the middle of a request is an error: the next test.)"""
    worker.embed_texts(["first"], "query")
    pid = worker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert gone(pid)
    vector = worker.embed_texts(["third"], "query")
    assert worker.pid not in (None, pid)
    np.testing.assert_allclose(vector, NumpyMiniLM().embed_texts(["third"], "query"),
                               atol=1e-6)


@pytest.mark.slow
def test_a_stuck_worker_is_given_up_on_and_replaced() -> None:
    worker = InWorker(NumpyMiniLM(), partial(NumpyMiniLM), timeout=3.0)
    try:
        worker.embed_texts(["first"], "query")
        pid = worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # alive, never answering
        start = time.monotonic()
        with pytest.raises(ModelError, match="did not answer within 3 s"):
            worker.embed_texts(["second"], "query")
        assert time.monotonic() - start < 10
        assert gone(pid)
        assert worker.embed_texts(["third"], "query").shape == (1, worker.dimension)
    finally:
        worker.close()


def test_a_model_that_cannot_load_says_why(tmp_path: Path) -> None:
    """The worker ends before it answers: the request fails with the worker's last words,
    and so does the next (a new worker, the same reason)."""
    broken = InWorker(NumpyMiniLM(), partial(NumpyMiniLM, tmp_path))
    try:
        for _ in range(2):
            with pytest.raises(ModelError, match=r"worker process ended.*no MiniLM model here"):
                broken.embed_texts(["anything"], "query")
    finally:
        broken.close()


def test_images_are_refused_here(worker: InWorker) -> None:
    from PIL import Image

    with pytest.raises(ModelError, match="text only"):
        worker.embed([Input(image=Image.new("RGB", (8, 8)))], "query")
    assert worker.pid is None


def test_close_ends_the_worker(worker: InWorker) -> None:
    worker.embed_texts(["x"], "query")
    pid = worker.pid
    assert pid is not None
    worker.close()
    assert worker.pid is None and gone(pid)


def test_the_worker_ends_with_its_parent(tmp_path: Path) -> None:
    """A daemon killed with SIGKILL leaves no worker behind: its stdin closes."""
    script = (
        "from functools import partial\n"
        "from vaultlens.embedders.minilm_numpy import NumpyMiniLM\n"
        "from vaultlens.embedders.process import InWorker\n"
        "m = InWorker(NumpyMiniLM(), partial(NumpyMiniLM))\n"
        "m.embed_texts(['x'], 'query')\n"
        "print(m.pid, flush=True)\n"
        "import time; time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert not gone(pid, within=0.2)
        parent.kill()
        assert gone(pid)
    finally:
        parent.kill()
        parent.wait()


class Failing(Embedder):
    """Answers one text and fails on "boom": the worker must carry on after a failure."""

    name = signature = "failing"
    dimension = 2

    def embed(self, inputs: list[Input], role: Role) -> Vectors:  # type: ignore[override]
        if any(i.text == "boom" for i in inputs):
            raise ValueError("cannot embed boom")
        return np.ones((len(inputs), 2), dtype=np.float32)


def test_the_worker_answers_an_error_and_carries_on() -> None:
    requests = io.BytesIO()
    for seq, frame in ((0, Failing), (7, (["boom"], "query")), (8, (["fine"], "query"))):
        write_frame(requests, seq, frame)
    requests.seek(0)
    answers = io.BytesIO()
    serve(load, requests, answers)  # returns when the requests end
    answers.seek(0)
    exactly = stream_reader(answers)
    assert read_frame(exactly) == (7, ("error", "failing: ValueError: cannot embed boom"))
    seq, (status, vectors) = read_frame(exactly)
    assert (seq, status) == (8, "ok") and vectors.tolist() == [[1.0, 1.0]]
    with pytest.raises(EOFError):
        read_frame(exactly)


def test_the_multilingual_model_runs_in_a_worker_too() -> None:
    from vaultlens.embedders.registry import query_model_for
    from vaultlens.embedders.use import MultilingualUSE

    local = MultilingualUSE()
    model = query_model_for(local)
    try:
        texts = ["同步设置在哪里", "where are the sync settings"]
        np.testing.assert_allclose(model.embed_texts(texts, "query"),
                                   local.embed_texts(texts, "query"), atol=1e-5)
        worker = model.model.model  # type: ignore[attr-defined]
        assert isinstance(worker, InWorker) and worker.pid is not None
        assert model.multilingual
    finally:
        model.close()


# A model whose library chatters on stdout at every call: a line of text, and bytes that look
# like an answer (to the first request, and to the second)
NOISY = '''
import os, pickle, struct, sys
import numpy as np
from vaultlens.embedders.base import Embedder


def frame(seq, value):
    data = pickle.dumps(value)
    return struct.pack("<QQ", len(data), seq) + data


class Noisy(Embedder):
    name = signature = "noisy"
    dimension = 2

    def embed(self, inputs, role):
        stray = np.full((len(inputs), 2), 9.0, dtype=np.float32)
        os.write(1, frame(1, ("ok", stray)) + frame(2, ("ok", stray)))
        print("loading weights... done")
        sys.stdout.flush()
        return np.array([[len(i.text or ""), 1.0] for i in inputs], dtype=np.float32)
'''


def test_what_the_model_prints_never_reaches_the_pipe(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A library printing to stdout in the worker (text, or a frame's bytes) goes to its
    stderr: each answer stays its own request's."""
    (tmp_path / "noisy_model.py").write_text(NOISY)
    monkeypatch.syspath_prepend(str(tmp_path))
    # the worker unpickles the factory (and finds this package where this process did)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p))
    from noisy_model import Noisy  # type: ignore[import-not-found]

    worker = InWorker(Noisy(), Noisy, timeout=5.0)
    try:
        for text in ("a", "bb", "ccc", "dddd"):
            assert worker.embed_texts([text], "query").tolist() == [[len(text), 1.0]]
    finally:
        worker.close()






ONE_VECTOR = np.ones((1, 384), dtype=np.float32) / np.sqrt(384)
OUT_OF_STEP = {
    # an answer that is not this request's: a stray frame, or one left from another request
    "stray answer": framed(pickle.dumps(("ok", ONE_VECTOR)), seq=1),
    "another request's answer": framed(pickle.dumps(("ok", ONE_VECTOR)), seq=10**6),
    "not an answer": framed(pickle.dumps("garbage")),
    "unknown status": framed(pickle.dumps(("maybe", ONE_VECTOR))),
    "wrong shape": framed(pickle.dumps(("ok", np.ones((3, 7), dtype=np.float32)))),
    "a huge length": struct.pack("<QQ", 2**40, 2) + b"garbage",
    "does not unpickle": framed(b"\x80\x04cnosuchmodule\nthing\n."),
}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="writes through /proc")
@pytest.mark.parametrize("junk", OUT_OF_STEP.values(), ids=OUT_OF_STEP.keys())
def test_an_answer_out_of_step_restarts_the_worker(junk: bytes) -> None:
    """Bytes in the pipe that are not the answer to the request in hand: that request fails
    at once with ModelError (a search then falls back to keywords), the worker is replaced,
    and every later answer is its own request's (not the one before's)."""
    worker = InWorker(NumpyMiniLM(), partial(NumpyMiniLM), timeout=20.0)
    local = NumpyMiniLM()
    try:
        worker.embed_texts(["warm up"], "query")
        pid = worker.pid
        with open(answer_pipe(worker), "wb") as pipe:
            pipe.write(junk)
        start = time.monotonic()
        with pytest.raises(ModelError, match="out of step"):
            worker.embed_texts(["first"], "query")
        assert time.monotonic() - start < 5  # not a wait for the timeout
        assert pid is not None and gone(pid)
        for text in ("second", "third", "fourth"):
            np.testing.assert_allclose(worker.embed_texts([text], "query"),
                                       local.embed_texts([text], "query"), atol=1e-6)
        assert worker.pid not in (None, pid)
    finally:
        worker.close()


@pytest.mark.slow
def test_an_idle_worker_ends_and_the_next_request_starts_it_again() -> None:
    """``idle``: the worker ends once it has had no request that long (the indexing model's,
    between runs), not while requests keep coming, and the next request starts a new one
    with the same vectors."""
    worker = InWorker(NumpyMiniLM(), partial(NumpyMiniLM), idle=1.5)
    assert worker.resting is not None
    try:
        first = worker.embed_texts(["first"], "document")
        pid = worker.pid
        assert pid is not None
        for _ in range(4):  # busy: requests closer together than ``idle`` keep it
            time.sleep(0.5)
            worker.embed_texts(["again"], "query")
        assert worker.pid == pid and worker.resting.stops == 0
        deadline = time.monotonic() + 10
        while worker.resting.stops == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.resting.stops == 1 and worker.pid is None and gone(pid)
        again = worker.embed_texts(["first"], "document")
        assert worker.pid not in (None, pid)
        np.testing.assert_allclose(again, first, atol=1e-6)
    finally:
        worker.close()


def test_the_daemons_indexing_model_runs_in_a_worker_that_rests() -> None:
    """A bundled text model indexes in a worker process that ends when idle; a visual model
    stays in the daemon's process (too big to load twice)."""
    from vaultlens.embedders.e5 import E5
    from vaultlens.embedders.minilm import MiniLM
    from vaultlens.embedders.registry import INDEXING_IDLE_S, indexing_model_for
    from vaultlens.embedders.use import MultilingualUSE

    for model in (E5(threads=3), MiniLM(threads=3), MultilingualUSE(threads=3)):
        wrapped = indexing_model_for(model)
        assert isinstance(wrapped, InWorker) and wrapped.signature == model.signature
        assert wrapped.resting is not None and wrapped.resting.idle == INDEXING_IDLE_S
        assert wrapped.factory().threads == 3  # type: ignore[attr-defined]
        assert "OMP_NUM_THREADS" not in wrapped.child.recipe.env  # the model's threads
    visual = FakeVisual()
    assert indexing_model_for(visual) is visual


class FakeVisual(Embedder):
    name, signature, dimension, supports_images = "visual", "visual:1", 4, True

    def embed(self, inputs: object, role: Role) -> Vectors:
        raise AssertionError("never called")
