"""Whether a hit passes the query's filters, checked against the catalog.

Tags and properties belong to notes. An image or PDF page passes a tag or property filter
when a note that places it does, so ``tag:trip kind:image`` finds the pictures of trip notes.
A note's date is its frontmatter ``date`` (or ``created``) when that is a date, otherwise the
file's modification time; an image's is its modification time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vaultlens.index.reader import Reader
from vaultlens.search.hits import Hit
from vaultlens.search.kinds import HitKind
from vaultlens.search.query import Condition, Filters, QueryError, parse_date

DATE_PROPERTIES = ("date", "created")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _normalise(text: str) -> str:
    return " ".join(text.split()).lower()


def _timestamp(value: str) -> float | None:
    """A frontmatter date ('2024-05-01', '2024-05-01T10:00') → unix seconds, or None."""
    m = _ISO_DATE.match(value.strip())
    if not m:
        return None
    try:
        return parse_date(m.group(0))
    except QueryError:
        return None


def holds(condition: Condition, values: list[tuple[str, float | None]]) -> bool:
    """Whether any of a property's values satisfies ``condition`` (ignoring ``negate``)."""
    want = condition.value.strip()
    try:
        want_number: float | None = float(want)
    except ValueError:
        want_number = None
    for text, number in values:
        if condition.op == ":":
            if want.lower() in text.lower():
                return True
            continue
        if number is not None and want_number is not None:
            a, b = number, want_number
            order = (a > b) - (a < b)
        else:
            x, y = text.lower(), want.lower()
            order = (x > y) - (x < y)
        if {"=": order == 0, "!=": order != 0, ">": order > 0, "<": order < 0,
                ">=": order >= 0, "<=": order <= 0}[condition.op]:
            return True
    return False


def passes(condition: Condition, values: list[tuple[str, float | None]]) -> bool:
    """Whether a note with these values of the condition's property (none: []) passes it."""
    return holds(condition, values) != condition.negate


class Admission:
    """Checks hits against one query's filters, phrases and excluded words."""

    def __init__(self, catalog: Reader, filters: Filters, phrases: tuple[str, ...]) -> None:
        self.catalog = catalog
        self.filters = filters
        # the tag and property filters were applied before ranking (the items they admit,
        # from index/note_scopes.py): no hit needs checking against them again
        self.notes_checked = False
        self.phrases = [_normalise(p) for p in phrases]
        self.excluded = [re.compile(rf"(?<!\w){re.escape(_normalise(w))}(?!\w)")
                         for w in filters.excluded if w.strip()]

    def admits(self, hit: Hit, ids: Sequence[int] = ()) -> bool:
        """Whether ``hit`` passes; ``ids``: all the items of a passage hit (phrases and
        excluded words are checked over all of them)."""
        f = self.filters
        if (f.kinds and hit.kind not in f.kinds) or hit.kind in f.not_kinds:
            return False
        if f.paths and not any(self._under(hit.path, p) for p in f.paths):
            return False
        if any(self._under(hit.path, p) for p in f.not_paths):
            return False
        if (self.phrases or self.excluded) and not self._words_pass(ids or [hit.id]):
            return False
        if f.before is not None or f.after is not None:
            when = self._date(hit)
            if (f.before is not None and when >= f.before) or (
                    f.after is not None and when < f.after):
                return False
        if (f.tags or f.not_tags or f.properties) and not self.notes_checked:
            notes = [hit.path] if hit.kind == HitKind.NOTE else [x["note"] for x in hit.links]
            if not any(self._note_passes(n) for n in notes):
                return False
        return True

    @staticmethod
    def _under(path: str, folder: str) -> bool:
        folder = folder.strip("/")
        return not folder or path == folder or path.startswith(folder + "/")

    def _words_pass(self, ids: Sequence[int]) -> bool:
        parts: list[str] = []
        for item_id in ids:
            fields = self.catalog.keyword_index.texts(item_id)
            item = self.catalog.item(item_id)
            parts += [item["text"] if item else "", *fields]
        text = _normalise(" ".join(parts))
        return (all(p in text for p in self.phrases)
                and not any(r.search(text) for r in self.excluded))

    def _date(self, hit: Hit) -> float:
        row = self.catalog.file(hit.path)
        if row is None:
            return 0.0
        if hit.kind == HitKind.NOTE:
            for name in DATE_PROPERTIES:
                for value, _ in self.catalog.property_values(row.id, name):
                    when = _timestamp(value)
                    if when is not None:
                        return when
        return float(row.mtime_ns) / 1e9

    def _note_passes(self, note: str) -> bool:
        row = self.catalog.file(note)
        if row is None:
            return False
        tags = {t.lower() for t in self.catalog.tags(row.id)}
        if any(not self._tagged(tags, t) for t in self.filters.tags):
            return False
        if any(self._tagged(tags, t) for t in self.filters.not_tags):
            return False
        for c in self.filters.properties:
            if not passes(c, self.catalog.property_values(row.id, c.name)):
                return False
        return True

    @staticmethod
    def _tagged(tags: set[str], tag: str) -> bool:
        """Obsidian's nested tags: tag:project matches #project and #project/alpha."""
        t = tag.lstrip("#").lower()
        return any(x == t or x.startswith(t + "/") for x in tags)
