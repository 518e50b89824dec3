"""One view per resource. Heavy work (models, SQLite, image decoding) runs in the search thread,
never on the event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from vaultlens.embedders.base import ModelError
from vaultlens.extract.images import ImageError, open_image, thumbnail_bytes
from vaultlens.search.hits import Hit
from vaultlens.search.pictures import PictureError
from vaultlens.search.query import Filters, QueryError, fields_filters
from vaultlens.search.searcher import text_to_embed
from vaultlens.serve.api import (
    DATE,
    MAX_ITEM_ID,
    MAX_UPLOAD_BYTES,
    PROPERTY_TESTS,
    VAULT_PATH,
    ApiError,
    Field,
    Forbidden,
    NotFound,
    TooLarge,
    Unavailable,
    confine,
    read_json,
)
from vaultlens.serve.daemon import DAEMON, Daemon
from vaultlens.serve.indexing import ReadOnly
from vaultlens.serve.proof import proof
from vaultlens.vault.vault import Exclusions, ignored, read_settings

T = TypeVar("T")
log = logging.getLogger(__name__)
KINDS = ("note", "image", "pdf")
SEARCH_FIELDS = {
    "query": Field(str, required=True, description="what to look for"),
    "k": Field(int, description="how many results (default 10)", minimum=1, maximum=100),
    "offset": Field(int, description="skip this many results", minimum=0, maximum=1000),
    "path": Field(str, description="only hits at or under this vault path",
                  pattern=VAULT_PATH, shape="a vault path"),
    "kind": Field(str, description="only this kind", choices=KINDS),
    "tag": Field(str, description="only notes with this tag, and what they embed"),
    "before": Field(str, description="only items dated before this (2024, 2024-05, "
                    "2024-05-01): a note's frontmatter date or created, else the file time",
                    pattern=DATE, shape="a date: write 2024, 2024-05 or 2024-05-01"),
    "after": Field(str, description="only items dated on or after this", pattern=DATE,
                   shape="a date: write 2024, 2024-05 or 2024-05-01"),
    "where": Field(str, description="frontmatter property tests, as in the query syntax: "
                   "'status:done ctr>5 -draft:true'", pattern=PROPERTY_TESTS,
                   shape="property tests alone (name:value, name>5, ...)"),
    "exclude": Field(str, description="words or \"phrases\" a hit must not contain"),
    "image": Field(str, description="a vault image to search with, alone or with the query "
                   "text (needs a visual model)", min_length=1, pattern=VAULT_PATH,
                   shape="a vault path"),
    "literal": Field(bool, description="the query is prose to find things like, not syntax: "
                     "no filters, phrases or -words are read from it"),
}
SIMILAR_FIELDS = {
    "path": Field(str, required=True, description="a vault image, PDF or note path",
                  min_length=1, pattern=VAULT_PATH, shape="a vault path"),
    "k": Field(int, description="how many results (default 10)", minimum=1, maximum=100),
}
REINDEX_FIELDS = {"path": Field(str, required=True, description="a vault path to index now",
                                min_length=1, pattern=VAULT_PATH, shape="a vault path")}


async def in_search_thread(daemon: Daemon, fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(daemon.search_pool, fn, *args)


def ok(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response({"ok": True, **payload}, status=status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


async def health(request: web.Request) -> web.Response:
    """Up, and (given ``?nonce=``) proof that this daemon holds the token: see proof.py."""
    answer: dict[str, Any] = {"version": version("vaultlens")}
    made = proof(request.app[DAEMON].token, request.query.get("nonce", ""))
    if made is not None:
        answer["proof"] = made
    return ok(answer)


async def status_payload(daemon: Daemon) -> dict[str, Any]:
    """The daemon's status, from its own thread: it answers while every search thread is
    held up (a stopped query worker holds them up to its timeout). Health never leaves the
    event loop."""
    return await asyncio.get_running_loop().run_in_executor(daemon.status_pool, daemon.status)


async def status(request: web.Request) -> web.Response:
    return ok(await status_payload(request.app[DAEMON]))


def run_search(daemon: Daemon, body: dict[str, Any], filters: Filters, ready: bool
               ) -> tuple[list[Hit], bool]:
    """The hits, and whether vectors ranked them (False: keywords alone, while the query
    model loads, or when it failed for this search)."""
    picture = None
    if body.get("image"):
        if not daemon.searcher.embedder.supports_images:
            raise ApiError("visual search is off (text-only model): 'image' needs a Qwen3-VL "
                           "model; /api/similar finds items like a vault file without one")
        if not ready:
            raise Unavailable("the model is still loading; try again in a few seconds")
        root = daemon.workspace.config.vault
        try:
            picture = open_image(root / body["image"]).image
        except ImageError as exc:
            raise ApiError(f"{body['image']}: {exc.reason}") from exc

    def search(vectors: bool) -> list[Hit]:
        return daemon.searcher.search(body["query"], body.get("k", 10), body.get("offset", 0),
                                      filters, vectors, picture, bool(body.get("literal")))

    try:
        try:
            return search(ready), ready
        except ModelError as exc:
            if picture is not None:  # a search by picture has nothing to fall back on
                raise Unavailable(f"the model failed: {exc}") from exc
            # the query model's worker died or stuck (it is started again for the next
            # search): this one is answered by keywords, and says so
            log.warning("the query model failed (%s); keywords alone for this search", exc)
            return search(False), False
    except QueryError as exc:
        raise ApiError(str(exc)) from exc


def search_filters(daemon: Daemon, body: dict[str, Any]) -> Filters:
    """The request's filters, with its paths confined to the vault (in place)."""
    root = str(daemon.workspace.config.vault)
    for name in ("path", "image"):
        if body.get(name):
            body[name] = confine(root, body[name])
    try:
        return fields_filters(body.get("path"), body.get("kind"), body.get("tag"),
                              body.get("before"), body.get("after"), body.get("where"),
                              body.get("exclude"))
    except QueryError as exc:
        raise ApiError(str(exc)) from exc


async def search_payload(daemon: Daemon, body: dict[str, Any]) -> dict[str, Any]:
    filters = search_filters(daemon, body)
    start = time.perf_counter()
    ready = daemon.ready.is_set()
    if ready and not body.get("image"):
        # while this search waits for a thread, its query is embedded with the one in hand
        text = text_to_embed(body["query"], bool(body.get("literal")),
                             daemon.query_model.multilingual)
        if text is not None:
            daemon.query_model.ahead(text)
    hits, ranked_by_vectors = await in_search_thread(daemon, run_search, daemon, body, filters,
                                                     ready)
    return {"results": [h.to_json() for h in hits], "partial": not ranked_by_vectors,
            "took_ms": round(1000 * (time.perf_counter() - start), 1)}


async def search(request: web.Request) -> web.Response:
    """Ranked hits; the query may hold filters (path: tag: kind: before: after:, properties,
    -words, "phrases"), and the JSON fields add more."""
    body = await read_json(request, SEARCH_FIELDS)
    return ok(await search_payload(request.app[DAEMON], body))


def _similar(daemon: Daemon, vector: Any, k: int, exclude: set[int]) -> list[Hit]:
    ids, sims = daemon.searcher.vectors.search(vector, k + len(exclude))
    hits = []
    for item_id, sim in zip(ids, sims, strict=True):
        if int(item_id) in exclude:
            continue
        hit = daemon.searcher.hit(int(item_id), float(sim), "")
        if hit is not None:
            hits.append(hit)
    return hits[:k]


def _similar_to_path(daemon: Daemon, path: str, k: int) -> list[Hit]:
    rows = daemon.searcher.catalog.item_hashes(path)
    if not rows:
        raise NotFound(f"{path} is not indexed")
    cached = daemon.searcher.catalog.cached_vectors([r[1] for r in rows],
                                                    daemon.searcher.embedder.signature)
    if rows[0][1] not in cached:
        raise NotFound(f"{path} has no vector yet")
    return _similar(daemon, cached[rows[0][1]], k, {int(r[0]) for r in rows})


def _similar_to_upload(daemon: Daemon, data: bytes, k: int) -> list[Hit]:
    # whether a picture can be used at all, before it is decoded (up to 64 MP: hundreds of MB)
    embedder = daemon.searcher.embedder
    if not daemon.ready.is_set():
        raise Unavailable("the model is still loading; try again in a few seconds")
    if not embedder.supports_images:
        raise ApiError("visual search is off (text-only model): search by a vault path, whose "
                       "text stands in for its pixels, or run with a Qwen3-VL model")
    try:  # the same decoding as the indexer's: pixel cap, orientation, transparency
        picture = open_image(data).image
    except ImageError as exc:
        raise ApiError(f"the upload is not a usable image: {exc.reason}") from exc
    return _similar(daemon, embedder.embed_images([picture], "query")[0], k, set())


async def similar(request: web.Request) -> web.Response:
    """Items like a vault file (by its stored vector) or like an uploaded picture."""
    daemon = request.app[DAEMON]
    if request.content_type.startswith("multipart/"):
        if request.content_length and request.content_length > MAX_UPLOAD_BYTES:
            raise TooLarge(f"uploads may be at most {MAX_UPLOAD_BYTES // 2**20} MB")
        try:
            reader = await request.multipart()
            part = await reader.next()
            if part is None or getattr(part, "name", None) != "image":
                raise ApiError("send the picture as a multipart field named 'image'")
            data = await part.read(decode=False)  # type: ignore[union-attr]
        except (ValueError, AssertionError, RuntimeError, web.HTTPException,
                aiohttp.ClientPayloadError) as exc:
            if isinstance(exc, ApiError | web.HTTPRequestEntityTooLarge):
                raise
            # a truncated or malformed body ("Reading after EOF", a missing boundary)
            raise ApiError(f"malformed multipart upload ({type(exc).__name__}: {exc})") from exc
        if len(data) > MAX_UPLOAD_BYTES:
            raise TooLarge(f"uploads may be at most {MAX_UPLOAD_BYTES // 2**20} MB")
        hits = await in_search_thread(daemon, _similar_to_upload, daemon, bytes(data), 10)
    else:
        return ok(await similar_payload(daemon, await read_json(request, SIMILAR_FIELDS)))
    return ok({"results": [h.to_json() for h in hits]})


async def similar_payload(daemon: Daemon, body: dict[str, Any]) -> dict[str, Any]:
    path = confine(str(daemon.workspace.config.vault), body["path"])
    hits = await in_search_thread(daemon, _similar_to_path, daemon, path, body.get("k", 10))
    return {"results": [h.to_json() for h in hits]}


def item_id_of(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "²" is a digit to isdigit
        raise ApiError(f"item id must be a whole number from 0 to {MAX_ITEM_ID}, not {raw!r}")
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
    data = await in_search_thread(daemon, _item, daemon, item_id_of(request))
    return ok({"item": data})


def _thumbnail(daemon: Daemon, item_id: int) -> bytes:
    """The indexer's thumbnail (an image's, a PDF's first page); for any other PDF page, or
    one the indexer did not render (a page with a text layer), made now and cached."""
    picture = daemon.searcher.catalog.picture(item_id)
    row = None if picture is None or picture.kind not in ("image", "page") else (
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
    data = await in_search_thread(daemon, _thumbnail, daemon, item_id_of(request))
    return web.Response(body=data, content_type="image/webp",
                        headers={"Cache-Control": "private, max-age=300"})


async def reindex(request: web.Request) -> web.Response:
    """Index one path now, ahead of any backlog (the plugin calls this after a paste)."""
    body = await read_json(request, REINDEX_FIELDS)
    daemon = request.app[DAEMON]
    cfg = daemon.workspace.config
    path = confine(str(cfg.vault), body["path"])
    settings, _ = read_settings(cfg.vault, cfg.config_dir)  # read now: the user may edit it
    if ignored(path, cfg.config_dir, Exclusions(cfg.exclude, settings.ignore_filters)):
        # refused by the vault's rules, as a path out of the vault is: no pattern in the API
        # document can say which paths a vault excludes, so not a malformed request
        raise Forbidden(f"{path} is excluded from the index (.trash, the config folder, a dot "
                       "folder, Obsidian's excluded files or --exclude)")
    try:
        daemon.service.request([path])
    except ReadOnly as exc:
        raise Unavailable(str(exc)) from exc
    return ok({"queued": path}, status=202)
