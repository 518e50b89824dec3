"""The query language: free words and "exact phrases", plus filters written inline.

    purple chart "friction cost" kind:image tag:pkm -draft after:2024-01 status:done ctr>5

- ``path:``, ``tag:``, ``kind:image|note|pdf``: what a hit must be, where, with which tag.
- ``before:`` / ``after:`` a date (2024, 2024-05, 2024-05-01): a note's frontmatter ``date``
  (or ``created``), otherwise the file's modification time.
- ``name:value``, ``name=value``, ``name>5``, ``name<=2024-05-01``: frontmatter properties.
  Only names the vault uses as properties count, so "10:30" or "http://x" stay plain words.
- ``-`` before a word, a phrase or a filter excludes it.

The same filters come as JSON fields through the API; both end up in one :class:`Filters`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from vaultlens.errors import VaultlensError
from vaultlens.search.kinds import HitKind

FILTER_KEYS = ("path", "tag", "kind", "before", "after")
OPERATORS = (">=", "<=", "!=", ">", "<", "=", ":")
_TOKEN = re.compile(r'(-?)(?:([\w.-]+)(>=|<=|!=|>|<|=|:))?("([^"]*)"?|\S+)')
_NAME = re.compile(r"[A-Za-z_][\w.-]*$")
_DATE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


class QueryError(VaultlensError, ValueError):
    """A filter that cannot mean anything (a bad date, an unknown kind): said, not ignored."""


@dataclass(frozen=True)
class Condition:
    """One frontmatter property test: ``name op value``; ``negate`` for a leading '-'."""

    name: str
    op: str  # one of OPERATORS (':' means 'contains', '=' means 'equals')
    value: str
    negate: bool = False


@dataclass(frozen=True)
class Filters:
    paths: tuple[str, ...] = ()  # a vault folder or file each: hits at or under any of them
    not_paths: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    not_kinds: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # notes with every one of these tags, and what they place
    not_tags: tuple[str, ...] = ()
    before: float | None = None  # unix seconds: items dated earlier than this
    after: float | None = None  # unix seconds: items dated at or after this
    properties: tuple[Condition, ...] = ()
    excluded: tuple[str, ...] = ()  # words and phrases a hit must not contain

    @property
    def active(self) -> bool:
        return any((self.paths, self.not_paths, self.kinds, self.not_kinds, self.tags,
                    self.not_tags, self.before is not None, self.after is not None,
                    self.properties))

    def merged(self, other: Filters) -> Filters:
        """Both sets of conditions (inline syntax plus JSON fields)."""
        return Filters(
            paths=self.paths + other.paths, not_paths=self.not_paths + other.not_paths,
            kinds=self.kinds + other.kinds, not_kinds=self.not_kinds + other.not_kinds,
            tags=self.tags + other.tags, not_tags=self.not_tags + other.not_tags,
            before=_earliest(self.before, other.before), after=_latest(self.after, other.after),
            properties=self.properties + other.properties,
            excluded=self.excluded + other.excluded,
        )


@dataclass(frozen=True)
class Query:
    text: str  # what is ranked: free words and phrases, without the filters
    phrases: tuple[str, ...] = ()  # "quoted": a hit must hold each, word for word
    filters: Filters = field(default_factory=Filters)


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def parse_date(value: str) -> float:
    """'2024', '2024-05' or '2024-05-01' → unix seconds (UTC) at the start of that period:
    ``before:2024-05`` is before May 2024 began, ``after:2024-05`` from its first day on."""
    m = _DATE.match(value.strip())
    if not m:
        raise QueryError(f"{value!r} is not a date: write 2024, 2024-05 or 2024-05-01")
    try:
        start = date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    except ValueError as exc:
        raise QueryError(f"{value!r} is not a date ({exc})") from exc
    return datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()


def kind_filter(value: str) -> HitKind:
    kind = value.lower()
    if kind not in tuple(HitKind):
        raise QueryError(f"kind:{value} is not a kind: use one of {', '.join(HitKind)}")
    return HitKind(kind)


def parse(text: str, is_property: Callable[[str], bool] = lambda _: False) -> Query:
    """Split a typed query into what is ranked and what filters. ``is_property`` says whether
    a name is a frontmatter property in this vault."""
    words: list[str] = []
    phrases: list[str] = []
    f: dict[str, list[object]] = {k: [] for k in (
        "paths", "not_paths", "kinds", "not_kinds", "tags", "not_tags", "properties", "excluded")}
    before: float | None = None
    after: float | None = None
    for m in _TOKEN.finditer(text):
        neg, key, op, raw, quoted = m.group(1) == "-", m.group(2), m.group(3), m.group(4), \
            m.group(5)
        value = quoted if quoted is not None else raw
        if key is not None and op == ":" and key.lower() in FILTER_KEYS and value:
            name = key.lower()
            if name == "path":
                f["not_paths" if neg else "paths"].append(value.strip("/"))
            elif name == "tag":
                f["not_tags" if neg else "tags"].append(value.lstrip("#"))
            elif name == "kind":
                f["not_kinds" if neg else "kinds"].append(kind_filter(value))
            elif name == "before":
                before = _earliest(before, parse_date(value))
            else:
                after = _latest(after, parse_date(value))
            continue
        if key is not None and op is not None and value and _NAME.match(key) \
                and is_property(key):
            f["properties"].append(Condition(key, op, value, neg))
            continue
        whole = m.group(0)[1:] if neg else m.group(0)
        if neg and whole:
            f["excluded"].append(quoted if quoted is not None and key is None else whole)
            continue
        if quoted is not None and key is None:
            if quoted.strip():
                phrases.append(quoted.strip())
                words.append(quoted.strip())
            continue
        words.append(whole)
    filters = Filters(**{k: tuple(v) for k, v in f.items()},  # type: ignore[arg-type]
                      before=before, after=after)
    return Query(" ".join(words), tuple(phrases), filters)


def fields_filters(path: str | None = None, kind: str | None = None, tag: str | None = None,
                   before: str | None = None, after: str | None = None,
                   where: str | None = None, exclude: str | None = None) -> Filters:
    """The API's JSON fields as filters; ``where`` holds property tests in the query syntax
    ("status:done ctr>5"), where every name counts as a property."""
    conditions = parse(where, lambda _: True) if where else Query("")
    if where and (conditions.text or conditions.phrases):
        raise QueryError(f"where: {where!r} holds more than property tests (name:value, "
                         "name>5, ...)")
    excluded = parse(" ".join(f"-{w}" if not w.startswith("-") else w
                              for w in _words(exclude))).filters.excluded if exclude else ()
    return Filters(
        paths=(path.strip("/"),) if path else (), kinds=(kind_filter(kind),) if kind else (),
        tags=(tag.lstrip("#"),) if tag else (),
        before=parse_date(before) if before else None,
        after=parse_date(after) if after else None,
        properties=conditions.filters.properties, excluded=tuple(excluded),
    )


def _words(text: str) -> list[str]:
    """Words and "quoted phrases", each kept whole."""
    return [m.group(0) for m in re.finditer(r'"[^"]*"|\S+', text)]
