"""Obsidian's link resolution, ties included."""

from __future__ import annotations

import pytest

from vaultlens.vault.links import Resolver

FILES = [
    "img.png",
    "Attachments/img.png",
    "Projects/img.png",
    "Projects/Deep/img.png",
    "Projects/Deep/Deeper/only-deep.png",
    "a/b/shared.png",
    "c/shared.png",
    "Notes/Daily.md",
    "Notes/My.Note.md",
    "Case/Shot.PNG",
    "Docs/report.pdf",
]


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(FILES)


@pytest.mark.parametrize(
    ("link", "source", "expected"),
    [
        # an exact vault path wins over everything
        ("img.png", "Projects/Deep/note.md", "img.png"),
        ("Attachments/img.png", "Projects/note.md", "Attachments/img.png"),
        # case-insensitive, exact case preferred only among equals
        ("ATTACHMENTS/IMG.PNG", "x.md", "Attachments/img.png"),
        ("case/shot.png", "x.md", "Case/Shot.PNG"),
        # suffix match: under the note's own folder first
        ("Deep/img.png", "Projects/note.md", "Projects/Deep/img.png"),
        ("shared.png", "a/note.md", "a/b/shared.png"),
        # then the shortest path
        ("shared.png", "z/note.md", "c/shared.png"),
        ("only-deep.png", "x.md", "Projects/Deep/Deeper/only-deep.png"),
        # vault-absolute and relative
        ("/Projects/img.png", "Projects/Deep/n.md", "Projects/img.png"),
        ("./img.png", "Projects/Deep/n.md", "Projects/Deep/img.png"),
        ("../img.png", "Projects/Deep/n.md", "Projects/img.png"),
        ("../../img.png", "Projects/Deep/n.md", "img.png"),
        # notes: no extension means .md; a dotted name still finds its .md
        ("Daily", "x.md", "Notes/Daily.md"),
        ("My.Note", "x.md", "Notes/My.Note.md"),
        ("Docs/report.pdf", "x.md", "Docs/report.pdf"),
        ("report.pdf", "x.md", "Docs/report.pdf"),
    ],
)
def test_resolution(resolver: Resolver, link: str, source: str, expected: str) -> None:
    res = resolver.resolve(link, source)
    assert (res.path, res.reason) == (expected, None)


def test_note_folder_beats_shorter_paths_elsewhere() -> None:
    r = Resolver(["Projects/img.png", "Projects/Deep/img.png", "Other/img.png"])
    assert r.resolve("img.png", "Projects/Deep/n.md").path == "Projects/Deep/img.png"
    assert r.resolve("img.png", "Projects/Deep/Deeper/n.md").path == "Other/img.png"
    # under the note's folder at any depth, the shortest of those wins
    r = Resolver(["Top/a/b/img.png", "Top/a/img.png", "img2/img.png"])
    assert r.resolve("img.png", "Top/n.md").path == "Top/a/img.png"


def test_shortest_means_fewest_folders_first() -> None:
    r = Resolver(["a/b/c/x.png", "a-very-long-folder-name/x.png"])
    assert r.resolve("x.png", "n.md").path == "a-very-long-folder-name/x.png"


def test_same_length_tie_is_alphabetical() -> None:
    r = Resolver(["b/x.png", "a/x.png"])
    assert r.resolve("x.png", "n.md").path == "a/x.png"


@pytest.mark.parametrize(
    ("link", "source", "reason"),
    [
        ("missing.png", "x.md", "no file named 'missing.png' in the vault"),
        ("../../../img.png", "Projects/n.md", "'../../../img.png' leads outside the vault"),
        ("./nope.png", "Projects/n.md", "no file at './nope.png' relative to 'Projects'"),
        ("/nope.png", "x.md", "no file at vault path '/nope.png'"),
        ("  ", "x.md", "empty link"),
        ("Deep/img.png", "x.md", None),
    ],
)
def test_unresolved_reasons(resolver: Resolver, link: str, source: str,
                            reason: str | None) -> None:
    res = resolver.resolve(link, source)
    assert res.reason == reason
    assert (res.path is None) == (reason is not None)


def test_partial_name_is_not_a_match() -> None:
    r = Resolver(["Attachments/bigimg.png"])
    assert r.resolve("img.png", "n.md").path is None
