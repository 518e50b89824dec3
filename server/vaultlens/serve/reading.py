"""The views that hand a model what it reads: context packs, pictures, and a note's lines.

``/api/context`` searches, then packs the hits within a token budget (``search/pack.py``);
``/api/items/{id}/image`` sends a picture downscaled; ``/api/read`` returns a note's lines, or
an image or PDF page with the paragraphs that embed it. The MCP tools call the same payload
functions, so both ways in answer alike.
"""

from __future__ import annotations

import codecs
import re
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from aiohttp import web

from vaultlens.extract.images import ImageError, encode_for_model
from vaultlens.search.hits import Hit
from vaultlens.search.pack import PackOptions
from vaultlens.search.pictures import MAX_IMAGE_BYTES, PictureError
from vaultlens.serve.api import (
    VAULT_PATH,
    ApiError,
    Field,
    Forbidden,
    NotFound,
    Unavailable,
    confine,
    read_json,
)
from vaultlens.serve.daemon import DAEMON, Daemon
from vaultlens.serve.views import (
    SEARCH_FIELDS,
    in_search_thread,
    item_id_of,
    ok,
    run_search,
    search_filters,
)
from vaultlens.vault.vault import Refused, open_file

CONTEXT_CANDIDATES = 20  # hits considered for a pack; the budget decides how many go in
MAX_SIDE = 1568
MAX_READ_LINES = 400  # lines a read returns at most
MAX_READ_CHARS = 256 * 1024  # characters a read returns at most (one line may be megabytes)
READ_BLOCK = 64 * 1024  # bytes read from a note at a time
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
                  min_length=1, pattern=VAULT_PATH, shape="a vault path"),
    "start_line": Field(int, description="a note's first line (1-based, default 1)",
                        minimum=1),
    "end_line": Field(int, description=f"a note's last line, not before start_line "
                      f"(default: {MAX_READ_LINES} lines on)", minimum=1),
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
    row = catalog.file(path)
    if row is None:
        raise NotFound(f"{path} is not in the index (not a note, image or PDF of this vault, "
                       "or not indexed yet)")
    if row.kind == "note":
        return _read_note(daemon, path, body)
    page = body.get("page", 1) if row.kind == "pdf" else None
    item = catalog.item_on_page(row.id, page)
    if item is None:
        where = f" page {page}" if page else ""
        raise NotFound(f"{path}{where} has no indexed item")
    hit: Hit | None = daemon.searcher.hit(item, 0.0, "")
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
    return {"kind": "note", "path": path, "start_line": start, "end_line": last,
            "total_lines": lines.total, "text": "\n".join(lines.text), "truncated": cut}


@dataclass
class Lines:
    text: list[str]  # the lines asked for, without their line breaks
    total: int  # lines in the whole file
    cut: bool  # the last of ``text`` stops short: the characters allowed ran out


# where str.splitlines() breaks a line ("\r\n" is one break)
_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def read_lines(fh: BinaryIO, first: int, last: int, max_chars: int,
               block_size: int = READ_BLOCK) -> Lines:
    """Lines ``first`` to ``last`` (1-based) of a UTF-8 text file, numbered as
    ``str.splitlines()`` numbers them, at most ``max_chars`` characters of them, and how many
    lines the file has. Read a block at a time: memory is one block and the lines kept,
    however long the file."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    kept: list[str] = []
    line: list[str] = []  # what is kept of line ``number``
    number = 1  # the line being read
    started = False  # line ``number`` has characters (a last line without a break counts)
    room, cut = max_chars, False
    held = ""  # a "\r" that ended a block: the next block may start with its "\n"
    while True:
        block = fh.read(block_size)
        text = held + decoder.decode(block, final=not block)
        held = ""
        if block and text.endswith("\r"):
            text, held = text[:-1], "\r"
        breaks = len(_BREAK.findall(text))
        if number + breaks < first or number > last:
            # no line asked for ends or starts here: count the lines, keep nothing
            number += breaks
            started = (started or bool(text)) if not breaks else \
                _BREAK.fullmatch(text[-1]) is None
        else:
            at = 0
            for match in _BREAK.finditer(text):
                piece = text[at : match.start()]
                if first <= number <= last:
                    piece, cut, room = _within(piece, room, cut)
                    kept.append("".join([*line, piece]))
                    line.clear()
                    last = number if cut else last  # the characters ran out: no more
                number, started, at = number + 1, False, match.end()
            rest = text[at:]
            if rest and first <= number <= last:
                rest, cut, room = _within(rest, room, cut)
                line.append(rest)
            started = started or at < len(text)
        if not block:
            break
    if started:
        if first <= number <= last:
            kept.append("".join(line))
        number += 1
    return Lines(kept, number - 1, cut)


def _within(piece: str, room: int, cut: bool) -> tuple[str, bool, int]:
    """``piece`` cut to ``room`` characters (none once cut), whether it was, and the room
    left."""
    if cut:
        return "", True, 0
    if len(piece) > room:
        return piece[:room], True, 0
    return piece, False, room - len(piece)


async def read_payload(daemon: Daemon, body: dict[str, Any]) -> dict[str, Any]:
    body["path"] = confine(str(daemon.workspace.config.vault), body["path"])
    return {"read": await in_search_thread(daemon, _read, daemon, body)}


async def read(request: web.Request) -> web.Response:
    """A note's lines, or an image or PDF page with its picture and where it is embedded."""
    body = await read_json(request, READ_FIELDS)
    return ok(await read_payload(request.app[DAEMON], body))
