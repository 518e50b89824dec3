"""How this package's own modules run in a child Python: the command line, and the child's
private pipes to the daemon.

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
"""

from __future__ import annotations

import os
import sys
from typing import IO


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
