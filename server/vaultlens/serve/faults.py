"""The one place where errors become what a client is told: an HTTP status and code for the
API, the message of an MCP tool error for the tools.

The service and the layers under it raise domain errors (``vaultlens.errors`` and the few
others below); neither the views nor the tools translate them. An error not listed here is a
bug: the API answers 500 and the tools a bare failure, and the daemon's log has the trace.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from vaultlens.errors import (
    Forbidden,
    Invalid,
    NotFound,
    Remote,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from vaultlens.search.pictures import PictureError
from vaultlens.search.query import QueryError
from vaultlens.serve.indexing import ReadOnly


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    message: str


# first match wins: a subclass before its base
_TABLE: tuple[tuple[type[Exception], int, str], ...] = (
    (Invalid, 400, "bad_request"),
    (QueryError, 400, "bad_request"),  # a filter that cannot mean anything
    (Unauthorized, 401, "unauthorized"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (TooLarge, 413, "too_large"),
    (Unavailable, 503, "unavailable"),
    (ReadOnly, 503, "unavailable"),  # another process writes this index
    (Remote, 502, "bad_gateway"),
)


def fault_of(exc: BaseException) -> Fault | None:
    """What the client is told of ``exc``; None when it is a bug, not an answer."""
    for kind, status, code in _TABLE:
        if isinstance(exc, kind):
            return Fault(status, code, str(exc))
    if isinstance(exc, PictureError):  # not a picture at all, or one that cannot be had now
        return Fault(404, "not_found", exc.reason) if exc.missing else \
            Fault(503, "unavailable", exc.reason)
    if isinstance(exc, sqlite3.DatabaseError):  # the data dir went wrong: the indexer repairs it
        return Fault(503, "unavailable", f"the index cannot be read now ({exc}); see "
                     "/api/status for what is wrong and what is being done")
    return None


def tool_message(exc: BaseException) -> str | None:
    """The text of the MCP tool error for ``exc``; None when it is a bug."""
    fault = fault_of(exc)
    return None if fault is None else fault.message
