"""The route table: every view, registered on the app and described in the OpenAPI document."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from aiohttp import web

from vaultlens.search.hits import Hit
from vaultlens.search.pack import MAX_IMAGE_SIDE
from vaultlens.serve.api import Route, openapi
from vaultlens.serve.daemon import DAEMON
from vaultlens.serve.mcp_http import mcp_view
from vaultlens.serve.page import asset, favicon, index
from vaultlens.serve.reading import context, image, read
from vaultlens.serve.requests import (
    ContextRequest,
    ReadRequest,
    ReindexRequest,
    SearchRequest,
    SimilarRequest,
    fields_of,
)
from vaultlens.serve.views import health, item, reindex, search, similar, status, thumbnail

_VERSION = {"const": "2.0"}
_ID = {"type": ["integer", "string"]}
# What the MCP SDK takes as a JSON-RPC message (mcp_types.jsonrpc), no more and no less, so
# that a client or a fuzzer reading this document sends what is accepted: a request or a
# notification (the SDK reads a request with an odd id as a notification), a response, or an
# error. Fields past these are ignored; one message a request, never a batch.
JSONRPC_MESSAGE: dict[str, Any] = {"anyOf": [
    {"type": "object", "required": ["jsonrpc", "method"],
     "properties": {"jsonrpc": _VERSION, "method": {"type": "string"},
                    "params": {"type": ["object", "null"]}}},
    {"type": "object", "required": ["jsonrpc", "id", "result"],
     "properties": {"jsonrpc": _VERSION, "id": _ID, "result": {"type": "object"}}},
    {"type": "object", "required": ["jsonrpc", "id", "error"],
     "properties": {"jsonrpc": _VERSION, "id": {"type": ["integer", "string", "null"]},
                    "error": {"type": "object", "required": ["code", "message"],
                              "properties": {"code": {"type": "integer"},
                                             "message": {"type": "string"}}}}},
]}

# how the MCP SDK refuses a message it cannot read (HTTP 400)
JSONRPC_ERROR: dict[str, Any] = {
    "type": "object", "required": ["jsonrpc", "error"],
    "properties": {"jsonrpc": _VERSION, "id": {"type": ["integer", "string", "null"]},
                   "error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "integer"},
                                            "message": {"type": "string"}}}}}


async def openapi_doc(request: web.Request) -> web.Response:
    # this daemon's own document: a text model refuses every search by picture, so the
    # document does not offer one
    sees = request.app[DAEMON].workspace.embedder.supports_images
    hidden = frozenset() if sees else frozenset({"image"})
    return web.json_response(openapi(ROUTES, version("vaultlens"), hidden))


ROUTES = [
    Route("GET", "/", index, "The search page (signs in with #token=…; no token to load it)",
          public=True, produces="text/html"),
    Route("GET", "/web/{name}", asset, "The search page's script and style", public=True,
          produces="text/javascript"),
    Route("GET", "/favicon.ico", favicon, "The page's icon (SVG)", public=True,
          produces="image/svg+xml"),
    Route("GET", "/api/health", health, "Is the daemon up? (no token needed). With "
          "?nonce= (32 to 128 hex digits) it adds proof: HMAC-SHA256 of the nonce under the "
          "token, so a client can check the daemon before sending the token", public=True),
    Route("GET", "/api/status", status, "Model, visual search, counts, queue, progress, "
          "failures with reasons"),
    Route("POST", "/api/search", search, "Search notes, images and PDF pages",
          fields_of(SearchRequest), results=Hit),
    Route("POST", "/api/context", context, "A context pack for a model: passages, and "
          "screenshots and PDF pages with the paragraphs that embed them, within a token "
          "budget", fields_of(ContextRequest)),
    Route("POST", "/api/similar", similar, "Items similar to a vault file, or to an uploaded "
          "image (multipart field 'image')", fields_of(SimilarRequest), results=Hit),
    Route("POST", "/api/read", read, "A note's lines, or an image or PDF page with its "
          "picture and the paragraphs that embed it", fields_of(ReadRequest)),
    Route("GET", "/api/items/{id}", item, "An item: text, place, and its links with context"),
    Route("GET", "/api/items/{id}/thumbnail", thumbnail, "A small WebP of an image or page",
          produces="image/webp"),
    Route("GET", "/api/items/{id}/image", image, "An image or rendered PDF page, downscaled "
          f"(query max_px, default {MAX_IMAGE_SIDE}; at most 512 KiB)", produces="image/*"),
    Route("POST", "/api/reindex", reindex, "Index a vault path now, ahead of the backlog",
          fields_of(ReindexRequest), status=202),
    Route("GET", "/api/openapi.json", openapi_doc, "This API, described in OpenAPI 3.1"),
    Route("POST", "/mcp", mcp_view, "MCP over Streamable HTTP (JSON-RPC, stateless, JSON "
          "answers): tools search, context, read, similar and status; see tools/list",
          body_schema=JSONRPC_MESSAGE, errors=JSONRPC_ERROR,
          also={202: "a notification, response or error taken (nothing to answer)"}),
]
