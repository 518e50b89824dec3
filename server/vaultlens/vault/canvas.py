"""A JSON Canvas board (``.canvas``, core Obsidian) read as a note: its text cards are its
passages, its file nodes its placements, and each placed picture has the cards around it as
its context, as a screenshot in a note has its paragraph.

JSON Canvas 1.0: ``nodes`` (``id``, ``type`` text | file | link | group, ``x``, ``y``,
``width``, ``height``; ``text``; ``file`` and ``subpath``; ``url``; ``label``) and ``edges``
(``fromNode``, ``toNode``, ``label``).

Each node is given a line of its own: the line of the file that holds it where every node
has one (Obsidian writes one node a line, so reading a hit's lines shows its card), else its
place in ``nodes``, 1-based (a canvas written on one line). A card is a section on its line,
a file node a placement on its line; the context of a placement names the cards' lines,
which is how the index ties a picture to the passages around it, for notes and canvases
alike. A group's label and the labels of the edges that touch a card are words of that card
(its headings).

Which cards are around a placed file: those joined to it by an edge, then those in the
smallest group that holds it, and failing both the nearest cards by position.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from vaultlens.vault.notes import Note, Section
from vaultlens.vault.placements import EXTERNAL, Placement, find_placements
from vaultlens.vault.vault import file_kind

MAX_NODES = 5_000  # a board past this is not one a person reads
MAX_GROUPS = 200  # groups a card is looked for in: each card is held to each group
NEAREST = 3  # cards lent to a placed file that no edge or group ties to any card
CARD = "card"  # a section's kind for a text card (and a link card: its URL)
FILE = "file"  # a section's kind for a file node: its path, never searched as a passage


@dataclass(frozen=True)
class _Node:
    line: int
    id: str
    type: str
    box: tuple[float, float, float, float] | None  # x, y, width, height
    data: dict[str, Any]

    @property
    def centre(self) -> tuple[float, float] | None:
        if self.box is None:
            return None
        x, y, w, h = self.box
        return x + w / 2, y + h / 2

    def inside(self, group: _Node) -> bool:
        if self.box is None or group.box is None or group is self:
            return False
        x, y, w, h = self.box
        gx, gy, gw, gh = group.box
        return gx <= x and gy <= y and x + w <= gx + gw and y + h <= gy + gh


def _number(value: Any) -> float | None:
    """A finite coordinate, or None: JSON allows integers no float can hold (1e400 as digits)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


_ID = re.compile(r'"id"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _file_lines(text: str, ids: list[str]) -> dict[str, int] | None:
    """Each node's line in the file, when every node has a line to itself; else None."""
    first: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), 1):
        for m in _ID.finditer(line):
            try:
                first.setdefault(json.loads(f'"{m.group(1)}"'), number)
            except ValueError:
                continue
    lines = [first.get(i) for i in ids]
    if None in lines or len(set(lines)) != len(lines):
        return None
    return dict(zip(ids, lines, strict=True))  # type: ignore[arg-type]


def _nodes(raw: list[Any], problems: list[str]) -> list[_Node]:
    nodes: list[_Node] = []
    bad = 0
    for i, n in enumerate(raw[:MAX_NODES]):
        if not (isinstance(n, dict) and isinstance(n.get("id"), str)
                and isinstance(n.get("type"), str)):
            bad += 1
            continue
        xs = [_number(n.get(k)) for k in ("x", "y", "width", "height")]
        box = None if any(v is None for v in xs) else (xs[0], xs[1], xs[2], xs[3])
        nodes.append(_Node(i + 1, n["id"], n["type"], box, n))  # type: ignore[arg-type]
    if bad:
        problems.append(f"{bad} canvas node(s) without an id and a type; left out")
    if len(raw) > MAX_NODES:
        problems.append(f"more than {MAX_NODES:,} nodes; the rest left out")
    return nodes


def _edges(raw: Any, ids: set[str]) -> list[tuple[str, str, str]]:
    """(from, to, label) of each edge between two known nodes."""
    out = []
    for e in raw if isinstance(raw, list) else []:
        if not isinstance(e, dict):
            continue
        ends = e.get("fromNode"), e.get("toNode")
        if all(isinstance(end, str) and end in ids for end in ends):
            label = e.get("label")
            out.append((str(e["fromNode"]), str(e["toNode"]),
                        label.strip() if isinstance(label, str) else ""))
    return out


def _groups_of(node: _Node, groups: list[_Node]) -> list[_Node]:
    """The groups holding ``node``, outermost first (the larger holds the smaller)."""
    held = [g for g in groups if node.inside(g)]
    return sorted(held, key=lambda g: -(g.box[2] * g.box[3]) if g.box else 0.0)


class _Board:
    """The relations between nodes, each computed in one pass: a hostile board of
    MAX_NODES nodes and as many edges costs milliseconds, not a worker's minutes."""

    def __init__(self, nodes: list[_Node], edges: list[tuple[str, str, str]],
                 problems: list[str]) -> None:
        self.nodes = nodes
        self.by_id = {n.id: n for n in nodes}
        self.joined: dict[str, list[tuple[str, str]]] = defaultdict(list)  # id → (other, label)
        for a, b, label in edges:
            self.joined[a].append((b, label))
            self.joined[b].append((a, label))
        self.groups = [n for n in nodes if n.type == "group"]
        if len(self.groups) > MAX_GROUPS:
            problems.append(f"more than {MAX_GROUPS} groups; cards are looked for in the first")
            self.groups = self.groups[:MAX_GROUPS]
        self.cards = [n for n in nodes if n.type in ("text", "link") and self.words(n)]
        self._held: dict[str, list[int]] = {}
        placed = [c for c in self.cards if c.centre is not None]
        self._lines = np.array([c.line for c in placed], dtype=np.int64)
        self._centres = np.array([c.centre for c in placed], dtype=np.float64).reshape(-1, 2)

    @staticmethod
    def words(n: _Node) -> str:
        value = n.data.get("text") if n.type == "text" else n.data.get("url")
        return value.strip() if isinstance(value, str) else ""

    def group_labels(self, node: _Node) -> tuple[str, ...]:
        """The labels of the groups that hold ``node``, outermost first."""
        labels = [g.data.get("label") for g in _groups_of(node, self.groups)]
        return tuple(dict.fromkeys(x.strip() for x in labels if isinstance(x, str) and x.strip()))

    def headings(self, card: _Node) -> tuple[str, ...]:
        out = [*self.group_labels(card)]
        out += [label for _, label in self.joined.get(card.id, ()) if label]
        return tuple(dict.fromkeys(out))

    def _members(self, group: _Node) -> list[int]:
        """The lines of the cards inside ``group``, found once per group."""
        if group.id not in self._held:
            self._held[group.id] = [c.line for c in self.cards if c.inside(group)]
        return self._held[group.id]

    def around(self, node: _Node) -> tuple[int, ...]:
        """The lines of the cards around ``node``: edges, then its group, then the nearest."""
        lines = [other.line for i, _ in self.joined.get(node.id, ())
                 if (other := self.by_id[i]) is not node and other.type in ("text", "link")
                 and self.words(other)]
        held = _groups_of(node, self.groups)
        if held:
            lines += [line for line in self._members(held[-1]) if line != node.line]
        if not lines and node.centre is not None and len(self._lines):
            distance = np.hypot(*(self._centres - np.array(node.centre)).T)
            order = np.argsort(distance, kind="stable")
            lines = [int(x) for x in self._lines[order] if x != node.line][:NEAREST]
        return tuple(dict.fromkeys(lines))


def parse_canvas(data: bytes, path: str) -> Note:
    """A canvas's bytes as a note; what is wrong with it is in ``problems`` (a note with
    problems and no sections is a skip, with them as its reason)."""
    note = Note(path=path, title=PurePosixPath(path).stem)
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        note.problems.append(f"not a JSON Canvas file: {' '.join(str(exc).split())[:200]}")
        return note
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes", []), list):
        note.problems.append("not a JSON Canvas file: no list of nodes")
        return note
    nodes = _nodes(doc.get("nodes", []), note.problems)
    text = data.decode("utf-8-sig")
    lines = _file_lines(text, [n.id for n in nodes])
    if lines is not None:
        nodes = [replace(n, line=lines[n.id]) for n in nodes]
    board = _Board(nodes, _edges(doc.get("edges"), {n.id for n in nodes}), note.problems)
    note.line_count = max([n.line for n in nodes] + [text.count("\n") + 1 if lines else 0])
    for card in board.cards:
        text = board.words(card)
        note.sections.append(Section(CARD, card.line, card.line, text, board.headings(card)))
        _card_placements(note, card, text, board)
    for node in nodes:
        if node.type == "file" and isinstance(node.data.get("file"), str):
            target = node.data["file"]
            sub = node.data.get("subpath")
            subpath = sub.lstrip("#") or None if isinstance(sub, str) else None
            note.placements.append(Placement(
                node.line, 1, f"file node {node.id}", "canvas", target, subpath,
                file_kind(target)))
            note.beside[node.line] = board.around(node)
            # not a passage (not searched as one): it gives the placement its group's labels
            # as headings, as a note's heading path goes with a screenshot
            note.sections.append(Section(FILE, node.line, node.line, target,
                                         board.group_labels(node)))
    note.placements.sort(key=lambda p: (p.line, p.column))
    note.sections.sort(key=lambda s: s.start)
    return note


def _card_placements(note: Note, card: _Node, text: str, board: _Board) -> None:
    """A picture placed in a card's own markdown (``![[x.png]]``) is placed on the card's
    line, with the card first among the text around it."""
    for p in find_placements(text, text):
        if p.kind == EXTERNAL:
            continue
        note.placements.append(Placement(card.line, p.column, p.raw, p.syntax, p.target,
                                         p.subpath, p.kind, p.alt, p.width, p.height))
        note.beside[card.line] = (card.line, *board.around(card))
