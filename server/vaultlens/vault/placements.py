"""Placements in a note: ``![[link]]``, ``![alt](markdown)``, ``<img src>``, with line and column.

Glossary: Obsidian calls this an embed; here it is a placement (a file placed in a note, shown
where it stands), since embed/embedding means a model's vector everywhere else. Texts a user
reads (CLI, API, MCP) keep Obsidian's word.

The caller passes the note's text with code and comments already masked (see notes.py), so a
placement found here is one Obsidian would render.
"""

from __future__ import annotations

import bisect
import html
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import unquote

from vaultlens.vault.vault import FileKind, file_kind, pasted_at

# Every repeated part excludes the character that starts another placement ("[", "<"), so a line of
# ten thousand unclosed "![[" costs linear time, not quadratic. Obsidian forbids brackets in file
# names, and CommonMark forbids "<" in an <angle> destination.
_WIKI = r"!\[\[(?P<wiki>[^\[\]\n]+)\]\]"
_DEST = r"<(?P<angle>[^<>\n]*+)>|(?P<bare>[^\s()]*+(?:\([^\s()]*+\)[^\s()]*+)*+)"
_MD = (
    r"!\[(?P<alt>[^\[\]\n]*+)\]\(\s*(?:" + _DEST + r")"
    r"(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)))?\s*\)"
)
_IMG = r"<img\b(?P<attrs>[^<>]*+)>"
_PLACEMENT = re.compile(f"{_WIKI}|{_MD}|{_IMG}", re.I)
_ATTR = re.compile(r"""\b([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_SIZE = re.compile(r"^\s*(\d+)(?:\s*x\s*(\d+))?\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_PAGE = re.compile(r"(?:^|&)page=(\d+)")
EXTERNAL = "external"  # a placement's kind when its target is a URL, not a vault file


@dataclass(frozen=True)
class Placement:
    line: int  # 1-based
    column: int  # 1-based, where the "!" or "<img" starts
    raw: str
    syntax: str  # wikilink | markdown | html
    target: str  # the link path as written (decoded), without "#subpath"
    subpath: str | None  # "Heading", "^block", "page=3"; None when absent
    kind: str  # what the target looks like: image | pdf | note | other | external
    alt: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def page(self) -> int | None:
        """The 1-based page of a ``#page=N`` PDF link."""
        if self.kind != FileKind.PDF or not self.subpath:
            return None
        m = _PAGE.search(self.subpath)
        return int(m.group(1)) if m and int(m.group(1)) > 0 else None

    @property
    def pasted_at(self) -> datetime | None:
        return pasted_at(self.target)


def strip_placements(text: str) -> str:
    """The text with every placement taken out, in one linear pass."""
    return _PLACEMENT.sub(" ", text)


def _kind(target: str) -> str:
    if _SCHEME.match(target) or target.startswith("//"):
        return EXTERNAL
    if not PurePosixPath(target).suffix:
        return FileKind.NOTE  # [[Note]] means Note.md
    return file_kind(target)


def _display(parts: list[str]) -> tuple[str | None, int | None, int | None]:
    """'alt', '300' or '100x145' pieces after a '|' → (alt, width, height)."""
    alt: list[str] = []
    width = height = None
    for part in parts:
        m = _SIZE.match(part)
        if m and width is None:
            width = int(m.group(1))
            height = int(m.group(2)) if m.group(2) else None
        elif part.strip():
            alt.append(part.strip())
    return ("|".join(alt) or None), width, height


def _split_subpath(link: str) -> tuple[str, str | None]:
    path, sep, sub = link.partition("#")
    return path.strip(), (sub.strip() if sep else None)


def find_placements(masked: str, source: str) -> list[Placement]:
    """All placements in ``masked`` (same offsets as ``source``), in document order."""
    if "!" not in masked and "<" not in masked:
        return []
    line_starts = [0] + [m.end() for m in re.finditer("\n", masked)]
    out: list[Placement] = []
    for m in _PLACEMENT.finditer(masked):
        raw = source[m.start() : m.end()]
        line = bisect.bisect_right(line_starts, m.start())
        column = m.start() - line_starts[line - 1] + 1
        placement = _parse(m, raw, line, column)
        if placement is not None:
            out.append(placement)
    return out


def _parse(m: re.Match[str], raw: str, line: int, column: int) -> Placement | None:
    if m.group("wiki") is not None:
        inner = raw[3:-2].replace("\\|", "|")  # "\|" escapes the pipe inside tables
        link, *display = inner.split("|")
        target, sub = _split_subpath(link)
        if not target and not sub:
            return None
        alt, width, height = _display(display)
        return Placement(line, column, raw, "wikilink", target, sub, _kind(target), alt, width,
                         height)
    if m.group("alt") is not None:
        angle = m.group("angle")
        dest = angle if angle is not None else (m.group("bare") or "")
        alt_text = raw[2 : 2 + len(m.group("alt"))]
        alt_part, *display = alt_text.split("|")
        _, width, height = _display(display)
        if width is None:  # "![250](url)": the whole alt is a size
            size = _SIZE.match(alt_part)
            if size and not display:
                alt_part = ""
                width = int(size.group(1))
                height = int(size.group(2)) if size.group(2) else None
        return _from_dest(dest, raw, "markdown", line, column, alt_part.strip(), width, height)
    attrs = {a.group(1).lower(): next(g for g in a.groups()[1:] if g is not None)
             for a in _ATTR.finditer(m.group("attrs") or "")}
    src = html.unescape(attrs.get("src", ""))
    if not src:
        return None
    width = int(attrs["width"]) if attrs.get("width", "").isdigit() else None
    height = int(attrs["height"]) if attrs.get("height", "").isdigit() else None
    alt = html.unescape(attrs.get("alt", "")).strip()
    return _from_dest(src, raw, "html", line, column, alt, width, height)


def _from_dest(
    dest: str, raw: str, syntax: str, line: int, column: int,
    alt: str, width: int | None, height: int | None,
) -> Placement | None:
    dest = dest.strip()
    if not dest:
        return None
    if _kind(dest) == EXTERNAL:
        return Placement(line, column, raw, syntax, dest, None, EXTERNAL, alt or None, width,
                         height)
    target, sub = _split_subpath(dest)
    target = unquote(target)
    if not target:
        return None
    return Placement(
        line, column, raw, syntax, target, unquote(sub) if sub else sub, _kind(target),
        alt or None, width, height,
    )
