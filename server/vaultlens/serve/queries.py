"""The service both ways in share: search, context, read, similar and status, each taking its
typed request (``requests.py``) and giving its typed answer (``answers.py``).

The API's views and the MCP tools are thin adapters over it. Heavy work (models, SQLite,
image decoding) runs in the daemon's search threads, never on the event loop; status has a
thread of its own, so it answers while every search thread is held up. What goes wrong is
raised as a domain error, and ``faults.py`` alone says what a client is told of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from vaultlens.embedders.base import ModelError
from vaultlens.errors import Forbidden, Invalid, NotFound, Unavailable
from vaultlens.extract.images import ImageError, open_image
from vaultlens.search.hits import Hit
from vaultlens.search.pack import Pack, PackOptions
from vaultlens.search.query import Filters, fields_filters
from vaultlens.search.searcher import text_to_embed
from vaultlens.serve.answers import Found, NoteLines, Packed, Partial, Picture, Read, Similar
from vaultlens.serve.api import confine
from vaultlens.serve.daemon import Daemon
from vaultlens.serve.lines import MAX_READ_CHARS, read_lines
from vaultlens.serve.requests import (
    MAX_READ_LINES,
    ContextRequest,
    Filtered,
    ReadRequest,
    SearchRequest,
    SimilarRequest,
    StatusRequest,
)
from vaultlens.serve.status import MODEL_LOADING, coverage
from vaultlens.vault.vault import FileKind, Refused, open_file

T = TypeVar("T")
F = TypeVar("F", bound=Filtered)
log = logging.getLogger(__name__)
CONTEXT_CANDIDATES = 20  # hits considered for a pack; the budget decides how many go in
READ_WHOLE = 200_000  # a read's one entry is never cut for the budget


class Queries:
    """The five queries over one daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def in_search_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.daemon.search_pool, fn,
                                                                *args)

    async def search(self, request: SearchRequest) -> Found:
        """Ranked hits; the query may hold filters (path: tag: kind: before: after:,
        properties, -words, "phrases"), and the request's fields add more."""
        daemon = self.daemon
        request, filters = self._filters(request)
        start = time.perf_counter()
        ready = daemon.ready.is_set()
        if ready and not request.image:
            # while this search waits for a thread, its query is embedded with the one in hand
            text = text_to_embed(request.query, request.literal,
                                 daemon.query_model.multilingual)
            if text is not None:
                daemon.query_model.ahead(text)
        hits, ranked_by_vectors = await self.in_search_thread(run_search, daemon, request,
                                                              filters, ready)
        return Found([h.to_json() for h in hits], self._partial(ranked_by_vectors),
                     _ms_since(start))

    async def context(self, request: ContextRequest) -> Packed:
        """Passages and pictures for a model, within a token budget, with what was left
        out."""
        request, filters = self._filters(request)
        start = time.perf_counter()
        pack, ranked_by_vectors = await self.in_search_thread(
            _context, self.daemon, request, filters, self.daemon.ready.is_set())
        return Packed(pack, self._partial(ranked_by_vectors), _ms_since(start))

    def _partial(self, ranked_by_vectors: bool) -> Partial:
        """Whether an answer may miss something: keywords alone (the query model loading,
        or failed for this search), or files still to be indexed."""
        daemon = self.daemon
        cover = coverage(daemon.service, daemon.ready.is_set())
        if not ranked_by_vectors:
            return Partial(True, MODEL_LOADING, cover.share)
        return Partial(cover.partial, cover.reason, cover.share)

    async def read(self, request: ReadRequest) -> Read:
        """A note's lines, or an image or PDF page with its picture and where it is
        embedded."""
        path = confine(str(self.daemon.workspace.config.vault), request.path)
        return await self.in_search_thread(_read, self.daemon,
                                           dataclasses.replace(request, path=path))

    async def similar(self, request: SimilarRequest) -> Similar:
        """Items like a vault file, by its stored vector."""
        path = confine(str(self.daemon.workspace.config.vault), request.path)
        hits = await self.in_search_thread(_similar_to_path, self.daemon, path, request.k)
        return Similar([h.to_json() for h in hits])

    async def similar_to_picture(self, data: bytes, k: int = 10) -> Similar:
        """Items like an uploaded picture (needs a visual model)."""
        hits = await self.in_search_thread(_similar_to_upload, self.daemon, data, k)
        return Similar([h.to_json() for h in hits])

    async def status(self, request: StatusRequest | None = None) -> dict[str, Any]:
        """The daemon's status, from its own thread: it answers while every search thread
        is held up (a stopped query worker holds them up to its timeout)."""
        return await asyncio.get_running_loop().run_in_executor(self.daemon.status_pool,
                                                                self.daemon.status)

    def _filters(self, request: F) -> tuple[F, Filters]:
        """The request with its paths confined to the vault, and its filters."""
        root = str(self.daemon.workspace.config.vault)
        confined = {name: confine(root, value) for name in ("path", "image")
                    if (value := getattr(request, name, None))}
        request = dataclasses.replace(request, **confined)
        return request, fields_filters(request.path, request.kind, request.tag,
                                       request.before, request.after, request.where,
                                       request.exclude)


def _ms_since(start: float) -> float:
    return round(1000 * (time.perf_counter() - start), 1)


def run_search(daemon: Daemon, request: SearchRequest, filters: Filters, ready: bool
               ) -> tuple[list[Hit], bool]:
    """The hits, and whether vectors ranked them (False: keywords alone, while the query
    model loads, or when it failed for this search)."""
    picture = None
    if request.image:
        if not daemon.searcher.embedder.supports_images:
            raise Invalid("visual search is off (text-only model): 'image' needs a Qwen3-VL "
                          "model; /api/similar finds items like a vault file without one")
        if not ready:
            raise Unavailable("the model is still loading; try again in a few seconds")
        try:
            picture = open_image(daemon.workspace.config.vault / request.image).image
        except ImageError as exc:
            raise Invalid(f"{request.image}: {exc.reason}") from exc

    def search(vectors: bool) -> list[Hit]:
        return daemon.searcher.search(request.query, request.k, request.offset, filters,
                                      vectors, picture, request.literal)

    try:
        return search(ready), ready
    except ModelError as exc:
        if picture is not None:  # a search by picture has nothing to fall back on
            raise Unavailable(f"the model failed: {exc}") from exc
        # the query model's worker died or stuck (it is started again for the next
        # search): this one is answered by keywords, and says so
        log.warning("the query model failed (%s); keywords alone for this search", exc)
        return search(False), False


def _context(daemon: Daemon, request: ContextRequest, filters: Filters, ready: bool
             ) -> tuple[Pack, bool]:
    """The pack, and whether vectors ranked its candidates."""
    shared = {f.name: getattr(request, f.name) for f in dataclasses.fields(Filtered)}
    hits, ranked_by_vectors = run_search(
        daemon, SearchRequest(**shared, k=CONTEXT_CANDIDATES), filters, ready)
    options = PackOptions(request.budget_tokens, request.max_images, request.image_max_px,
                          request.inline)
    return daemon.packer().build(request.query, hits, options), ranked_by_vectors


# the index's rows behind read and similar ------------------------------------------------
def _read(daemon: Daemon, request: ReadRequest) -> Read:
    catalog = daemon.searcher.catalog
    path = request.path
    row = catalog.file(path)
    if row is None:
        raise NotFound(f"{path} is not in the index (not a note, image or PDF of this vault, "
                       "or not indexed yet)")
    if row.kind == FileKind.NOTE:
        return _read_note(daemon, request)
    page = request.page if row.kind == FileKind.PDF else None
    item = catalog.item_on_page(row.id, page)
    if item is None:
        where = f" page {page}" if page else ""
        raise NotFound(f"{path}{where} has no indexed item")
    hit: Hit | None = daemon.searcher.hit(item, 0.0, "")
    if hit is None:
        raise NotFound(f"{path} was removed from the index meanwhile")
    options = PackOptions(READ_WHOLE, 1, request.max_px, inline=True)
    pack = daemon.packer().build(path, [hit], options)
    if not pack.entries:
        raise Unavailable(f"{path}: {pack.left_out[0]['reason']}")
    return Picture(hit.kind, pack.entries[0], pack.token_rule)


def _read_note(daemon: Daemon, request: ReadRequest) -> NoteLines:
    path, start = request.path, request.start_line
    end = request.end_line if request.end_line is not None else start + MAX_READ_LINES - 1
    if end < start:
        raise Invalid("end_line must not be before start_line")
    end = min(end, start + MAX_READ_LINES - 1)
    try:  # as the scan opens a note: a regular file in the vault, an open that never blocks
        with open_file(daemon.workspace.config.vault, path) as fh:
            lines = read_lines(fh, start, end, MAX_READ_CHARS)
    except Refused as exc:
        raise Forbidden(f"{path}: {exc.reason}") from exc
    except OSError as exc:
        raise NotFound(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    last = start + len(lines.text) - 1
    cut = (f"the text stops after {MAX_READ_CHARS:,} characters, within line {last}"
           if lines.cut else None)
    return NoteLines(path, start, last, lines.total, "\n".join(lines.text), cut)


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
        raise Invalid("visual search is off (text-only model): search by a vault path, whose "
                      "text stands in for its pixels, or run with a Qwen3-VL model")
    try:  # the same decoding as the indexer's: pixel cap, orientation, transparency
        picture = open_image(data).image
    except ImageError as exc:
        raise Invalid(f"the upload is not a usable image: {exc.reason}") from exc
    return _similar(daemon, embedder.embed_images([picture], "query")[0], k, set())
