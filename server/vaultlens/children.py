"""How this package's own modules run in a child Python: the command line, the child's
private pipes to the daemon, and a child that dies with its parent. (The protocol over those
pipes, restarts and deadlines: workers.py.)

The query worker, the PDF reader and the OCR workers are children started with ``-m``. Plain
``-m`` puts the current directory first on the child's ``sys.path``, and the daemon is often
started from inside the vault (``cd ~/Notes && vaultlens serve --vault .``, an editor starting
``vaultlens mcp`` in its workspace): a ``numpy.py`` there would run as code in the child. ``-P``
(Python 3.11+, the oldest this package supports) leaves the current directory off; the package
is still found where the parent found it (site-packages, an editable install's ``.pth``,
``PYTHONPATH``).

A child that talks to the daemon over its stdin and stdout keeps those pipes to itself: a
library that prints to stdout (or C code writing to fd 1) would put bytes between two answers,
and every later answer would be read as the one before's.

A child the daemon may stop (SIGSTOP) never reads the end of its stdin when the daemon is
SIGKILLed; it asks the kernel to kill it with its parent instead.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import IO, Any

PARENT = "VAULTLENS_WORKER_PARENT"  # the parent's pid, for a child that dies with it


def child_command(module: str, *args: str) -> list[str]:
    """``python -P -m module args...`` with this interpreter."""
    return [sys.executable, "-P", "-m", module, *args]


def private_streams() -> tuple[IO[bytes], IO[bytes]]:
    """In the child, first thing: the daemon's two pipes (stdin, stdout) on descriptors of
    their own, for the protocol alone. Afterwards fd 0 reads /dev/null and fd 1 goes to
    stderr, so ``print``, ``input`` and C code reading or writing the standard streams never
    touch a request or an answer."""
    sys.stdout.flush()
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return requests, answers


def die_with_parent() -> None:
    """SIGKILL this child when its parent dies, stopped or not (Linux; elsewhere the end of its
    requests does it for a running child); and end now if the parent is already gone."""
    parent = int(os.environ.pop(PARENT, "0") or 0)
    if not parent:
        return
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)


class Spawner:
    """Starts children from one thread that lives as long as its owner.

    A child that dies with its parent (PR_SET_PDEATHSIG) is killed by Linux when the *thread*
    that forked it ends, not the process: children started from short-lived threads (the
    indexer's reading threads end with each run) are started here instead.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue())
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._run, name="vaultlens-spawner", daemon=True).start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            make, done = job
            try:
                done.set_result(make())
            except BaseException as exc:  # the caller hears of it
                done.set_exception(exc)

    def popen(self, make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._closed:  # closing: start it here (tied to this thread)
                return make()
            done: Future[subprocess.Popen[bytes]] = Future()
            self._jobs.put((make, done))
        return done.result()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._jobs.put(None)
