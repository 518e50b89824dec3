"""The answer pipes of worker children, and framed messages to write into them."""

from __future__ import annotations

import contextlib
import io
import os
import struct
from pathlib import Path

from vaultlens.embedders.process import InWorker
from vaultlens.workers import (
    Worker,
    write_frame,
)


def answer_pipe(worker: Worker) -> Path:
    """The child's end of the pipe its answers come on (whatever descriptor it holds it on)."""
    proc = worker.process
    assert proc is not None and proc.stdout is not None
    pipe = os.fstat(proc.stdout.fileno()).st_ino
    for fd in sorted(Path(f"/proc/{proc.pid}/fd").iterdir()):
        with contextlib.suppress(OSError):
            if os.stat(fd).st_ino == pipe:
                return fd
    raise AssertionError("the child holds no end of its answer pipe")


def framed(*values: object) -> io.BytesIO:
    stream = io.BytesIO()
    for seq, value in enumerate(values, 1):
        write_frame(stream, seq, value)
    stream.seek(0)
    return stream


def query_answer_pipe(worker: InWorker) -> Path:
    """The query worker's end of the pipe its answers come on, to write into as if it were
    the worker."""
    return answer_pipe(worker.child)


def query_framed(data: bytes, seq: int = 2) -> bytes:
    """A frame numbered as the request after the warm-up (the second), unless said."""
    return struct.pack("<QQ", len(data), seq) + data
