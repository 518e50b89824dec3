"""A text model in a process of its own: the daemon's query model.

A search holds Python's GIL for most of its work (ranking, hits, snippets, usearch), and a
query's forward pass lets go of it a hundred times, once for each numpy product, then waits to
get it back. With four search threads in one process, two cores stayed a third idle at eight
searches at once: the threads took turns for the GIL. In a process of its own the model has a
core and a GIL to itself; the calling thread waits on a pipe, holding nothing.

Protocol on the worker's stdin/stdout, frames of an 8-byte length and a pickle: first the
model's factory (a picklable callable that builds it), then each request ``(texts, role)``;
the answer is ``("ok", vectors)`` or ``("error", reason)``. Pickle is safe here: both ends are
this program, and the pipe is private. The worker ends when its stdin closes (the daemon
stopped or died).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import IO, Any

import numpy as np

from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors

_LENGTH = struct.Struct("<Q")


def write_frame(stream: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def read_frame(exactly: Callable[[int], bytes]) -> Any:
    """The next frame's value; ``exactly(n)`` reads n bytes, or raises EOFError when the
    stream ends first."""
    size = _LENGTH.unpack(exactly(_LENGTH.size))[0]
    return pickle.loads(exactly(size))  # our own worker, over a private pipe


def stream_reader(stream: IO[bytes]) -> Callable[[int], bytes]:
    """``exactly`` over a blocking stream (the worker's stdin)."""
    def exactly(size: int) -> bytes:
        data = stream.read(size)
        if len(data) < size:
            raise EOFError
        return data

    return exactly


class InWorker(Embedder):
    """``model``'s vectors, computed by a worker process that builds its own copy with
    ``factory``. ``model`` answers everything else (name, signature, tokens) here and is
    never loaded in this process.

    One request at a time, and the caller reads its own answer: queries come batched
    (coalesce.py). A worker answering two at once, with a thread here handing out the
    answers, cost the searches' process a GIL handoff more a query, and p95 at eight searches
    at once went from 80 to 90 ms."""

    def __init__(self, model: Embedder, factory: Callable[[], Embedder],
                 timeout: float = 60.0) -> None:
        """``timeout``: seconds a request may take, the model's load included (a stuck
        worker is killed, and the searches waiting on it hear why)."""
        if model.supports_images:
            raise ValueError(f"{model.name}: only a text model runs in a worker process")
        self.model = model
        self.factory = factory
        self.timeout = timeout
        self.name, self.signature, self.dimension = model.name, model.signature, model.dimension
        self.multilingual, self.batch_size = model.multilingual, model.batch_size
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._last_words = ""  # the last line a worker that ended wrote to stderr
        self._lock = threading.Lock()  # one request at a time on the pipe

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def count_tokens(self, text: str) -> int | None:
        return self.model.count_tokens(text)  # its tokenizer alone: no weights loaded here

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            # its stderr goes to a file: a pipe nobody reads would fill, and a worker that
            # dies must still say why
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives with the worker
            # one BLAS thread, set for the worker alone: the searches have the other cores
            env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "vaultlens.embedders.process"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self._stderr, env=env)
            assert self._proc.stdin is not None
            write_frame(self._proc.stdin, self.factory)
        return self._proc

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        if any(item.image is not None for item in inputs):
            raise ModelError(f"{self.name} embeds text only; visual search is off")
        if not inputs:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            try:
                proc = self._start()
                assert proc.stdin is not None and proc.stdout is not None
                write_frame(proc.stdin, ([item.text or "" for item in inputs], role))
                status, value = self._answer(proc.stdout.fileno())
            except TimeoutError as exc:
                if self._proc is not None:
                    self._proc.kill()
                self._stop()
                raise ModelError(f"{self.name}: the query model's worker process did not "
                                 f"answer within {self.timeout:.0f} s") from exc
            except (OSError, EOFError, pickle.UnpicklingError) as exc:
                self._stop()  # the next request starts a new worker
                raise ModelError(f"{self.name}: the query model's worker process ended"
                                 f"{self._last_words}") from exc
        if status != "ok":
            raise ModelError(str(value))
        vectors: Vectors = np.asarray(value, dtype=np.float32)
        return vectors

    def _answer(self, fd: int) -> Any:
        """The worker's next frame, read straight from its stdout (nothing waits in a
        buffer, so select() sees all there is); TimeoutError past ``timeout``."""
        deadline = time.monotonic() + self.timeout

        def exactly(size: int) -> bytes:
            chunks: list[bytes] = []
            while size:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                    raise TimeoutError
                chunk = os.read(fd, min(size, 1 << 20))
                if not chunk:
                    raise EOFError
                chunks.append(chunk)
                size -= len(chunk)
            return b"".join(chunks)

        return read_frame(exactly)

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.stdin is not None:
                with suppress(OSError):
                    self._proc.stdin.close()  # the worker's signal to end
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._stderr is not None:
            self._stderr.seek(0)
            lines = self._stderr.read()[-4096:].decode("utf-8", "replace").strip().splitlines()
            self._last_words = f" ({lines[-1].strip()})" if lines else ""
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        """End the worker (it finishes the request in hand first)."""
        with self._lock:
            self._stop()


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The worker: build the model, then answer requests until stdin ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the daemon, which ends us
    exactly = stream_reader(stdin)
    try:
        factory = read_frame(exactly)
    except EOFError:
        return
    model: Embedder = factory()
    while True:
        try:
            texts, role = read_frame(exactly)
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("ok", model.embed_texts(texts, role))
        except Exception as exc:  # the caller hears of it; the worker carries on
            answer = ("error", f"{model.name}: {type(exc).__name__}: {exc}")
        write_frame(stdout, answer)


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
