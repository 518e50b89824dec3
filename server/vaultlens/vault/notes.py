"""A note's markdown → sections with 1-based line ranges, frontmatter, tags, block ids and
placements.

Sections follow Obsidian's own model (its metadata cache ``sections``): one per top-level block.
Code, inline code, ``%% comments %%`` and HTML comments are *masked* (overwritten with spaces,
keeping every offset) before placements, tags and block ids are looked for, so nothing inside them
counts, and every position found in the masked text is a position in the source.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any

import yaml
from markdown_it import MarkdownIt

from vaultlens.vault.drawing import is_drawing, prepare_drawing
from vaultlens.vault.placements import Placement, find_placements
from vaultlens.vault.vault import CANVAS_EXTENSION

try:  # the C loader is ~10x faster; PyYAML wheels ship it, source builds may not
    _YamlLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YamlLoader = yaml.SafeLoader


@dataclass(frozen=True)
class Section:
    kind: str  # yaml heading paragraph list callout blockquote table code html comment hr text
    start: int  # 1-based, inclusive
    end: int  # 1-based, inclusive
    text: str  # the source lines
    headings: tuple[str, ...]  # heading path; a heading section's path ends with itself
    level: int = 0  # heading level, 0 for other kinds
    items: tuple[tuple[int, int], ...] = ()  # list sections: top-level items' line ranges
    block_id: str | None = None


@dataclass
class Note:
    path: str
    title: str
    sections: list[Section] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)  # frontmatter and inline, without '#'
    aliases: list[str] = field(default_factory=list)
    block_ids: dict[str, tuple[int, int]] = field(default_factory=dict)
    placements: list[Placement] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # e.g. a broken frontmatter block
    line_count: int = 0
    # a placement's line → the lines of the sections that are its context, where the file
    # says so (a canvas's cards around a file node, a drawing's text elements); a placement
    # not here takes the paragraphs around its line (context.py)
    beside: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @cached_property
    def _starts(self) -> list[int]:
        return [s.start for s in self.sections]

    def section_index(self, line: int) -> int | None:
        """Index of the section holding a 1-based line; None for a blank line between sections."""
        i = bisect.bisect_right(self._starts, line) - 1
        if i >= 0 and self.sections[i].start <= line <= self.sections[i].end:
            return i
        return None

    @cached_property
    def section_lines(self) -> list[list[str]]:
        """Each section's lines, split once (context building reads them per placement)."""
        return [s.text.split("\n") for s in self.sections]

    def section_at(self, line: int) -> Section | None:
        i = self.section_index(line)
        return None if i is None else self.sections[i]


_TAG = re.compile(r"(?:(?<=\s)|^)#([^\s!\"#$%&'()*+,.:;<=>?@\[\]^`{|}~\\]+)", re.M)
_BLOCK_ID = re.compile(r"(?:^|\s)\^([A-Za-z0-9-]+)[ \t]*$")
_CALLOUT = re.compile(r"^[ \t]*>[ \t]*\[!")
_COMMENT = re.compile(r"%%.*?(?:%%|\Z)|<!--.*?(?:-->|\Z)", re.S)
_TICKS = re.compile(r"`+")
_LIST_SPLIT = re.compile(r"[,\s]+")
_BLOCK_TYPES = {
    "heading_open": "heading",
    "paragraph_open": "paragraph",
    "bullet_list_open": "list",
    "ordered_list_open": "list",
    "blockquote_open": "blockquote",
    "table_open": "table",
    "fence": "code",
    "code_block": "code",
    "html_block": "html",
    "hr": "hr",
}


def _blank(s: str) -> str:
    """Spaces in place of every character but newlines, so offsets and line numbers survive."""
    return re.sub(r"[^\n]", " ", s)


def _code_spans(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """CommonMark code spans in text[lo:hi]: a run of n backticks closed by the next run of n."""
    runs = [(m.start(), m.end() - m.start()) for m in _TICKS.finditer(text, lo, hi)]
    by_len: dict[int, list[int]] = {}
    for i, (_, n) in enumerate(runs):
        by_len.setdefault(n, []).append(i)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(runs):
        start, n = runs[i]
        if start > 0 and text[start - 1] == "\\":  # an escaped backtick opens nothing
            i += 1
            continue
        same = by_len[n]
        k = bisect.bisect_right(same, i)
        if k < len(same):
            j = same[k]
            spans.append((start, runs[j][0] + n))
            i = j + 1
        else:
            i += 1
    return spans


def _split_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v for v in _LIST_SPLIT.split(value) if v]
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and str(v).strip()]
    return [] if value is None else [str(value)]


def decode(data: bytes) -> tuple[str | None, str | None]:
    """Bytes of a .md file → (text, None), or (None, reason) when it is not text."""
    if b"\x00" in data[:8192]:
        return None, "binary content (NUL bytes) in a .md file; not parsed"
    text = data.decode("utf-8-sig", errors="replace")
    return text, None


class NoteParser:
    """Parses notes. Holds the markdown-it grammar, built once; cheap to share across notes."""

    def __init__(self) -> None:
        # Only the block structure matters here; the inline pass is a third of the cost.
        self._md = MarkdownIt("commonmark", {"html": True}).enable("table").disable("inline")

    def parse_bytes(self, data: bytes, path: str) -> Note:
        if path.lower().endswith(CANVAS_EXTENSION):
            # a canvas is JSON, read by its own module, which builds on this one's Note
            from vaultlens.vault.canvas import parse_canvas
            return parse_canvas(data, path)
        text, problem = decode(data)
        if text is None:
            return Note(path=path, title=PurePosixPath(path).stem, problems=[str(problem)])
        return self.parse(text, path)

    def parse(self, text: str, path: str) -> Note:
        text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        text = text.replace("\x00", "\ufffd")
        lines = text.split("\n")
        if lines and lines[-1] == "" and len(lines) > 1:
            lines.pop()  # a final newline ends the last line; it does not start another
        note = Note(path=path, title=PurePosixPath(path).stem, line_count=len(lines))
        drawn: list[Placement] = []
        texts: list[int] = []
        if is_drawing(path, lines):  # its drawing data blanked: never words, never code
            lines, drawn, texts = prepare_drawing(lines)
        body_lines = list(lines)
        sections: list[Section] = []

        fm_end = self._frontmatter(lines, note)
        if fm_end:
            for i in range(fm_end):  # spaces, not "", so offsets into the text survive
                body_lines[i] = " " * len(lines[i])
            sections.append(Section("yaml", 1, fm_end, "\n".join(lines[:fm_end]), ()))

        body = "\n".join(body_lines)
        tokens = self._md.parse(body)
        masked, hidden = self._mask(body, body_lines, tokens)
        if hidden:  # a comment hid whole lines: its paragraphs are not paragraphs
            comment_only = "\n".join(
                "" if i in hidden else line for i, line in enumerate(body_lines)
            )
            tokens = self._md.parse(comment_only)

        sections += self._sections(tokens, body_lines, hidden)
        sections.sort(key=lambda s: s.start)
        note.sections = self._with_block_ids(sections, masked.split("\n"), note)
        note.placements = find_placements(masked, "\n".join(lines))
        if drawn:
            note.placements = sorted(note.placements + drawn, key=lambda p: (p.line, p.column))
            starts = tuple(dict.fromkeys(
                s.start for line in texts if (s := note.section_at(line)) is not None))
            note.beside.update((p.line, starts) for p in drawn)
        for tag in _TAG.findall(masked):
            if not tag.strip("/").isdigit() and tag not in note.tags:
                note.tags.append(tag)
        return note

    def _frontmatter(self, lines: list[str], note: Note) -> int:
        """Parse a leading ``---`` block; return how many lines it takes (0 when there is none)."""
        if not lines or lines[0].rstrip() != "---":
            return 0
        close = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
        if close is None:
            return 0  # Obsidian too reads an unclosed block as ordinary markdown
        try:
            data = yaml.load("\n".join(lines[1:close]), Loader=_YamlLoader)
        except yaml.YAMLError as exc:
            note.problems.append(f"frontmatter is not valid YAML: {_one_line(exc)}")
            return close + 1
        if data is None:
            return close + 1
        if not isinstance(data, dict):
            note.problems.append("frontmatter is not a mapping of properties; ignored")
            return close + 1
        note.properties = {str(k): v for k, v in data.items()}
        for key in ("tags", "tag"):
            for t in _split_list(note.properties.get(key)):
                t = t.lstrip("#")
                if t and t not in note.tags:
                    note.tags.append(t)
        for key in ("aliases", "alias"):
            value = note.properties.get(key)
            names = [value] if isinstance(value, str) else _split_list(value)
            note.aliases += [a.strip() for a in names if a.strip()]
        return close + 1

    def _mask(self, body: str, lines: list[str], tokens: list[Any]) -> tuple[str, set[int]]:
        """Mask code blocks, inline code and comments. Return the masked text and the 0-based
        indices of non-blank lines that a comment hid completely."""
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line) + 1)
        chars = list(body)
        for t in tokens:
            if t.map is None or t.level != 0:
                continue
            a, b = t.map
            if t.type in ("fence", "code_block"):
                for i in range(starts[a], min(starts[b], len(chars))):
                    if chars[i] != "\n":
                        chars[i] = " "
            elif t.type != "html_block" and t.nesting == 1:
                for x, y in _code_spans(body, starts[a], min(starts[b], len(body))):
                    chars[x:y] = _blank(body[x:y])
        code_masked = "".join(chars)
        if "%%" not in code_masked and "<!--" not in code_masked:
            return code_masked, set()
        masked = _COMMENT.sub(lambda m: _blank(m.group(0)), code_masked)
        hidden = {
            i
            for i, (before, after) in enumerate(
                zip(code_masked.split("\n"), masked.split("\n"), strict=True)
            )
            if before.strip() and not after.strip()
        }
        return masked, hidden

    def _sections(self, tokens: list[Any], lines: list[str], hidden: set[int]) -> list[Section]:
        out: list[Section] = []
        covered: set[int] = set()
        path: list[tuple[int, str]] = []  # (level, text) of the open headings
        i = 0
        while i < len(tokens):
            t = tokens[i]
            kind = _BLOCK_TYPES.get(t.type) if t.level == 0 else None
            if kind is None or t.map is None:
                i += 1
                continue
            a, b = t.map
            while b > a + 1 and not lines[b - 1].strip():
                b -= 1
            level = 0
            items: tuple[tuple[int, int], ...] = ()
            if kind == "heading":
                level = int(t.tag[1:])
                # markdown-it has dropped the "#" marks; a trailing "^id" is not shown either
                title = _BLOCK_ID.sub("", tokens[i + 1].content).strip()
                while path and path[-1][0] >= level:
                    path.pop()
                path.append((level, title))
            elif kind == "blockquote" and _CALLOUT.match(lines[a]):
                kind = "callout"
            elif kind == "list":
                items = tuple(_list_items(tokens, i, lines))
            elif kind == "html" and all(j in hidden or not lines[j].strip() for j in range(a, b)):
                kind = "comment"
            text = "\n".join(lines[a:b])
            out.append(Section(kind, a + 1, b, text, tuple(p[1] for p in path), level, items))
            covered.update(range(a, b))
            i += 1
        return out + _gaps(lines, covered, hidden, out)

    def _with_block_ids(
        self, sections: list[Section], masked_lines: list[str], note: Note
    ) -> list[Section]:
        result: list[Section] = []
        for s in sections:
            for a, b in s.items:  # each list item can carry its own id
                m = _BLOCK_ID.search(masked_lines[b - 1])
                if m:
                    note.block_ids[m.group(1)] = (a, b)
            m = None if s.kind in ("yaml", "code") else _BLOCK_ID.search(masked_lines[s.end - 1])
            if m is None:
                result.append(s)
                continue
            block_id = m.group(1)
            if s.items:  # the id on the last line named the last item, recorded above
                result.append(s)
                continue
            if s.text.strip() == "^" + block_id and result:
                # "^id" alone on its line names the block before it (lists, tables, quotes)
                prev = result[-1]
                result[-1] = replace(prev, block_id=block_id)
                note.block_ids[block_id] = (prev.start, prev.end)
                result.append(s)
                continue
            note.block_ids[block_id] = (s.start, s.end)
            result.append(replace(s, block_id=block_id))
        return result


def _list_items(tokens: list[Any], i: int, lines: list[str]) -> list[tuple[int, int]]:
    items = []
    for t in tokens[i + 1 :]:
        if t.level == 0:
            break
        if t.type == "list_item_open" and t.level == 1 and t.map is not None:
            a, b = t.map
            while b > a + 1 and not lines[b - 1].strip():
                b -= 1
            items.append((a + 1, b))
    return items


def _gaps(
    lines: list[str], covered: set[int], hidden: set[int], blocks: list[Section]
) -> list[Section]:
    """Non-blank lines no block claimed (link reference definitions, lines a comment hid)
    become sections too, so that every line of text belongs somewhere."""
    out: list[Section] = []
    run: list[int] = []
    starts = [s.start for s in sorted(blocks, key=lambda s: s.start)]
    heads = sorted(blocks, key=lambda s: s.start)

    def flush() -> None:
        if not run:
            return
        a, b = run[0], run[-1]
        kind = "comment" if all(j in hidden for j in run) else "text"
        k = bisect.bisect_right(starts, a + 1) - 1
        headings = heads[k].headings if k >= 0 else ()
        out.append(Section(kind, a + 1, b + 1, "\n".join(lines[a : b + 1]), headings))
        run.clear()

    for j, line in enumerate(lines):
        if j in covered or not line.strip():
            flush()
        else:
            run.append(j)
    flush()
    return out


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
