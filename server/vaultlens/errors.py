"""The root of vaultlens's own errors, and the outcomes a request can have besides an answer.

Every error a layer raises on purpose (a bad filter, a model that failed, an index that
cannot be written) derives from ``VaultlensError``. The request outcomes below say what went
wrong in the caller's terms, not a transport's: ``serve/faults.py`` alone maps them (and the
other domain errors) to an HTTP status and code, and to an MCP tool error.
"""

from __future__ import annotations


class VaultlensError(Exception):
    """Something vaultlens says went wrong; ``str()`` of it is meant for the user."""

    @property
    def message(self) -> str:
        return str(self)


class Invalid(VaultlensError):
    """The request cannot be answered as asked: a bad field, value or combination."""


class Forbidden(VaultlensError):
    """The request reaches past what it may: out of the vault, or an excluded path."""


class NotFound(VaultlensError):
    """What the request names is not there (not indexed, no such item)."""


class TooLarge(VaultlensError):
    """The request is bigger than the daemon takes."""


class Unavailable(VaultlensError):
    """The request is well formed but cannot be answered now (a model loading or failed)."""


class Unauthorized(VaultlensError):
    """The caller did not prove it holds the token."""


class Remote(VaultlensError):
    """Another vaultlens process (a daemon asked over HTTP) refused, or did not answer."""
