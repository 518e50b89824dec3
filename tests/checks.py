"""Invariants shared by the property tests and the real-vault tests."""

from __future__ import annotations

from vaultlens.vault.notes import Note


def check_sections(note: Note, text: str) -> None:
    text = text.removeprefix("\ufeff").replace("\x00", "\ufffd")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    assert note.line_count == len(lines)
    previous_end = 0
    covered: set[int] = set()
    for s in note.sections:
        assert 1 <= s.start <= s.end <= len(lines), s
        assert s.start > previous_end, "sections overlap or are out of order"
        previous_end = s.end
        covered.update(range(s.start, s.end + 1))
        for a, b in s.items:
            assert s.start <= a <= b <= s.end
    for i, line in enumerate(lines, start=1):
        if line.strip():
            assert i in covered, f"line {i} {line!r} belongs to no section"
    for e in note.placements:
        assert 1 <= e.line <= len(lines)
        assert lines[e.line - 1][e.column - 1 :].startswith(e.raw), e
