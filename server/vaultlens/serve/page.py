"""The search page at ``/``: static files from ``web/``, no build step, nothing from a CDN.

The page holds no data and needs no token to load; it signs in with the token from the
address's fragment and calls the API with it. Its headers forbid inline script, framing and
MIME sniffing.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from vaultlens.errors import NotFound

WEB = Path(__file__).with_name("web")
ASSETS = {"app.js": "text/javascript", "api.js": "text/javascript",
          "render.js": "text/javascript", "style.css": "text/css"}
CSP = ("default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


async def index(request: web.Request) -> web.Response:
    return web.Response(body=(WEB / "index.html").read_bytes(), content_type="text/html",
                        charset="utf-8", headers=HEADERS)


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:  # a fixed list: no path from a request ever reaches the disk
        raise NotFound(f"no page asset {name!r}")
    return web.Response(body=(WEB / name).read_bytes(), content_type=ASSETS[name],
                        charset="utf-8", headers=HEADERS)
