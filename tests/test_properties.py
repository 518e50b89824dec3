"""Properties of the parser on arbitrary text: it never raises, and sections tile the note."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks import check_sections
from vaultlens.vault.context import placement_context
from vaultlens.vault.notes import NoteParser, decode

PARSER = NoteParser()

# Pieces that exercise every rule, glued at random, beat uniform text at finding edge cases.
PIECES = [
    "---", "```", "~~~", "    ", "> ", "> [!note] ", "- ", "1. ", "# ", "## ", "| a | b |",
    "|---|---|", "%%", "<!--", "-->", "`", "``", "![[a.png]]", "![[b.pdf#page=2|300]]",
    "![x](c%20d.png)", "![y](<e f.png>)", '<img src="g.png">', "\\|", "^blk-1", "#tag", "text",
    "词语", "\t", " ", "\n", "\n\n", "\r\n", "\r", "\ufeff", "\x00", "===", "[ref]: u", "$$",
]
markdownish = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=60
).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdownish)
def test_markdownish_text(text: str) -> None:
    note = PARSER.parse(text, "n.md")
    check_sections(note, text)
    for e in note.placements:
        placement_context(note, e, 300)  # never raises, for every placement


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check_sections(PARSER.parse(text, "n.md"), text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    note = PARSER.parse_bytes(data, "n.md")
    text, problem = decode(data)
    if text is None:
        assert note.sections == [] and note.problems == [problem]
    else:
        check_sections(note, text)
