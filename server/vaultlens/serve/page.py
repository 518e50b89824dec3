"""The search page at ``/``: static files from ``web/``, no build step, nothing from a CDN.

The page holds no data and needs no token to load; it signs in with the token from the
address's fragment and calls the API with it. Its headers forbid inline script, framing and
MIME sniffing. The icon is public too, so a browser's own request for ``/favicon.ico`` is not
a 401 in the console.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from vaultlens.errors import NotFound
from vaultlens.search.searcher import MAX_QUERY_CHARS

WEB = Path(__file__).with_name("web")
ASSETS = {"app.js": "text/javascript", "api.js": "text/javascript",
          "render.js": "text/javascript", "search.js": "text/javascript",
          "status.js": "text/javascript", "style.css": "text/css",
          "icon.svg": "image/svg+xml"}
CSP = ("default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
# the page cuts a long query where a search would (search/searcher.py), before it sends it:
# the one number lives there, and the page reads it from a <meta> in index.html
_LIMIT_MARK = b"{{max_query_chars}}"


async def index(request: web.Request) -> web.Response:
    html = (WEB / "index.html").read_bytes().replace(_LIMIT_MARK, str(MAX_QUERY_CHARS).encode())
    return web.Response(body=html, content_type="text/html", charset="utf-8", headers=HEADERS)


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:  # a fixed list: no path from a request ever reaches the disk
        raise NotFound(f"no page asset {name!r}")
    kind = ASSETS[name]
    return web.Response(body=(WEB / name).read_bytes(), content_type=kind,
                        charset=None if kind.startswith("image/") else "utf-8",
                        headers=HEADERS)


async def favicon(request: web.Request) -> web.Response:
    return web.Response(body=(WEB / "icon.svg").read_bytes(), content_type="image/svg+xml",
                        headers=HEADERS)
