"""The requests the daemon answers, each declared once: its fields, types, defaults, bounds
and descriptions.

From these types come the API's body checks (``parse``), the OpenAPI document's request
schemas (``fields_of`` → ``api.body_schema``) and the MCP tools' input schemas (the same
function), so the two ways in cannot drift apart. A field that is not given, or is null,
takes its default here and nowhere else. The pack's defaults are the packer's own
(``search/pack.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from vaultlens.search.kinds import HitKind
from vaultlens.search.pack import BUDGET_TOKENS, MAX_IMAGE_SIDE, MAX_IMAGES
from vaultlens.serve.api import DATE, PROPERTY_TESTS, VAULT_PATH, Field, check_fields

R = TypeVar("R")
MAX_READ_LINES = 400  # lines a read returns at most
_PATH_SHAPE = "a vault path"
_DATE_SHAPE = "a date: write 2024, 2024-05 or 2024-05-01"


def spec(description: str, default: Any = None, *, required: bool = False,
         minimum: int | None = None, maximum: int | None = None,
         choices: tuple[str, ...] = (), min_length: int = 0, pattern: str = "",
         shape: str = "") -> Any:
    """A request field: its default and what ``check_fields`` holds it to."""
    rules = {"description": description, "required": required, "minimum": minimum,
             "maximum": maximum, "choices": choices, "min_length": min_length,
             "pattern": pattern, "shape": shape, "default": default}
    if required:
        return dataclasses.field(metadata={"rules": rules})
    return dataclasses.field(default=default, metadata={"rules": rules})


@dataclass(frozen=True)
class Filtered:
    """A query and the filters a search and a context pack share."""

    query: str = spec("what to look for, in any words; may hold filters such as "
                      "path:Folder tag:x kind:image -word", required=True)
    path: str | None = spec("only hits at or under this vault path", pattern=VAULT_PATH,
                            shape=_PATH_SHAPE)
    kind: str | None = spec("only this kind", choices=tuple(k.value for k in HitKind))
    tag: str | None = spec("only notes with this tag, and what they embed")
    before: str | None = spec("only items dated before this (2024, 2024-05, 2024-05-01): a "
                              "note's frontmatter date or created, else the file time",
                              pattern=DATE, shape=_DATE_SHAPE)
    after: str | None = spec("only items dated on or after this", pattern=DATE,
                             shape=_DATE_SHAPE)
    where: str | None = spec("frontmatter property tests, as in the query syntax: "
                             "'status:done ctr>5 -draft:true'", pattern=PROPERTY_TESTS,
                             shape="property tests alone (name:value, name>5, ...)")
    exclude: str | None = spec("words or \"phrases\" a hit must not contain")


@dataclass(frozen=True)
class SearchRequest(Filtered):
    k: int = spec("how many results", 10, minimum=1, maximum=100)
    offset: int = spec("skip this many results", 0, minimum=0, maximum=1000)
    image: str | None = spec("a vault image to search with, alone or with the query text "
                             "(needs a visual model)", min_length=1, pattern=VAULT_PATH,
                             shape=_PATH_SHAPE)
    literal: bool = spec("the query is prose to find things like, not syntax: no filters, "
                         "phrases or -words are read from it", False)


@dataclass(frozen=True)
class ContextRequest(Filtered):
    budget_tokens: int = spec("the most tokens the pack may cost", BUDGET_TOKENS,
                              minimum=100, maximum=200_000)
    max_images: int = spec("the most pictures in the pack", MAX_IMAGES, minimum=0,
                           maximum=16)
    image_max_px: int = spec("the longest side of a picture", MAX_IMAGE_SIDE, minimum=64,
                             maximum=MAX_IMAGE_SIDE)
    inline: bool = spec("pictures as base64 in the pack, not as URLs", False)


@dataclass(frozen=True)
class ReadRequest:
    path: str = spec("a vault note, image or PDF", required=True, min_length=1,
                     pattern=VAULT_PATH, shape=_PATH_SHAPE)
    start_line: int = spec("a note's first line (1-based)", 1, minimum=1)
    end_line: int | None = spec(f"a note's last line, not before start_line (default: "
                                f"{MAX_READ_LINES} lines on)", minimum=1)
    page: int = spec("a PDF's page", 1, minimum=1)
    max_px: int = spec("a picture's longest side", MAX_IMAGE_SIDE, minimum=64,
                       maximum=MAX_IMAGE_SIDE)


@dataclass(frozen=True)
class SimilarRequest:
    path: str = spec("a vault image, PDF or note path", required=True, min_length=1,
                     pattern=VAULT_PATH, shape=_PATH_SHAPE)
    k: int = spec("how many results", 10, minimum=1, maximum=100)


@dataclass(frozen=True)
class StatusRequest:
    """Status takes nothing; a type all the same, so the tool's schema comes from here."""


@dataclass(frozen=True)
class ReindexRequest:
    path: str = spec("a vault path to index now", required=True, min_length=1,
                     pattern=VAULT_PATH, shape=_PATH_SHAPE)


_JSON_KINDS = (str, int, bool, float)


def _kind(hint: Any) -> type:
    """``int`` of ``int`` and of ``int | None``."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint not in _JSON_KINDS:
        raise TypeError(f"a request field must be one of {_JSON_KINDS}, not {hint!r}")
    return typing.cast(type, hint)


@functools.cache
def fields_of(kind: type) -> dict[str, Field]:
    """The fields of a request type, as ``check_fields`` and ``body_schema`` take them."""
    hints = typing.get_type_hints(kind)
    return {f.name: Field(_kind(hints[f.name]), **f.metadata["rules"])
            for f in dataclasses.fields(kind)}


def parse(kind: type[R], body: Any) -> R:
    """``body`` (a JSON object) as a request of this type; Invalid says what is wrong."""
    fields = fields_of(typing.cast(type, kind))
    given = check_fields(dict(body) if isinstance(body, dict) else body, fields)
    return kind(**given)


def as_body(request: Any) -> dict[str, Any]:
    """A request as the JSON body that ``parse`` reads back to it (what is not given left
    out)."""
    return {name: value for name, value in dataclasses.asdict(request).items()
            if value is not None}
