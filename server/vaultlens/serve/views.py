"""One view per resource: the API's adapters over the service (``queries.py``). Heavy work
(models, SQLite, image decoding) runs in the search threads, never on the event loop."""

from __future__ import annotations

import json
import logging
from importlib.metadata import version
from typing import Any

import aiohttp
from aiohttp import web

from vaultlens.errors import Forbidden, Invalid, NotFound, TooLarge
from vaultlens.extract.documents import ItemKind
from vaultlens.extract.images import thumbnail_bytes
from vaultlens.search.pictures import PictureError
from vaultlens.serve.api import MAX_ITEM_ID, MAX_UPLOAD_BYTES, confine, read_json
from vaultlens.serve.daemon import DAEMON, Daemon
from vaultlens.serve.proof import proof
from vaultlens.serve.queries import Queries
from vaultlens.serve.requests import ReindexRequest, SearchRequest, SimilarRequest, parse

log = logging.getLogger(__name__)


def queries(request: web.Request) -> Queries:
    return Queries(request.app[DAEMON])


def ok(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response({"ok": True, **payload}, status=status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


async def health(request: web.Request) -> web.Response:
    """Up, and (given ``?nonce=``) proof that this daemon holds the token: see proof.py.
    Health never leaves the event loop."""
    answer: dict[str, Any] = {"version": version("vaultlens")}
    made = proof(request.app[DAEMON].token, request.query.get("nonce", ""))
    if made is not None:
        answer["proof"] = made
    return ok(answer)


async def status(request: web.Request) -> web.Response:
    return ok(await queries(request).status())


async def search(request: web.Request) -> web.Response:
    body = parse(SearchRequest, await read_json(request))
    return ok((await queries(request).search(body)).to_json())


async def similar(request: web.Request) -> web.Response:
    """Items like a vault file (by its stored vector) or like an uploaded picture."""
    if not request.content_type.startswith("multipart/"):
        body = parse(SimilarRequest, await read_json(request))
        return ok((await queries(request).similar(body)).to_json())
    if request.content_length and request.content_length > MAX_UPLOAD_BYTES:
        raise TooLarge(f"uploads may be at most {MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        reader = await request.multipart()
        part = await reader.next()
        if part is None or getattr(part, "name", None) != "image":
            raise Invalid("send the picture as a multipart field named 'image'")
        data = await part.read(decode=False)  # type: ignore[union-attr]
    except (ValueError, AssertionError, RuntimeError, web.HTTPException,
            aiohttp.ClientPayloadError) as exc:
        if isinstance(exc, Invalid | web.HTTPRequestEntityTooLarge):
            raise
        # a truncated or malformed body ("Reading after EOF", a missing boundary)
        raise Invalid(f"malformed multipart upload ({type(exc).__name__}: {exc})") from exc
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(f"uploads may be at most {MAX_UPLOAD_BYTES // 2**20} MB")
    return ok((await queries(request).similar_to_picture(bytes(data))).to_json())


def item_id_of(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "²" is a digit to isdigit
        raise Invalid(f"item id must be a whole number from 0 to {MAX_ITEM_ID}, not {raw!r}")
    return int(raw)


def _item(daemon: Daemon, item_id: int) -> dict[str, Any]:
    hit = daemon.searcher.hit(item_id, 0.0, "")
    if hit is None:
        raise NotFound(f"no item {item_id}")
    row = daemon.searcher.catalog.item(item_id)
    data = {**hit.to_json(), "text": row["text"] if row else ""}
    data.pop("score", None)
    return data


async def item(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    data = await queries(request).in_search_thread(_item, daemon, item_id_of(request))
    return ok({"item": data})


def _thumbnail(daemon: Daemon, item_id: int) -> bytes:
    """The indexer's thumbnail (an image's, a PDF's first page); for any other PDF page, or
    one the indexer did not render (a page with a text layer), made now and cached."""
    picture = daemon.searcher.catalog.picture(item_id)
    row = None if picture is None or picture.kind not in (ItemKind.IMAGE, ItemKind.PAGE) else (
        picture.hash, picture.page)
    if row is None or row[0] is None:
        raise NotFound(f"item {item_id} has no thumbnail")
    data = daemon.workspace.data
    keys = [row[0]] if (row[1] or 1) == 1 else []
    keys.append(f"{row[0]}-p{row[1] or 1}")
    for key in keys:
        try:
            return data.thumb_path(key).read_bytes()
        except FileNotFoundError:
            continue
    try:
        thumb = thumbnail_bytes(daemon.pictures.load(item_id))
    except PictureError as exc:
        raise NotFound(f"item {item_id} has no thumbnail: {exc.reason}") from exc
    try:
        data.save_thumb(keys[-1], thumb)  # a cache: losing it costs a render, nothing else
    except OSError:
        log.warning("cannot cache the thumbnail of item %d", item_id, exc_info=True)
    return thumb


async def thumbnail(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    data = await queries(request).in_search_thread(_thumbnail, daemon, item_id_of(request))
    return web.Response(body=data, content_type="image/webp",
                        headers={"Cache-Control": "private, max-age=300"})


async def reindex(request: web.Request) -> web.Response:
    """Index one path now, ahead of any backlog (the plugin calls this after a paste)."""
    body = parse(ReindexRequest, await read_json(request))
    daemon = request.app[DAEMON]
    cfg = daemon.workspace.config
    path = confine(str(cfg.vault), body.path)
    if daemon.workspace.policy.excluded(path):  # app.json as it is now: the user may edit it
        # refused by the vault's rules, as a path out of the vault is: no pattern in the API
        # document can say which paths a vault excludes, so not a malformed request
        raise Forbidden(f"{path} is excluded from the index (.trash, the config folder, a dot "
                       "folder, Obsidian's excluded files or --exclude)")
    daemon.service.request([path])  # ReadOnly: another process writes this index
    return ok({"queued": path}, status=202)
