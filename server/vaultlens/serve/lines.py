"""A note's lines, read a block at a time: what ``read`` answers, however long the note."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import BinaryIO

MAX_READ_CHARS = 256 * 1024  # characters a read returns at most (one line may be megabytes)
READ_BLOCK = 64 * 1024  # bytes read from a note at a time


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
