"""A daemon proves it holds this vault's token before anyone sends the token to it.

``daemon.json`` names a port, but whatever listens there now may not be the daemon that wrote
it (it exited, and another program took the port). So a client asks ``/api/health`` with a
fresh random nonce; our daemon answers with an HMAC of the nonce under the token, which only a
holder of the token can make. The client checks it with its own copy and only then sends the
token (an ``Authorization`` header, or the page's address with ``#token=``). The nonce is
fresh each time, so an answer recorded once proves nothing later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import urllib.error
import urllib.request
from typing import Any

NONCE = re.compile(r"[0-9a-f]{32,128}")
CONTEXT = b"vaultlens daemon proof\0"  # the HMAC proves this and nothing else
# straight to 127.0.0.1, never through a proxy named in the environment
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fresh_nonce() -> str:
    return secrets.token_hex(16)


def proof(token: str, nonce: str) -> str | None:
    """The daemon's answer to ``nonce``; None for a nonce that is not 32 to 128 hex digits."""
    if not NONCE.fullmatch(nonce):
        return None
    return hmac.new(token.encode(), CONTEXT + nonce.encode(), hashlib.sha256).hexdigest()


def proves(health: Any, token: str, nonce: str) -> bool:
    """Whether a health answer carries the proof for ``nonce`` under ``token``."""
    expected = proof(token, nonce)
    got = health.get("proof") if isinstance(health, dict) else None
    return expected is not None and isinstance(got, str) and hmac.compare_digest(got, expected)


def ours(port: int, token: str, timeout: float = 3.0) -> bool:
    """Whether the daemon on 127.0.0.1:``port`` holds ``token`` (blocking; the CLI's check).
    Nothing but the nonce is sent."""
    nonce = fresh_nonce()
    url = f"http://127.0.0.1:{int(port)}/api/health?nonce={nonce}"
    try:
        with LOCAL.open(url, timeout=timeout) as resp:
            answer = json.loads(resp.read(65536))
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return proves(answer, token, nonce)
