"""An SVG's words, read safely: the labels of a diagram drawn in draw.io, Mermaid or
Excalidraw are ``<text>``/``<tspan>`` elements or HTML inside ``<foreignObject>``.

An SVG is XML from anywhere, so the parse refuses what makes XML dangerous rather than
trusting the parser's limits: an entity that refers to another (the billion laughs), to a file
or to the network (XXE), or a long or numerous one ends the parse (``_Entities``); nothing is
ever fetched, and the bytes are capped before parsing. A DOCTYPE that names the SVG 1.1 DTD,
and Illustrator's few namespace entities, are read; the DTD is never loaded.

A ``<switch>`` renders the first of its children that applies, and every renderer now takes
the first (``requiredFeatures`` is always true): draw.io puts each label there twice, as
``<foreignObject>`` HTML and a fallback ``<text>``, so only a switch's first child is read.

The pixels are not drawn here: PyMuPDF renders an SVG in the PDF reader's sandboxed child
(``pdfs.read_pdf``), so no hostile SVG is rendered in the daemon.
"""

from __future__ import annotations

import contextlib
import re
import xml.parsers.expat
from dataclasses import dataclass, field

from vaultlens.errors import VaultlensError

MAX_SVG_BYTES = 16 * 2**20  # a diagram is KBs to a few MB; past this it is not one
MAX_WORDS_CHARS = 200_000  # the words kept from one SVG
ICON_SIDE = 64.0  # an SVG no larger than this (in user units) and without words is an icon
_TEXT_TAGS = frozenset({"text", "foreignObject"})
_SKIPPED_TAGS = frozenset({"style", "script", "metadata", "defs"})
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+)")


class SvgError(VaultlensError):
    """The SVG is refused or broken: ``reason`` says why (a recorded skip reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class SvgText:
    """What the SVG says: its labels in document order, and its size."""

    labels: list[str] = field(default_factory=list)
    width: float | None = None
    height: float | None = None

    @property
    def words(self) -> str:
        return "\n".join(self.labels)[:MAX_WORDS_CHARS]

    @property
    def icon(self) -> bool:
        """Small and wordless: a picture findable by its name, nothing to read in it."""
        sides = [s for s in (self.width, self.height) if s is not None]
        return not self.labels and bool(sides) and max(sides) <= ICON_SIDE


def _local(name: str) -> str:
    """The tag without its namespace (expat joins them with a space when asked)."""
    return name.rsplit(" ", 1)[-1].rsplit(":", 1)[-1]


def _length(value: str | None) -> float | None:
    m = _NUMBER.match(value or "")
    return float(m.group(1)) if m and not (value or "").strip().endswith("%") else None


class _Reader:
    def __init__(self) -> None:
        self.out = SvgText()
        self.stack: list[str] = []
        self.label: list[str] | None = None  # the words of the text element open now
        self.label_depth = 0
        self.skip_depth = 0  # > 0 inside style/script/a switch's later children
        self.switches: list[tuple[int, bool]] = []  # (depth, its first child was seen)
        self.chars = 0
        self.root = ""

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = _local(name)
        depth = len(self.stack)
        self.stack.append(tag)
        if depth == 0:
            self.root = tag
            self._size(attrs)
        if self.skip_depth:
            return
        if self.switches and self.switches[-1][0] == depth - 1:
            if self.switches[-1][1]:
                self.skip_depth = depth + 1  # the switch renders its first child alone
                return
            self.switches[-1] = (depth - 1, True)
        if tag in _SKIPPED_TAGS:
            self.skip_depth = depth + 1
        elif tag == "switch":
            self.switches.append((depth, False))
        elif tag in _TEXT_TAGS and self.label is None:
            self.label, self.label_depth = [], depth + 1

    def end(self, name: str) -> None:
        depth = len(self.stack)
        self.stack.pop()
        if self.skip_depth == depth:
            self.skip_depth = 0
            return
        if self.label is not None and self.label_depth == depth:
            words = " ".join(" ".join(self.label).split())
            self.label = None
            if words:
                self.out.labels.append(words)
        elif self.switches and self.switches[-1][0] == depth - 1:
            self.switches.pop()

    def text(self, data: str) -> None:
        if self.label is not None and not self.skip_depth and self.chars < MAX_WORDS_CHARS:
            self.label.append(data)
            self.chars += len(data)

    def _size(self, attrs: dict[str, str]) -> None:
        self.out.width, self.out.height = _length(attrs.get("width")), _length(attrs.get("height"))
        box = (attrs.get("viewBox") or "").replace(",", " ").split()
        if len(box) == 4 and self.out.width is None and self.out.height is None:
            with contextlib.suppress(ValueError):  # a broken viewBox tells no size
                self.out.width, self.out.height = abs(float(box[2])), abs(float(box[3]))


MAX_ENTITIES = 64
MAX_ENTITY_CHARS = 1024


class _Entities:
    """Which entity declarations are read. Illustrator declares a few namespace URIs
    (``<!ENTITY ns_svg "http://...">``) in its DOCTYPE; that is all an SVG ever needs. What the
    attacks need is refused: an entity that refers to another (the billion laughs), a
    parameter entity, an external or unparsed one (XXE), a long value, many of them. Each
    reference then costs at most MAX_ENTITY_CHARS, and expat's own amplification limit stays
    as the backstop."""

    def __init__(self) -> None:
        self.count = 0

    def declared(self, _name: str, parameter: int, value: str | None, _base: str | None,
                 system: str | None, public: str | None, notation: str | None) -> None:
        self.count += 1
        if (parameter or value is None or system or public or notation
                or "&" in value or "%" in value or len(value) > MAX_ENTITY_CHARS
                or self.count > MAX_ENTITIES):
            _refuse()


def _refuse(*_: object) -> None:
    # raised inside expat's handler, it ends the parse before any entity is expanded
    raise SvgError("SVG declares entities that refer to others, to files or to the "
                   "network; not read, as a hostile SVG does")


def _refuse_reference(*_: object) -> int:
    _refuse()
    return 0  # unreachable: a return expat would read as "not loaded"


def svg_text(data: bytes) -> SvgText:
    """The labels of an SVG's bytes; SvgError when it is too large, declares a DTD, or is not
    well-formed XML."""
    if len(data) > MAX_SVG_BYTES:
        raise SvgError(f"SVG larger than {MAX_SVG_BYTES // 2**20} MB; not read")
    reader = _Reader()
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = _Entities().declared
    parser.ExternalEntityRefHandler = _refuse_reference  # never fetched: no entity is ever declared
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.text
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        what = xml.parsers.expat.ErrorString(exc.code) if exc.code else str(exc)
        raise SvgError(f"not a well-formed SVG ({what} at line {exc.lineno})") from None
    except (LookupError, ValueError) as exc:  # an encoding expat cannot read (utf-7, x-foo)
        raise SvgError(f"not a readable SVG ({exc})") from None
    if reader.root != "svg":
        raise SvgError(f"not an SVG (its root element is <{reader.root}>)")
    return reader.out
