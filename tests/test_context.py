"""The paragraphs around each placed image or PDF."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vaultlens.vault import notefile
from vaultlens.vault.context import PlacementLink, link_note, link_vault
from vaultlens.vault.links import Resolver
from vaultlens.vault.notes import Note, NoteParser
from vaultlens.vault.scan import scan

MakeVault = Callable[[dict[str, str | bytes]], Path]

NOTE = """\
# Trip

Intro about the trip.

## Day one

We drove to the coast and watched the storm roll in.

![[storm.png]]

The photo above shows lightning over the pier.

## Day two

Quiet morning with coffee. ![[coffee.jpg|200]] Then a long walk.

- packing list ![[bag.png]]
- second item
"""


def links_of(note: Note, budget: int = 1500, files: tuple[str, ...] = ()) -> list[PlacementLink]:
    paths = files or ("storm.png", "coffee.jpg", "bag.png", "doc.pdf", "shot.png")
    kinds = {p: ("pdf" if p.endswith(".pdf") else "image") for p in paths}
    return link_note(note, Resolver(paths), kinds, budget)


def spans(link: PlacementLink) -> list[tuple[int, int, str]]:
    return [(c.start, c.end, c.role) for c in link.context]


def test_standalone_placement_gets_real_text_on_both_sides(parse: Callable[..., Note]) -> None:
    storm = links_of(parse(NOTE, "Trips/Trip.md"))[0]
    assert (storm.target, storm.note, storm.line) == ("storm.png", "Trips/Trip.md", 9)
    assert spans(storm) == [(9, 9, "containing"), (7, 7, "before"), (11, 11, "after")]
    assert storm.headings == ("Trip", "Day one")
    assert storm.title == "Trip"
    assert "lightning" in storm.context[2].text


def test_context_stays_within_the_heading_section(parse: Callable[..., Note]) -> None:
    coffee = links_of(parse(NOTE))[1]
    # the paragraph holds real text, so nothing from "Day one" leaks in
    assert spans(coffee)[0] == (15, 15, "containing")
    assert all(c.start >= 13 for c in coffee.context)
    assert coffee.placement.width == 200


def test_list_placement_uses_its_item(parse: Callable[..., Note]) -> None:
    bag = links_of(parse(NOTE))[2]
    assert spans(bag)[0] == (17, 17, "containing")
    assert bag.context[0].text == "- packing list ![[bag.png]]"
    assert spans(bag)[1] == (15, 15, "before")


def test_placement_alone_in_its_heading_section_widens_to_parent(
        parse: Callable[..., Note]) -> None:
    text = "# Project\n\nThe dashboard we built for sales.\n\n## Screenshot\n\n![[shot.png]]\n"
    (link,) = links_of(parse(text))
    assert spans(link) == [(7, 7, "containing"), (3, 3, "before")]


def test_neighbouring_placements_are_not_real_text(parse: Callable[..., Note]) -> None:
    text = "Words that describe the pictures.\n\n![[storm.png]]\n\n![[shot.png]]\n"
    second = links_of(parse(text))[1]
    assert spans(second) == [(5, 5, "containing"), (1, 1, "before")]


def test_code_and_headings_are_not_context(parse: Callable[..., Note]) -> None:
    text = "## H\n\nReal words here.\n\n```\ncode words\n```\n\n![[shot.png]]\n\n---\n"
    (link,) = links_of(parse(text))
    assert spans(link) == [(9, 9, "containing"), (3, 3, "before")]


def test_budget_limits_context(parse: Callable[..., Note]) -> None:
    long_before = " ".join(f"before{i}" for i in range(300))
    long_after = "\n".join(f"after line {i}" for i in range(300))
    text = f"{long_before}\n\n![[shot.png]]\n\n{long_after}\n"
    (link,) = links_of(parse(text), budget=400)
    total = sum(len(c.text) for c in link.context)
    assert total <= 400
    roles = [c.role for c in link.context]
    assert roles == ["containing", "before", "after"]
    after = link.context[2]
    assert after.text.startswith("after line 0") and after.start == 5 and after.end > 5
    assert link.context[1].text.endswith("before299")  # the end nearest the image is kept


def test_long_containing_block_is_windowed_around_the_placement(parse: Callable[..., Note]) -> None:
    lines = [f"- item number {i}" for i in range(200)]
    lines[120] = "- here ![[shot.png]]"
    (link,) = links_of(parse("\n".join(lines) + "\n"), budget=300)
    c = link.context[0]
    assert c.role == "containing" and c.start <= 121 <= c.end
    assert "![[shot.png]]" in c.text


def test_unresolved_placement_is_kept_with_reason(parse: Callable[..., Note]) -> None:
    (link,) = links_of(parse("Text.\n\n![[ghost.png]]\n"))
    assert link.target is None and link.reason == "no file named 'ghost.png' in the vault"
    assert link.kind == "image" and spans(link)[1] == (1, 1, "before")


def test_pdf_page_and_note_placements(parse: Callable[..., Note]) -> None:
    note = parse("See the report ![[doc.pdf#page=2]] and ![[Other note#Part]].\n")
    (link,) = links_of(note)
    assert (link.kind, link.target, link.placement.page) == ("pdf", "doc.pdf", 2)
    assert [e.kind for e in note.placements] == ["pdf", "note"]  # the placed note is still recorded


def test_linked_vault(make_vault: MakeVault, parser: NoteParser) -> None:
    body = "Paragraph about the chart in {0}.\n\n![[Attachments/chart.png]]\n"
    root = make_vault({
        "a.md": body.format("a"), "b/b.md": body.format("b"), "c.md": body.format("c"),
        "Attachments/chart.png": b"png", "Attachments/never-used.png": b"png",
        "doc.pdf": b"%PDF", "broken.md": b"\x00\x01binary",
    })
    linked = link_vault(scan(root), parser, 1500)
    chart = linked.links_to("Attachments/chart.png")
    assert sorted(x.note for x in chart) == ["a.md", "b/b.md", "c.md"]  # three links
    assert {x.context[1].text for x in chart} == {body.format(n).split("\n")[0] for n in "abc"}
    assert linked.unplaced() == ["Attachments/never-used.png", "doc.pdf"]
    assert [p.path for p in linked.problems] == ["broken.md"]
    assert "binary" in linked.problems[0].reason


def test_links_report_holds_notes_to_the_one_note_cap(
        make_vault: MakeVault, parser: NoteParser, monkeypatch: pytest.MonkeyPatch) -> None:
    """The links report reads notes through notefile's cap (the indexer's), not a copy of it: a
    note past it is a problem worded for this report, one at it is linked."""
    monkeypatch.setattr(notefile, "MAX_NOTE_BYTES", 64)
    at_cap = b"![[a.png]]\n" + b"x" * (64 - 11)
    root = make_vault({"huge.md": at_cap + b"x", "big.md": at_cap, "a.png": b"png"})
    linked = link_vault(scan(root), parser, 1500)
    assert [(p.path, p.reason) for p in linked.problems] == [
        ("huge.md", f"larger than {notefile.MAX_NOTE_MB} MB; not parsed")]
    assert [x.note for x in linked.links_to("a.png")] == ["big.md"]


def test_to_json_shape(parse: Callable[..., Note]) -> None:
    link = links_of(parse(NOTE, "Trips/Trip.md"))[0]
    data = link.to_json()
    assert {"target", "note", "line", "context", "headings"} <= data.keys()
    assert data["context"][0] == {"start": 9, "end": 9, "text": "![[storm.png]]",
                                  "role": "containing"}


@pytest.mark.slow
def test_many_placements_in_one_note_finish() -> None:
    """A 1,500-image gallery once took 143 s (every placement rescanned every section and every
    placement). Each case must finish in a child process we can kill."""
    import subprocess
    import sys

    script = (
        "from vaultlens.vault.notes import NoteParser\n"
        "from vaultlens.vault.context import link_note\n"
        "from vaultlens.vault.links import Resolver\n"
        "paths = [f'img{i}.png' for i in range(1500)]\n"
        "kinds = {p: 'image' for p in paths}\n"
        "gallery = '\\n\\n'.join(f'![[img{i}.png]]' for i in range(1500))\n"
        "line = ('word ![[img1.png]] more text ' * 180000)[: 5 * 2**20]\n"
        "for text in (gallery, line):\n"
        "    links = link_note(NoteParser().parse(text, 'n.md'), Resolver(paths), kinds, 1500)\n"
        "    assert all(sum(len(c.text) for c in x.context) <= 1500 for x in links)\n"
        "print('done')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
