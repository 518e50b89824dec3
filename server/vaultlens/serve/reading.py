"""The views that hand a model what it reads: context packs, pictures, and a note's lines.

``/api/context`` searches, then packs the hits within a token budget (``search/pack.py``);
``/api/items/{id}/image`` sends a picture downscaled; ``/api/read`` returns a note's lines, or
an image or PDF page with the paragraphs that embed it. The MCP tools call the same payload
functions, so both ways in answer alike.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from vaultlens.extract.images import ImageError, encode_for_model
from vaultlens.search.hits import Hit
from vaultlens.search.pack import PackOptions
from vaultlens.search.pictures import MAX_IMAGE_BYTES, PictureError
from vaultlens.serve.api import ApiError, Field, NotFound, Unavailable, confine, read_json
from vaultlens.serve.service import DAEMON, Daemon
from vaultlens.serve.views import (
    SEARCH_FIELDS,
    in_search_thread,
    item_id_of,
    ok,
    run_search,
    search_filters,
)

CONTEXT_CANDIDATES = 20  # hits considered for a pack; the budget decides how many go in
MAX_SIDE = 1568
MAX_READ_LINES = 400
CONTEXT_FIELDS = {
    **{name: f for name, f in SEARCH_FIELDS.items()
       if name not in ("k", "offset", "image", "literal")},
    "budget_tokens": Field(int, description="the most tokens the pack may cost (default 4000)",
                           minimum=100, maximum=200_000),
    "max_images": Field(int, description="the most pictures in the pack (default 4)",
                        minimum=0, maximum=16),
    "image_max_px": Field(int, description="the longest side of a picture (default 1568)",
                          minimum=64, maximum=MAX_SIDE),
    "inline": Field(bool, description="pictures as base64 in the pack, not as URLs"),
}
READ_FIELDS = {
    "path": Field(str, required=True, description="a vault note, image or PDF",
                  min_length=1),
    "start_line": Field(int, description="a note's first line (1-based, default 1)",
                        minimum=1),
    "end_line": Field(int, description=f"a note's last line (default: {MAX_READ_LINES} "
                      "lines on)", minimum=1),
    "page": Field(int, description="a PDF's page (default 1)", minimum=1),
    "max_px": Field(int, description="a picture's longest side (default 1568)", minimum=64,
                    maximum=MAX_SIDE),
}


def _context(daemon: Daemon, body: dict[str, Any], filters: Any, ready: bool
             ) -> tuple[dict[str, Any], bool]:
    """The pack, and whether vectors ranked its candidates."""
    hits, ranked_by_vectors = run_search(daemon, {**body, "k": CONTEXT_CANDIDATES}, filters,
                                         ready)
    options = PackOptions(body.get("budget_tokens", 4000), body.get("max_images", 4),
                          body.get("image_max_px", MAX_SIDE), bool(body.get("inline")))
    return daemon.packer().build(body["query"], hits, options).to_json(), ranked_by_vectors


async def context_payload(daemon: Daemon, body: dict[str, Any]) -> dict[str, Any]:
    filters = search_filters(daemon, body)
    start = time.perf_counter()
    ready = daemon.ready.is_set()
    pack, ranked_by_vectors = await in_search_thread(daemon, _context, daemon, body, filters,
                                                     ready)
    return {"pack": pack, "partial": not ranked_by_vectors,
            "took_ms": round(1000 * (time.perf_counter() - start), 1)}


async def context(request: web.Request) -> web.Response:
    """Passages and pictures for a model, within a token budget, with what was left out."""
    body = await read_json(request, CONTEXT_FIELDS)
    return ok(await context_payload(request.app[DAEMON], body))


def _image(daemon: Daemon, item_id: int, max_px: int) -> tuple[bytes, str]:
    try:
        picture = daemon.pictures.load(item_id)
        encoded = encode_for_model(picture, max_px, MAX_IMAGE_BYTES)
    except PictureError as exc:
        if exc.missing:
            raise NotFound(exc.reason) from exc
        raise Unavailable(exc.reason) from exc
    except ImageError as exc:
        raise Unavailable(f"item {item_id}: {exc.reason}") from exc
    return encoded.data, encoded.mime


async def image(request: web.Request) -> web.Response:
    raw = request.query.get("max_px", str(MAX_SIDE))
    if not raw.isdigit() or not 64 <= int(raw) <= MAX_SIDE:
        raise ApiError(f"max_px must be a number from 64 to {MAX_SIDE}")
    daemon = request.app[DAEMON]
    data, mime = await in_search_thread(daemon, _image, daemon, item_id_of(request), int(raw))
    return web.Response(body=data, content_type=mime,
                        headers={"Cache-Control": "private, max-age=300"})


def _read(daemon: Daemon, body: dict[str, Any]) -> dict[str, Any]:
    catalog = daemon.searcher.catalog
    path = body["path"]
    row = catalog.conn.execute("SELECT id, kind FROM files WHERE path = ?", (path,)).fetchone()
    if row is None:
        raise NotFound(f"{path} is not in the index (not a note, image or PDF of this vault, "
                       "or not indexed yet)")
    if row["kind"] == "note":
        return _read_note(daemon, path, body)
    page = body.get("page", 1) if row["kind"] == "pdf" else None
    item = catalog.conn.execute(
        "SELECT id FROM items WHERE file_id = ? AND (page IS ? OR ? IS NULL) ORDER BY page"
        " LIMIT 1", (row["id"], page, page)).fetchone()
    if item is None:
        where = f" page {page}" if page else ""
        raise NotFound(f"{path}{where} has no indexed item")
    hit: Hit | None = daemon.searcher.hit(int(item["id"]), 0.0, "")
    if hit is None:
        raise NotFound(f"{path} was removed from the index meanwhile")
    options = PackOptions(200_000, 1, body.get("max_px", MAX_SIDE), inline=True)
    pack = daemon.packer().build(path, [hit], options)
    if not pack.entries:
        raise Unavailable(f"{path}: {pack.left_out[0]['reason']}")
    return {"kind": hit.kind, "entry": pack.entries[0].to_json(),
            "token_rule": pack.token_rule}


def _read_note(daemon: Daemon, path: str, body: dict[str, Any]) -> dict[str, Any]:
    start = body.get("start_line", 1)
    end = body.get("end_line", start + MAX_READ_LINES - 1)
    if end < start:
        raise ApiError("end_line must not be before start_line")
    end = min(end, start + MAX_READ_LINES - 1)
    try:
        raw = (daemon.workspace.config.vault / path).read_bytes()
    except OSError as exc:
        raise NotFound(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    lines = raw.decode("utf-8", errors="replace").splitlines()
    chosen = lines[start - 1 : end]
    return {"kind": "note", "path": path, "start_line": start,
            "end_line": start + len(chosen) - 1, "total_lines": len(lines),
            "text": "\n".join(chosen)}


async def read_payload(daemon: Daemon, body: dict[str, Any]) -> dict[str, Any]:
    body["path"] = confine(str(daemon.workspace.config.vault), body["path"])
    return {"read": await in_search_thread(daemon, _read, daemon, body)}


async def read(request: web.Request) -> web.Response:
    """A note's lines, or an image or PDF page with its picture and where it is embedded."""
    body = await read_json(request, READ_FIELDS)
    return ok(await read_payload(request.app[DAEMON], body))
