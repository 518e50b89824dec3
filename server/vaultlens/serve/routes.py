"""The route table: every view, registered on the app and described in the OpenAPI document."""

from __future__ import annotations

from importlib.metadata import version

from aiohttp import web

from vaultlens.search.hits import Hit
from vaultlens.serve.api import Route, openapi
from vaultlens.serve.mcp_http import mcp_view
from vaultlens.serve.page import asset, index
from vaultlens.serve.reading import CONTEXT_FIELDS, READ_FIELDS, context, image, read
from vaultlens.serve.views import (
    REINDEX_FIELDS,
    SEARCH_FIELDS,
    SIMILAR_FIELDS,
    health,
    item,
    reindex,
    search,
    similar,
    status,
    thumbnail,
)


async def openapi_doc(request: web.Request) -> web.Response:
    return web.json_response(openapi(ROUTES, version("vaultlens")))


ROUTES = [
    Route("GET", "/", index, "The search page (signs in with #token=…; no token to load it)",
          public=True, produces="text/html"),
    Route("GET", "/web/{name}", asset, "The search page's script and style", public=True,
          produces="text/javascript"),
    Route("GET", "/api/health", health, "Is the daemon up? (no token needed)", public=True),
    Route("GET", "/api/status", status, "Model, visual search, counts, queue, progress, "
          "failures with reasons"),
    Route("POST", "/api/search", search, "Search notes, images and PDF pages", SEARCH_FIELDS,
          results=Hit),
    Route("POST", "/api/context", context, "A context pack for a model: passages, and "
          "screenshots and PDF pages with the paragraphs that embed them, within a token "
          "budget", CONTEXT_FIELDS),
    Route("POST", "/api/similar", similar, "Items similar to a vault file, or to an uploaded "
          "image (multipart field 'image')", SIMILAR_FIELDS, results=Hit),
    Route("POST", "/api/read", read, "A note's lines, or an image or PDF page with its "
          "picture and the paragraphs that embed it", READ_FIELDS),
    Route("GET", "/api/items/{id}", item, "An item: text, place, and its links with context"),
    Route("GET", "/api/items/{id}/thumbnail", thumbnail, "A small WebP of an image or page",
          produces="image/webp"),
    Route("GET", "/api/items/{id}/image", image, "An image or rendered PDF page, downscaled "
          "(query max_px, default 1568; at most 512 KiB)", produces="image/*"),
    Route("POST", "/api/reindex", reindex, "Index a vault path now, ahead of the backlog",
          REINDEX_FIELDS, status=202),
    Route("GET", "/api/openapi.json", openapi_doc, "This API, described in OpenAPI 3.1"),
    Route("POST", "/mcp", mcp_view, "MCP over Streamable HTTP (JSON-RPC, stateless, JSON "
          "answers): tools search, context, read, similar and status; see tools/list"),
]
