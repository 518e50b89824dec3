"""Each placed image or PDF → the paragraphs around it: the heart of the product.

For a placement (``![[shot.png]]``, see placements.py) we keep the block that contains it (the
list item, for a list), the nearest block of real text before it and after it within the same
heading section, the heading path, the caption (alt text) and the note title, all within a
character budget. A placement that stands alone in its paragraph gets real text from its
neighbours; where its heading section has none, the scope widens to the enclosing heading's
section.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vaultlens.vault.links import Resolver
from vaultlens.vault.notefile import MAX_NOTE_MB, NoteTooLarge, note_bytes
from vaultlens.vault.notes import Note, NoteParser, Section
from vaultlens.vault.placements import EXTERNAL, Placement, strip_placements
from vaultlens.vault.vault import FileKind, Problem, Refused, Vault, open_file

_CONTENT_KINDS = frozenset({"paragraph", "list", "callout", "blockquote", "table", "text"})
# a real word, or one Han character: narrower than text.CJK (no kana or hangul), and which
# neighbours count as real text depends on it
_WORD = re.compile(r"[^\W\d_]{2,}|[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class ContextBlock:
    start: int  # 1-based, inclusive
    end: int
    text: str
    role: str  # containing | before | after | beside (a card or text element, not a paragraph)

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "role": self.role}


@dataclass(frozen=True)
class PlacementLink:
    """One place where an image or PDF is placed, with the text around it."""

    note: str
    placement: Placement
    target: str | None  # vault-relative path, None when unresolved or external
    kind: str  # image | pdf | external
    reason: str | None  # why target is None
    title: str
    headings: tuple[str, ...]
    context: tuple[ContextBlock, ...]

    @property
    def line(self) -> int:
        return self.placement.line

    def to_json(self) -> dict[str, Any]:
        pasted = self.placement.pasted_at
        return {
            "target": self.target,
            "kind": self.kind,
            "note": self.note,
            "line": self.placement.line,
            "column": self.placement.column,
            "raw": self.placement.raw,
            "link": self.placement.target,
            "page": self.placement.page,
            "caption": self.placement.alt,
            "width": self.placement.width,
            "height": self.placement.height,
            "pasted_at": pasted.isoformat() if pasted else None,
            "reason": self.reason,
            "title": self.title,
            "headings": list(self.headings),
            "context": [c.to_json() for c in self.context],
        }


def has_words(text: str) -> bool:
    """Does the text hold real words once the placements in it are taken out?"""
    return _WORD.search(strip_placements(text)) is not None


def text_flags(note: Note) -> list[bool]:
    """For each section: is it content with real words? Computed once per note, because
    every placement's context asks it of its neighbours (a gallery of 1,500 images asked it
    millions of times)."""
    return [s.kind in _CONTENT_KINDS and has_words(s.text) for s in note.sections]


def _clip(section: Section, budget: int, keep: str, line: int = 0) -> ContextBlock | None:
    """Whole lines of ``section`` within ``budget`` chars: head, tail, or around ``line``."""
    if budget <= 0:
        return None
    role = "containing" if keep == "around" else keep
    lines = section.text.split("\n")
    if len(section.text) <= budget:
        return ContextBlock(section.start, section.end, section.text, role)
    if keep == "before":
        order = list(range(len(lines) - 1, -1, -1))
    elif keep == "after":
        order = list(range(len(lines)))
    else:  # grow outwards from the placement's line
        at = min(max(line - section.start, 0), len(lines) - 1)
        order = [at]
        for d in range(1, len(lines)):
            order += [j for j in (at - d, at + d) if 0 <= j < len(lines)]
    chosen: list[int] = []
    used = 0
    for j in order:
        if used + len(lines[j]) + 1 > budget and chosen:
            break
        chosen.append(j)
        used += len(lines[j]) + 1
    a, b = min(chosen), max(chosen)
    text = "\n".join(lines[a : b + 1])
    if len(text) > budget:  # one line longer than the budget: cut it around the placement
        text = text[-budget:] if keep == "before" else text[:budget]
    return ContextBlock(section.start + a, section.start + b, text, role)


def _scope(sections: list[Section], i: int, limit: int) -> tuple[int, int]:
    """Indices [lo, hi) around i up to the headings whose depth is <= limit."""
    def stops(s: Section) -> bool:
        return s.kind == "heading" and len(s.headings) <= limit

    lo = i
    while lo > 0 and not stops(sections[lo - 1]):
        lo -= 1
    hi = i + 1
    while hi < len(sections) and not stops(sections[hi]):
        hi += 1
    return lo, hi


def _neighbours(note: Note, i: int, own_words: bool, flags: list[bool]
                ) -> tuple[Section | None, Section | None]:
    """Nearest real-text sections before and after section i, in the narrowest scope that has
    some (the placement's own heading section first)."""
    sections = note.sections
    depth = len(sections[i].headings)
    for limit in [99, *range(depth, -1, -1)]:
        lo, hi = _scope(sections, i, limit)
        before = next((sections[j] for j in range(i - 1, lo - 1, -1) if flags[j]), None)
        after = next((sections[j] for j in range(i + 1, hi) if flags[j]), None)
        if before or after or own_words:
            return before, after
    return None, None


def placement_context(note: Note, placement: Placement, budget: int,
                  flags: list[bool] | None = None) -> tuple[ContextBlock, ...]:
    """The containing block first, then the nearest real text before and after.
    ``flags``: text_flags(note), passed in when linking many placements of one note."""
    i = note.section_index(placement.line)
    if i is None:
        return ()
    flags = text_flags(note) if flags is None else flags
    section = block = note.sections[i]
    own_words = flags[i]
    for a, b in section.items:
        if a <= placement.line <= b:
            lines = note.section_lines[i][a - section.start : b - section.start + 1]
            block = Section(section.kind, a, b, "\n".join(lines), section.headings)
            own_words = has_words(block.text)
    before, after = _neighbours(note, i, own_words, flags)
    out: list[ContextBlock] = []
    share = budget // 2 if (before or after) else budget
    containing: ContextBlock | None
    if len(block.text) > 4 * share:
        # a huge block (a 5 MB one-line note with thousands of placements): cut a window of
        # characters around this placement, so no placement costs the whole block
        containing = _window(note.section_lines[i], section.start, block, placement, share)
    else:
        containing = _clip(block, share, "around", placement.line)
    if containing:
        out.append(containing)
        budget -= len(containing.text)
    if before and after:
        first = _clip(before, budget // 2, "before")
        second = _clip(after, budget - (len(first.text) if first else 0), "after")
    else:
        first = _clip(before, budget, "before") if before else None
        second = _clip(after, budget, "after") if after else None
    out += [c for c in (first, second) if c]
    return tuple(out)


def beside_context(note: Note, starts: tuple[int, ...], budget: int) -> tuple[ContextBlock, ...]:
    """The sections that start on ``starts`` (a canvas's cards around a file node, a drawing's
    text elements), nearest first, within ``budget`` characters in all."""
    out: list[ContextBlock] = []
    for line in starts:
        section = note.section_at(line)
        if section is None or not has_words(section.text):
            continue
        block = _clip(section, budget, "after")
        if block is None:
            break
        out.append(ContextBlock(block.start, block.end, block.text, "beside"))
        budget -= len(block.text)
    return tuple(out)


def _window(lines: list[str], first: int, block: Section, placement: Placement,
            budget: int) -> ContextBlock:
    """About ``budget`` characters of the lines around the placement's own line."""
    at = placement.line - first
    text = lines[at]
    lo = max(0, placement.column - 1 - budget // 2)
    cut = text[lo : lo + budget]
    start = end = placement.line
    room = budget - len(cut)
    for j in range(at - 1, block.start - first - 1, -1):  # whole lines above, while they fit
        if len(lines[j]) + 1 > room:
            break
        cut, room, start = lines[j] + "\n" + cut, room - len(lines[j]) - 1, start - 1
    for j in range(at + 1, block.end - first + 1):
        if len(lines[j]) + 1 > room:
            break
        cut, room, end = cut + "\n" + lines[j], room - len(lines[j]) - 1, end + 1
    return ContextBlock(start, end, cut, "containing")


@dataclass
class LinkedVault:
    """A vault read and linked: every note parsed, every image/PDF placement with its context."""

    vault: Vault
    notes: dict[str, Note] = field(default_factory=dict)
    links: list[PlacementLink] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def links_to(self, path: str) -> list[PlacementLink]:
        return [link for link in self.links if link.target == path]

    def unplaced(self, kinds: tuple[str, ...] = (FileKind.IMAGE, FileKind.PDF)) -> list[str]:
        """Images and PDFs that no note places: still known, still indexed."""
        used = {link.target for link in self.links}
        return [f.path for f in self.vault.files if f.kind in kinds and f.path not in used]


def link_note(
    note: Note, resolver: Resolver, kinds: Mapping[str, str], budget: int
) -> list[PlacementLink]:
    """Image, PDF and external placements of one note, resolved, each with its context."""
    out: list[PlacementLink] = []
    flags = text_flags(note)
    for placement in note.placements:
        target: str | None = None
        reason: str | None = "external URL; not indexed"
        kind: str = EXTERNAL
        if placement.kind != EXTERNAL:
            res = resolver.resolve(placement.target, note.path)
            kind = kinds.get(res.path, FileKind.OTHER) if res.path else placement.kind
            target, reason = res.path, res.reason
        if kind not in (FileKind.IMAGE, FileKind.PDF, EXTERNAL):
            continue  # notes placed and other files are recorded on the note, not linked here
        section = note.section_at(placement.line)
        headings = section.headings if section else ()
        # title, headings and caption travel with the context, so they spend the same budget
        spent = len(note.title) + sum(len(h) for h in headings) + len(placement.alt or "")
        out.append(
            PlacementLink(
                note=note.path, placement=placement, target=target, kind=kind, reason=reason,
                title=note.title, headings=headings,
                context=(beside_context(note, note.beside[placement.line], max(budget - spent, 100))
                         if placement.line in note.beside else
                         placement_context(note, placement, max(budget - spent, 100), flags)),
            )
        )
    return out


def read_note(vault: Vault, path: str, parser: NoteParser) -> tuple[Note | None, Problem | None]:
    """Read and parse one note; a file we cannot read is a Problem, never an exception."""
    try:  # a regular file of the vault, opened without blocking (vault.open_file)
        with open_file(vault.root, path) as fh:
            data = note_bytes(fh, path)
    except NoteTooLarge:  # the links report words the cap its own way
        return None, Problem(path, f"larger than {MAX_NOTE_MB} MB; not parsed")
    except Refused as exc:
        return None, Problem(exc.path, exc.reason)
    except OSError as exc:
        return None, Problem(path, f"cannot read: {exc.strerror or exc}")
    note = parser.parse_bytes(data, path)
    problem = Problem(path, "; ".join(note.problems)) if note.problems else None
    return note, problem


def link_vault(vault: Vault, parser: NoteParser, budget: int) -> LinkedVault:
    """Parse every note of a scanned vault and link every image/PDF placement to its context."""
    linked = LinkedVault(vault=vault, problems=list(vault.problems))
    resolver = Resolver(f.path for f in vault.files)
    kinds = {f.path: f.kind for f in vault.files}
    for f in vault.by_kind(FileKind.NOTE):
        note, problem = read_note(vault, f.path, parser)
        if problem:
            linked.problems.append(problem)
        if note is None:
            continue
        linked.notes[f.path] = note
        linked.links += link_note(note, resolver, kinds, budget)
    return linked
