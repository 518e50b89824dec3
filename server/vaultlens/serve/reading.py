"""The views that hand a model what it reads: context packs, pictures, and a note's lines.

``/api/context`` searches, then packs the hits within a token budget (``search/pack.py``);
``/api/items/{id}/image`` sends a picture downscaled; ``/api/read`` returns a note's lines, or
an image or PDF page with the paragraphs that place it. The first and last are adapters over
the service (``queries.py``), which the MCP tools call too, so both ways in answer alike.
"""

from __future__ import annotations

from aiohttp import web

from vaultlens.errors import Invalid, Unavailable
from vaultlens.extract.images import ImageError, encode_for_model
from vaultlens.search.pack import MAX_IMAGE_SIDE
from vaultlens.search.pictures import MAX_IMAGE_BYTES
from vaultlens.serve.api import read_json
from vaultlens.serve.daemon import Daemon
from vaultlens.serve.requests import ContextRequest, ReadRequest, parse
from vaultlens.serve.views import item_id_of, ok, queries


async def context(request: web.Request) -> web.Response:
    """Passages and pictures for a model, within a token budget, with what was left out."""
    body = parse(ContextRequest, await read_json(request))
    return ok((await queries(request).context(body)).to_json())


async def read(request: web.Request) -> web.Response:
    """A note's lines, or an image or PDF page with its picture and where it is placed."""
    body = parse(ReadRequest, await read_json(request))
    return ok({"read": (await queries(request).read(body)).to_json()})


def _image(daemon: Daemon, item_id: int, max_px: int) -> tuple[bytes, str]:
    picture = daemon.pictures.load(item_id)  # PictureError: faults.py says what is told
    try:
        encoded = encode_for_model(picture, max_px, MAX_IMAGE_BYTES)
    except ImageError as exc:
        raise Unavailable(f"item {item_id}: {exc.reason}") from exc
    return encoded.data, encoded.mime


async def image(request: web.Request) -> web.Response:
    raw = request.query.get("max_px", str(MAX_IMAGE_SIDE))
    if not raw.isdigit() or not 64 <= int(raw) <= MAX_IMAGE_SIDE:
        raise Invalid(f"max_px must be a number from 64 to {MAX_IMAGE_SIDE}")
    q = queries(request)
    data, mime = await q.in_search_thread(_image, q.daemon, item_id_of(request), int(raw))
    return web.Response(body=data, content_type=mime,
                        headers={"Cache-Control": "private, max-age=300"})
