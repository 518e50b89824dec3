"""A text model in a process of its own: the daemon's query model.

A search holds Python's GIL for most of its work (ranking, hits, snippets, usearch), and a
query's forward pass lets go of it a hundred times, once for each numpy product, then waits to
get it back. With four search threads in one process, two cores stayed a third idle at eight
searches at once: the threads took turns for the GIL. In a process of its own the model has a
core and a GIL to itself; the calling thread waits on a pipe, holding nothing.

Protocol: frames of an 8-byte length and a pickle. The daemon sends the model's factory (a
picklable callable that builds it), then each request ``(seq, texts, role)``; the answer is
``(seq, "ok", vectors)`` or ``(seq, "error", reason)`` with the request's ``seq``. The worker
reads and writes frames on private copies of the stdin and stdout it was started with, and a
library that prints or reads reaches /dev/null and stderr instead (children.private_streams).
An answer that is not exactly what was asked for (wrong ``seq``, wrong shape, not a frame)
means the stream cannot be trusted: the worker is killed, the request fails with ModelError,
and the next one starts a new worker. Pickle is safe here: both ends are this program, and the
pipe is private. The worker ends when its request stream closes (the daemon stopped or died).
"""

from __future__ import annotations

import itertools
import os
import pickle
import select
import signal
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import IO, Any

import numpy as np

from vaultlens.children import child_command, private_streams
from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors

_LENGTH = struct.Struct("<Q")
# an answer's frame, at most: a batch of vectors is well under a megabyte, so a larger length
# is garbage and is refused at once instead of waiting for bytes that never come
MAX_ANSWER = 64 * 2**20


class BadFrame(Exception):
    """A frame that is not what the other end sends: the stream is out of step."""


def write_frame(stream: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def read_frame(exactly: Callable[[int], bytes], most: int | None = None) -> Any:
    """The next frame's value; ``exactly(n)`` reads n bytes, or raises EOFError when the
    stream ends first. BadFrame for a length over ``most`` or bytes that do not unpickle."""
    size = _LENGTH.unpack(exactly(_LENGTH.size))[0]
    if most is not None and size > most:
        raise BadFrame(f"a frame of {size} bytes")
    data = exactly(size)
    try:
        return pickle.loads(data)  # our own worker, over a private pipe
    except Exception as exc:  # garbage can fail in any of pickle's ways
        raise BadFrame(f"a frame that does not unpickle ({type(exc).__name__})") from exc


def stream_reader(stream: IO[bytes]) -> Callable[[int], bytes]:
    """``exactly`` over a blocking stream (the worker's requests)."""
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
        self._seq = itertools.count(1)  # each request's number, echoed in its answer
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
                child_command("vaultlens.embedders.process"), stdin=subprocess.PIPE,
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
            seq = next(self._seq)
            try:
                proc = self._start()
                assert proc.stdin is not None and proc.stdout is not None
                write_frame(proc.stdin, (seq, [item.text or "" for item in inputs], role))
                return self._check(self._answer(proc.stdout.fileno()), seq, len(inputs))
            except TimeoutError as exc:
                self._kill()
                raise ModelError(f"{self.name}: the query model's worker process did not "
                                 f"answer within {self.timeout:.0f} s") from exc
            except BadFrame as exc:
                self._kill()  # whatever else is in the pipe is out of step too
                raise ModelError(f"{self.name}: the query model's worker process answered "
                                 f"out of step ({exc}); it is restarted") from exc
            except (OSError, EOFError) as exc:
                self._stop()  # the next request starts a new worker
                raise ModelError(f"{self.name}: the query model's worker process ended"
                                 f"{self._last_words}") from exc

    def _check(self, answer: Any, seq: int, count: int) -> Vectors:
        """The vectors in ``answer`` if it answers request ``seq`` of ``count`` texts;
        ModelError for the model's own failure; BadFrame for anything else."""
        if not (isinstance(answer, tuple) and len(answer) == 3):
            raise BadFrame(f"not an answer: {type(answer).__name__}")
        got, status, value = answer
        if type(got) is not int or got != seq:
            raise BadFrame(f"the answer to request {got!r}, not to {seq}")
        if status == "error":
            raise ModelError(str(value))  # the worker carries on: no restart
        if status != "ok":
            raise BadFrame(f"an answer of status {status!r}")
        try:
            vectors = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise BadFrame("vectors that are not numbers") from exc
        if vectors.shape != (count, self.dimension):
            raise BadFrame(f"vectors of shape {vectors.shape}, not {(count, self.dimension)}")
        return vectors

    def _answer(self, fd: int) -> Any:
        """The worker's next frame, read straight from its pipe (nothing waits in a
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

        return read_frame(exactly, MAX_ANSWER)

    def _kill(self) -> None:
        """End a worker that cannot be trusted to finish (stuck, or out of step)."""
        if self._proc is not None:
            self._proc.kill()
        self._stop()

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


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker: build the model, then answer requests until their stream ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the daemon, which ends us
    exactly = stream_reader(requests)
    try:
        factory = read_frame(exactly)
    except EOFError:
        return
    model: Embedder = factory()
    while True:
        try:
            seq, texts, role = read_frame(exactly)
        except EOFError:
            return
        try:
            answer: tuple[int, str, Any] = (seq, "ok", model.embed_texts(texts, role))
        except Exception as exc:  # the caller hears of it; the worker carries on
            answer = (seq, "error", f"{model.name}: {type(exc).__name__}: {exc}")
        write_frame(answers, answer)


if __name__ == "__main__":
    serve(*private_streams())
