"""Context packs: what a multimodal model needs to answer from a vault, within a token budget.

A pack is the search's hits in rank order, each made whole: a passage with its heading path,
lines and full text; a screenshot or PDF page with the picture itself (downscaled), the
paragraphs of the notes that place it, and its OCR text. Every entry's cost is counted by the
rule in ``tokens.py`` on exactly the text that ``render`` gives a model, plus the picture's
cost; entries that do not fit are listed in ``left_out`` with the reason.

How the budget is shared: the images of a pack get at most half of it between them, so
one slide never crowds out every paragraph. Each is downscaled to its share (never below
``MIN_IMAGE_SIDE`` px, never above ``image_max_px``); a passage is cut to ``PASSAGE_TOKENS``,
or to what is left.

Each paragraph is shown once in a pack: a passage leaves out its sections that a picture's
paragraph already shows, and a picture's paragraph that a passage or another picture shows
already (the same note, overlapping lines) is pointed to (``see``: that entry's number), not
repeated. A model is given plain text (vault/plain.py), with the note path and lines to cite;
the words read in a picture are given as read.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from vaultlens.extract.images import ImageError, encode_for_model
from vaultlens.index.reader import Reader
from vaultlens.search.hits import Hit
from vaultlens.search.kinds import HitKind
from vaultlens.search.pictures import MAX_IMAGE_BYTES, PictureError, Pictures
from vaultlens.search.tokens import PIXELS_PER_TOKEN, TokenCounter, image_tokens, side_for_tokens
from vaultlens.vault.plain import plain_text

MIN_IMAGE_SIDE = 384  # below this a slide's text is unreadable: leave the image out instead
PASSAGE_TOKENS = 400  # a passage longer than this is cut (the model can `read` the rest)
PLACE_TOKENS = 150  # each paragraph shown beside an image
OCR_TOKENS = 150  # the OCR text shown beside an image
MIN_TEXT_TOKENS = 24  # a passage cut shorter than this is left out instead
MAX_PACK_IMAGE_BYTES = 2 * 1024 * 1024  # all the pictures of one pack together
SUMMARY_TOKENS = 60  # kept back for the line that says what was left out
IMAGE_RULE = f"ceil(width * height / {PIXELS_PER_TOKEN}) at the size sent"
# a pack's defaults and the largest picture side it sends: the API's and the MCP tools'
# request types (serve/requests.py) take theirs from here
BUDGET_TOKENS = 4000
MAX_IMAGES = 4
MAX_IMAGE_SIDE = 1568  # Claude's largest side before it downscales a picture itself


@dataclass
class PackOptions:
    budget_tokens: int = BUDGET_TOKENS
    max_images: int = MAX_IMAGES
    image_max_px: int = MAX_IMAGE_SIDE
    inline: bool = False  # base64 in the pack, not a URL


@dataclass
class Entry:
    type: str  # passage | image
    id: int
    path: str
    score: float
    text: str  # a passage's text, or an image's OCR text
    headings: list[str] = field(default_factory=list)
    lines: list[int] | None = None  # [first, last], 1-based, for passages
    uri: str | None = None  # obsidian://open for passages
    kind: str = HitKind.NOTE  # a HitKind; a plain str when read back from JSON
    page: int | None = None
    used_in: list[dict[str, Any]] = field(default_factory=list)  # paragraphs placing it
    more_places: int = 0  # places past those in ``used_in`` (the hit's cap)
    image: dict[str, Any] | None = None  # url or data, mime, width, height, tokens
    tokens: int = 0  # of render() plus the picture

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        if self.type == "passage":
            for key in ("kind", "page", "used_in", "image", "more_places"):
                data.pop(key)
        else:
            for key in ("lines", "uri", "headings"):
                data.pop(key)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        """An entry as ``to_json`` wrote it (a daemon's answer over HTTP)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class Pack:
    query: str
    budget_tokens: int
    token_rule: str
    entries: list[Entry] = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0

    summary: str = ""  # summary_text(left_out), cut to the tokens kept for it

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "budget_tokens": self.budget_tokens, "tokens": self.tokens,
                "token_rule": self.token_rule, "image_token_rule": IMAGE_RULE,
                "preamble": preamble(self.query), "entries": [e.to_json() for e in self.entries],
                "summary": self.summary, "left_out": self.left_out}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pack:
        """A pack as ``to_json`` wrote it (a daemon's answer over HTTP)."""
        return cls(data["query"], data["budget_tokens"], data["token_rule"],
                   [Entry.from_json(e) for e in data["entries"]], data["left_out"],
                   data["tokens"], data["summary"])


def preamble(query: str) -> str:
    return f"vaultlens context for: {query}"


def render(entry: Entry) -> list[str]:
    """The text blocks a model is given for an entry. An image entry has two: its header, then
    (after the picture) the paragraphs that place it and the words read in it."""
    if entry.type == "passage":
        heads = " > ".join(entry.headings)
        lines = entry.lines or [0, 0]
        where = f"{entry.path} lines {lines[0]}-{lines[1]}" + (f" ({heads})" if heads else "")
        return [f"[{where}]\n{entry.text}"]
    what = "PDF page" if entry.kind == HitKind.PDF else "Screenshot"
    page = f" page {entry.page}" if entry.page else ""
    parts = []
    for use in entry.used_in:
        heads = " > ".join(use["headings"])
        where = f"{use['note']} line {use['line']}" + (f" ({heads})" if heads else "")
        body = use["text"] or (f"(the paragraph is shown above, in entry {use['see']})"
                               if use["see"] else "(no paragraph around it)")
        parts.append(f"Embedded in {where}:\n{body}")
    if entry.more_places:
        parts.append(f"(Embedded in {entry.more_places} more places, not shown.)")
    if entry.text:
        parts.append(f"Text read in the picture: {entry.text}")
    return [f"[{what}: {entry.path}{page}]", "\n".join(parts) or "(embedded in no note)"]


def summary_text(left_out: list[dict[str, Any]]) -> str:
    """One line on what the pack left out, for the model (the JSON lists each with a reason)."""
    if not left_out:
        return ""
    reasons: dict[str, int] = {}
    for x in left_out:
        reasons[x["reason"]] = reasons.get(x["reason"], 0) + 1
    return "Left out: " + "; ".join(f"{n} hit(s) {r}" for r, n in reasons.items())


def _fitted(width: int, height: int, side: int) -> tuple[int, int]:
    """A picture's size shrunk to at most ``side``, rounded down: never more than PIL's
    thumbnail() gives (it rounds to the nearest), so a cost from it is a lower bound."""
    if max(width, height) <= side:
        return width, height
    scale = side / max(width, height)
    return max(1, int(width * scale)), max(1, int(height * scale))


Shown = list[tuple[str, int, int, int]]  # (note, first line, last line, entry number)


def _shown(pack: Pack) -> Shown:
    """The note lines a pack shows already, with the number (1-based) of the entry that
    shows them: passages, and the paragraphs beside its pictures."""
    out: Shown = []
    for n, e in enumerate(pack.entries, 1):
        if e.type == "passage" and e.lines:
            out.append((e.path, e.lines[0], e.lines[1], n))
        for use in e.used_in:
            out += [(use["note"], a, b, n) for a, b in use.get("lines", [])]
    return out


def _showing(shown: Shown, note: str, first: int, last: int) -> int | None:
    """The entry that shows any of these lines of this note, if one does."""
    return next((n for path, a, b, n in shown if path == note and a <= last and first <= b),
                None)


def _plain(headings: list[str]) -> list[str]:
    """A heading path as a model reads it ("Run `ob sync`" → "Run ob sync")."""
    return [plain_text(h) for h in headings]


def _lines(texts: Iterable[str]) -> list[str]:
    """The non-empty lines of these texts: a line of markup alone is empty once plain."""
    return [line for t in texts for line in t.split("\n") if line.strip()]


def obsidian_uri(vault_name: str, path: str) -> str:
    file = path[:-3] if path.endswith(".md") else path
    return f"obsidian://open?vault={quote(vault_name, safe='')}&file={quote(file, safe='')}"


class Packer:
    def __init__(self, catalog: Reader, pictures: Pictures, counter: TokenCounter,
                 vault_name: str) -> None:
        self.catalog = catalog
        self.pictures = pictures
        self.counter = counter
        self.vault_name = vault_name

    def build(self, query: str, hits: list[Hit], options: PackOptions) -> Pack:
        pack = Pack(query, options.budget_tokens, self.counter.rule)
        pack.tokens = self.counter.count(preamble(query))
        reserve = min(SUMMARY_TOKENS, options.budget_tokens // 10)  # for the left-out line
        budget = options.budget_tokens - reserve
        share = options.budget_tokens // (2 * options.max_images) if options.max_images else 0
        image_bytes = 0
        for hit in hits:
            left = budget - pack.tokens
            if hit.kind == HitKind.NOTE:
                entry = self._passage(hit, pack, left)
                if entry is None:
                    continue
            else:
                if self._images_in(pack) >= options.max_images:
                    self._leave(pack, hit, f"over max_images ({options.max_images})")
                    continue
                entry = self._image(hit, pack, left, min(share, left), options,
                                    MAX_PACK_IMAGE_BYTES - image_bytes)
                if entry is None:
                    continue
                image_bytes += int(entry.image["bytes"]) if entry.image else 0
            pack.entries.append(entry)
            pack.tokens += entry.tokens
        summary = summary_text(pack.left_out)
        if summary:
            pack.summary = self.counter.cut(summary, options.budget_tokens - pack.tokens)
            pack.tokens += self.counter.count(pack.summary) if pack.summary else 0
        return pack

    def cost(self, entry: Entry) -> int:
        """What an entry costs: its text blocks, counted one by one, and its picture."""
        text = sum(self.counter.count(b) for b in render(entry))
        return text + (int(entry.image["tokens"]) if entry.image else 0)

    @staticmethod
    def _images_in(pack: Pack) -> int:
        return sum(1 for e in pack.entries if e.type == "image")

    @staticmethod
    def _leave(pack: Pack, hit: Hit, reason: str) -> None:
        pack.left_out.append({"id": hit.id, "path": hit.path, "page": hit.page,
                              "score": hit.score, "reason": reason})

    def _passage(self, hit: Hit, pack: Pack, left: int) -> Entry | None:
        first, last = hit.line or 1, hit.end_line or hit.line or 1
        row = self.catalog.item(hit.id)
        if row is None:
            self._leave(pack, hit, "removed from the index meanwhile")
            return None
        sections = self.catalog.sections_within(row["file_id"], first, last) or [
            (first, last, str(row["text"]))]
        shown = _shown(pack)
        kept = [x for x in sections if _showing(shown, hit.path, x[0], x[1]) is None]
        if not kept:
            self._leave(pack, hit, "already shown beside an image in this pack")
            return None
        text = "\n".join(_lines(plain_text(t) for _, _, t in kept))
        entry = Entry("passage", hit.id, hit.path, hit.score, text, headings=_plain(hit.headings),
                      lines=[kept[0][0], kept[-1][1]],
                      uri=obsidian_uri(self.vault_name, hit.path))
        full = entry.text
        entry.text = ""
        frame = self.cost(entry)
        room = min(PASSAGE_TOKENS, left - frame - 1)
        if room < MIN_TEXT_TOKENS:
            self._leave(pack, hit, "over the token budget")
            return None
        entry.text = self.counter.cut(full, room)
        entry.tokens = self.cost(entry)
        if entry.tokens > left:
            self._leave(pack, hit, "over the token budget")
            return None
        return entry

    def _place(self, link: dict[str, Any], shown: Shown, number: int) -> dict[str, Any]:
        """One place of a picture, as ``used_in`` lists it: its paragraphs (plain already,
        hits.py) but those the pack shows already (the same note, overlapping lines), which
        ``see`` points to; ``lines``: the line ranges its text shows whole. ``shown`` gains
        them, as entry ``number``'s."""
        kept: list[tuple[int, int, str]] = []
        see = None
        for block in link["context"]:
            text = "\n".join(_lines([block["text"]]))
            by = _showing(shown, link["note"], block["start"], block["end"])
            if by is not None:
                see = see or by
            elif text:
                kept.append((block["start"], block["end"], text))
        whole = "\n".join(t for _, _, t in kept)
        cut = self.counter.cut(whole, PLACE_TOKENS)
        room = len(cut) if cut == whole else len(cut) - 1  # less the "…"
        lines: list[list[int]] = []
        at = -1
        for first, last, text in kept:
            at += len(text) + 1
            if at > room:
                break
            lines.append([first, last])
            shown.append((link["note"], first, last, number))
        return {"note": link["note"], "line": link["line"], "headings": _plain(link["headings"]),
                "see": see, "lines": lines, "text": cut}

    def _image(self, hit: Hit, pack: Pack, left: int, share: int, options: PackOptions,
               bytes_left: int) -> Entry | None:
        row = self.catalog.item(hit.id)
        ocr = str(row["text"]) if row is not None else ""
        entry = Entry("image", hit.id, hit.path, hit.score, self.counter.cut(ocr, OCR_TOKENS),
                      kind=hit.kind, page=hit.page, more_places=hit.more_links)
        shown = _shown(pack)
        for link in hit.links:
            entry.used_in.append(self._place(link, shown, len(pack.entries) + 1))
        text_tokens = self.cost(entry)
        try:
            picture = self.pictures.load(hit.id)
        except PictureError as exc:
            self._leave(pack, hit, f"no picture: {exc.reason}")
            return None
        w, h = picture.size
        side = min(options.image_max_px, max(w, h),
                   max(MIN_IMAGE_SIDE, side_for_tokens(w, h, share)))
        floor = min(side, MIN_IMAGE_SIDE)
        # the cheapest this picture can be is at the floor: when even that is over the budget,
        # encoding it (a second or more for a big one) would only be thrown away
        if text_tokens + image_tokens(*_fitted(w, h, floor)) > left:
            self._leave(pack, hit, "over the token budget")
            return None
        try:
            encoded = encode_for_model(picture, side, min(MAX_IMAGE_BYTES, bytes_left), floor)
        except ImageError as exc:
            self._leave(pack, hit, f"over the pack's image bytes ({exc.reason})")
            return None
        cost = image_tokens(encoded.width, encoded.height)
        if text_tokens + cost > left:
            self._leave(pack, hit, "over the token budget")
            return None
        entry.image = {"mime": encoded.mime, "width": encoded.width, "height": encoded.height,
                       "tokens": cost, "bytes": len(encoded.data),
                       "url": f"/api/items/{hit.id}/image?max_px={side}"}
        if options.inline:
            entry.image["data"] = base64.b64encode(encoded.data).decode("ascii")
        entry.tokens = text_tokens + cost
        return entry
