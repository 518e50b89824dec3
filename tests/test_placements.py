"""Every placement syntax Obsidian renders (its "embeds"), and the places where one does not
count."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from vaultlens.vault.notes import Note
from vaultlens.vault.placements import Placement


def one(parse: Callable[..., Note], text: str) -> Placement:
    placements = parse(text).placements
    assert len(placements) == 1, placements
    return placements[0]


@pytest.mark.parametrize(
    ("text", "target", "subpath", "width", "height"),
    [
        ("![[img.png]]", "img.png", None, None, None),
        ("![[img.png|300]]", "img.png", None, 300, None),
        ("![[img.png|100x145]]", "img.png", None, 100, 145),
        ("![[img.png#interface|300]]", "img.png", "interface", 300, None),
        ("![[Folder/Pasted image 20240101123456.png]]", "Folder/Pasted image 20240101123456.png",
         None, None, None),
    ],
)
def test_wikilink_images(parse: Callable[..., Note], text: str, target: str,
                         subpath: str | None, width: int | None, height: int | None) -> None:
    e = one(parse, f"Some text {text} more")
    assert (e.target, e.subpath, e.width, e.height) == (target, subpath, width, height)
    assert e.kind == "image"
    assert e.syntax == "wikilink"
    assert (e.line, e.column) == (1, 11)
    assert e.raw == text


def test_anchor_on_image_does_not_change_target(parse: Callable[..., Note]) -> None:
    a = one(parse, "![[shot.png#outline|100]]")
    b = one(parse, "![[shot.png]]")
    assert a.target == b.target == "shot.png"


def test_pdf_page(parse: Callable[..., Note]) -> None:
    e = one(parse, "![[doc.pdf#page=3]]")
    assert (e.kind, e.target, e.page) == ("pdf", "doc.pdf", 3)
    assert one(parse, "![[doc.pdf#height=400]]").page is None


@pytest.mark.parametrize(("text", "subpath"), [("![[Note#Heading]]", "Heading"),
                                               ("![[Note#^block]]", "^block"),
                                               ("![[Note]]", None)])
def test_note_placements_are_recorded_as_notes(parse: Callable[..., Note], text: str,
                                           subpath: str | None) -> None:
    e = one(parse, text)
    assert (e.kind, e.target, e.subpath) == ("note", "Note", subpath)


def test_escaped_pipe_inside_table(parse: Callable[..., Note]) -> None:
    note = parse("| a | b |\n|---|---|\n| ![[t.png\\|30]] | x |\n")
    (e,) = note.placements
    assert (e.target, e.width, e.line, e.column) == ("t.png", 30, 3, 3)
    assert note.sections[0].kind == "table"


@pytest.mark.parametrize(
    ("text", "target", "alt", "width"),
    [
        ("![alt](path%20with%20spaces.png)", "path with spaces.png", "alt", None),
        ("![alt](<path with spaces.png>)", "path with spaces.png", "alt", None),
        ("![alt|300](img.png)", "img.png", "alt", 300),
        ("![250](img.png)", "img.png", None, 250),
        ('![a diagram](sub/img.png "a title")', "sub/img.png", "a diagram", None),
    ],
)
def test_markdown_images(parse: Callable[..., Note], text: str, target: str,
                         alt: str | None, width: int | None) -> None:
    e = one(parse, text)
    assert (e.syntax, e.target, e.alt, e.width) == ("markdown", target, alt, width)


def test_html_img(parse: Callable[..., Note]) -> None:
    e = one(parse, 'Look: <img src="pics/a b.png" alt="Chart &amp; table" width="200">')
    assert (e.syntax, e.target, e.alt, e.width, e.column) == (
        "html", "pics/a b.png", "Chart & table", 200, 7)


@pytest.mark.parametrize("text", ["![x](https://example.com/a.png)", "![[https://e.com/a.png]]",
                                  '<img src="http://e.com/x.jpg">'])
def test_external_urls_are_external(parse: Callable[..., Note], text: str) -> None:
    assert one(parse, text).kind == "external"


def test_placements_in_callouts_lists_and_tables_count(parse: Callable[..., Note]) -> None:
    text = (
        "> [!note] Title\n> ![[a.png]]\n\n"
        "- item\n  - nested ![[b.png]]\n\n"
        "| x |\n|---|\n| ![[c.png]] |\n"
    )
    assert [(e.target, e.line) for e in parse(text).placements] == [
        ("a.png", 2), ("b.png", 5), ("c.png", 9)]


@pytest.mark.parametrize(
    "text",
    [
        "Use `![[a.png]]` to embed.",
        "Use ``code with ` and ![[a.png]]`` here.",
        "```md\n![[a.png]]\n```",
        "~~~\n![[a.png]]\n~~~",
        "Para.\n\n    ![[a.png]]\n",
        "%% ![[a.png]] %%",
        "%%\nhidden\n\n![[a.png]]\n%%",
        "<!-- ![[a.png]] -->",
        "<!--\n![[a.png]]\n\nstill hidden\n-->",
        "- item\n\n  ```\n  ![[a.png]]\n  ```",
    ],
)
def test_code_and_comments_hide_placements(parse: Callable[..., Note], text: str) -> None:
    assert parse(text).placements == []


def test_unclosed_backtick_does_not_hide(parse: Callable[..., Note]) -> None:
    assert [e.target for e in parse("a ` b ![[a.png]]").placements] == ["a.png"]


def test_placement_after_inline_code_on_same_line(parse: Callable[..., Note]) -> None:
    e = one(parse, "`![[no.png]]` then ![[yes.png]]")
    assert (e.target, e.column) == ("yes.png", 20)


def test_pasted_image_time(parse: Callable[..., Note]) -> None:
    e = one(parse, "![[Pasted image 20240101123456 1.png]]")
    assert e.pasted_at == datetime(2024, 1, 1, 12, 34, 56)
    assert one(parse, "![[screenshot.png]]").pasted_at is None


def test_line_and_column_with_crlf_and_bom(parse: Callable[..., Note]) -> None:
    e = one(parse, "\ufefftitle\r\n\r\nx ![[a.png]]\r\n")
    assert (e.line, e.column) == (3, 3)
