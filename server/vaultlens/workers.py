"""One toolkit for the package's worker processes (the query model, the OCR workers, the PDF
reader): starting a child, framing its requests and answers, deadlines, restarts and the
child's last words. The payload modules say only what a request carries and what the child
does with it.

Protocol, both ways: frames of a 16-byte header (the payload's length, the request's number)
and a pickle. The parent's first frame (number 0) is the child's ``hello``: what it builds
itself from (a model's factory, OCR's settings); each request after it has the next number,
and its answer carries the same number and is ``("ok", value)`` or ``("error", reason)``. An
answer that is not exactly that (another number, another shape, not a frame, a length past
the cap) means the stream cannot be trusted: the child is killed and the next request starts
a new one. The pipes are private to the two ends (children.private_streams: a library
printing to stdout in the child reaches stderr instead).

The child reads the parent's frames with plain pickle: the parent is the trusted side. The
parent reads the child's answers with AnswerUnpickler, which names nothing but what real
answers contain: a child parses hostile files (images, PDFs), and one that a crafted file took
over must not run code in the daemon through a crafted pickle.

The child ends when its request stream closes (the parent stopped, or died). A child that a
parent may stop (SIGSTOP) never sees that end, so it can also ask the kernel to kill it when
the parent dies (``die_with_parent``). Its stderr goes to a file: a pipe nobody reads would
fill and block the child, and a child that dies must still say why (its last words).
"""

from __future__ import annotations

import io
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
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, TypeVar

from vaultlens.children import PARENT, Spawner, child_command, die_with_parent, private_streams
from vaultlens.errors import VaultlensError

T = TypeVar("T")
_HEADER = struct.Struct("<QQ")  # payload length, request number
# an answer's frame, at most: a larger length is garbage and is refused at once instead of
# waiting for bytes that never come
MAX_FRAME = 64 * 2**20
POLL = 0.25  # seconds between looks at a child's CPU time while it works


class WorkerError(VaultlensError):
    """A request the child did not answer; the payload module words it for its callers."""


class BadFrame(WorkerError):
    """A frame that is not what the other end sends: the stream is out of step."""


class WorkerDied(WorkerError):
    """The child ended (or its pipe broke) before it answered."""

    def __init__(self, returncode: int | None, tail: str) -> None:
        self.returncode = returncode
        self.tail = tail  # the end of what it wrote to stderr
        super().__init__(f"the worker ended (code {returncode}) {self.last_words}".strip())

    @property
    def last_words(self) -> str:
        """The last line it wrote to stderr: usually the reason it died; "" when silent."""
        lines = self.tail.strip().splitlines()
        return lines[-1].strip() if lines else ""


class WorkerTimeout(WorkerError):
    """The child took past its deadline; it has been killed."""


class Declined(Exception):
    """Raised by a child's handler: the request fails with this reason, and the child carries
    on. In the parent, the reason as the child gave it."""


def write_frame(stream: IO[bytes], seq: int, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data), seq) + data)
    stream.flush()


# What a child's answer may name besides pickle's own opcodes (which carry str, bytes, int,
# float, bool, None, tuple, list, dict, set): a numpy array of numbers, under numpy 2's and
# numpy 1's names. Calling these builds an array or a dtype and nothing else; an array of
# objects brings its items through this same gate, and _frombuffer refuses object dtypes.
ANSWER_GLOBALS = frozenset({
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
})


class AnswerUnpickler(pickle.Unpickler):
    """Unpickles a child's answer: BadFrame for any class or function outside
    ANSWER_GLOBALS, before it is imported or called."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ANSWER_GLOBALS:
            raise BadFrame(f"an answer naming {module}.{name}")
        return super().find_class(module, name)


def read_frame(exactly: Callable[[int], bytes], most: int | None = None,
               trusted: bool = False) -> tuple[int, Any]:
    """The next frame's number and value; ``exactly(n)`` reads n bytes, or raises EOFError when
    the stream ends first. BadFrame for a length over ``most`` or bytes that do not unpickle.
    ``trusted``: the parent's frames, unpickled as they are; otherwise a child's answer, which
    may name only ANSWER_GLOBALS."""
    size, seq = _HEADER.unpack(exactly(_HEADER.size))
    if most is not None and size > most:
        raise BadFrame(f"a frame of {size} bytes")
    data = exactly(size)
    try:
        if trusted:
            return seq, pickle.loads(data)
        return seq, AnswerUnpickler(io.BytesIO(data)).load()
    except BadFrame:
        raise
    except Exception as exc:  # garbage can fail in any of pickle's ways
        raise BadFrame(f"a frame that does not unpickle ({type(exc).__name__})") from exc


def stream_reader(stream: IO[bytes]) -> Callable[[int], bytes]:
    """``exactly`` over a blocking stream (the child's requests)."""
    def exactly(size: int) -> bytes:
        data = stream.read(size)
        if len(data) < size:
            raise EOFError
        return data

    return exactly


def deadline_reader(fd: int, left: Callable[[], float]) -> Callable[[int], bytes]:
    """``exactly`` straight from a pipe (nothing waits in a buffer, so select() sees all there
    is); ``left()`` is how long it may wait now, and WorkerTimeout once it is not positive."""
    def exactly(size: int) -> bytes:
        chunks: list[bytes] = []
        while size:
            wait = left()
            if wait <= 0:
                raise WorkerTimeout
            if not select.select([fd], [], [], wait)[0]:
                continue  # ask ``left`` again: it decides when the time is up
            chunk = os.read(fd, min(size, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    return exactly


class Deadline(Protocol):
    def begin(self, pid: int) -> Callable[[], float]:
        """For a request just sent to child ``pid``: a function saying how many seconds the
        answer may still be waited for at once (zero or less: the time is up)."""


@dataclass(frozen=True)
class WallClock:
    """``seconds`` of wall time from the request."""

    seconds: float

    def begin(self, pid: int) -> Callable[[], float]:
        end = time.monotonic() + self.seconds
        return lambda: end - time.monotonic()


def cpu_seconds(pid: int) -> float | None:
    """CPU time a process has used, all its threads (Linux); None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class CpuClock:
    """``budget`` seconds of the child's own CPU time (a child at low priority on a busy
    machine may get a tenth of a core), but never past ``cap`` seconds of wall time (a child
    getting no CPU at all is stuck); ``fallback`` seconds of wall time where CPU time cannot
    be read."""

    budget: float
    cap: float
    fallback: float

    def begin(self, pid: int) -> Callable[[], float]:
        start, cpu_start = time.monotonic(), cpu_seconds(pid)

        def left() -> float:
            wall = time.monotonic() - start
            cpu = cpu_seconds(pid)
            if cpu is None or cpu_start is None:
                return self.fallback - wall
            if cpu - cpu_start > self.budget:
                return 0.0
            return min(POLL, self.cap - wall)

        return left


@dataclass(frozen=True)
class Recipe:
    """How to start a child: ``python -P -m module``, with ``env`` over this process's
    environment, and ``hello`` as its first frame."""

    module: str
    hello: object = None
    env: Mapping[str, str] = field(default_factory=dict)
    die_with_parent: bool = False  # start it from a thread that outlives it (Spawner)
    most: int = MAX_FRAME  # the largest answer taken


class Worker:
    """The parent's side of one child: started on the first request (or ``start``), one
    request at a time, started again after it died, was killed, or answered out of step."""

    def __init__(self, recipe: Recipe, spawner: Spawner | None = None) -> None:
        self.recipe = recipe
        self.spawner = spawner  # None: started from the calling thread
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._seq = itertools.count(1)  # each request's number, echoed in its answer
        self._lock = threading.Lock()  # one request at a time on the pipe

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        with self._lock:
            self._ensure()

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop()  # one that ended between requests: its pipes and stderr file closed
        self._stderr = stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives with the child
        env = {**os.environ, **self.recipe.env}
        if self.recipe.die_with_parent:
            env[PARENT] = str(os.getpid())
        command = child_command(self.recipe.module)

        def make() -> subprocess.Popen[bytes]:
            return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=stderr, env=env)

        self._proc = proc = self.spawner.popen(make) if self.spawner else make()
        assert proc.stdin is not None
        with suppress(OSError):  # it died at once: the request hears of it, with its words
            write_frame(proc.stdin, 0, self.recipe.hello)
        return proc

    def request(self, value: object, deadline: Deadline,
                check: Callable[[Any], T] = lambda value: value) -> T:
        """The child's answer to ``value``, passed through ``check`` (which raises BadFrame for
        an answer that cannot be this request's). Declined: the child's own failure, it carries
        on. WorkerTimeout, BadFrame: the child is killed. WorkerDied: it ended; its last words
        are in the exception. The next request starts a new child after any of the three."""
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None and proc.stdout is not None
            seq = next(self._seq)
            try:
                write_frame(proc.stdin, seq, value)
                exactly = deadline_reader(proc.stdout.fileno(), deadline.begin(proc.pid))
                got, answer = read_frame(exactly, self.recipe.most)
                if got != seq:
                    raise BadFrame(f"the answer to request {got}, not to {seq}")
                return check(self._unpack(answer))
            except (WorkerTimeout, BadFrame):
                self.kill()  # stuck, or whatever else is in the pipe is out of step too
                raise
            except (OSError, EOFError) as exc:
                raise self._stop() from exc

    @staticmethod
    def _unpack(answer: Any) -> Any:
        if not (isinstance(answer, tuple) and len(answer) == 2):
            raise BadFrame(f"not an answer: {type(answer).__name__}")
        status, value = answer
        if status == "error":
            raise Declined(str(value))
        if status != "ok":
            raise BadFrame(f"an answer of status {status!r}")
        return value

    def kill(self) -> None:
        """End the child now, whatever it is doing (no lock: a read in progress fails)."""
        proc = self._proc
        if proc is not None:
            with suppress(OSError):
                proc.kill()
        self._stop()

    def _stop(self, grace: float = 5.0) -> WorkerDied:
        """End the child: its request stream closed (its signal to end), killed after
        ``grace`` seconds; what it said and how it ended, for the caller's error."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            if proc.stdin is not None:
                with suppress(OSError):
                    proc.stdin.close()
            try:
                code = proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        return WorkerDied(code, self._reap())

    def _reap(self) -> str:
        """The end of a finished child's stderr, and its file closed."""
        stderr, self._stderr = self._stderr, None
        if stderr is None:
            return ""
        with suppress(OSError, ValueError):
            stderr.seek(0, 2)
            stderr.seek(max(0, stderr.tell() - 4096))
            tail = stderr.read().decode("utf-8", "replace")
            stderr.close()
            return tail
        return ""

    def close(self) -> None:
        """End the child once the request in hand is answered."""
        with self._lock:
            self._stop()


# the child's side


Handler = Callable[[Any], Any]


def serve(setup: Callable[[Any], Handler], requests: IO[bytes] | None = None,
          answers: IO[bytes] | None = None) -> None:
    """The child: ``setup(hello)`` builds the handler, which then answers each request until
    their stream ends. A handler raising Declined fails that request alone; anything else it
    raises ends the child, and its traceback is its last words. Without streams: the child's
    own, made private first thing."""
    if requests is None or answers is None:
        requests, answers = private_streams()
        die_with_parent()
        # Ctrl-C in a terminal reaches the whole process group: the parent stops, and ends us
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    exactly = stream_reader(requests)
    try:
        _, hello = read_frame(exactly, trusted=True)  # the parent's: trusted
    except EOFError:
        return
    handle = setup(hello)
    while True:
        try:
            seq, request = read_frame(exactly, trusted=True)
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("ok", handle(request))
        except Declined as exc:
            answer = ("error", str(exc))
        write_frame(answers, seq, answer)
