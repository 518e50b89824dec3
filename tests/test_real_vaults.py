"""The vault model on the two real vaults in ../shared (skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks import check_sections
from conftest import shared_path
from vaultlens.vault.context import LinkedVault, link_vault
from vaultlens.vault.notes import NoteParser
from vaultlens.vault.scan import scan

pytestmark = pytest.mark.slow

STYLE_GUIDE = "Contributing to Obsidian/Style guide.md"
EMBED_FILES = "Linking notes and files/Embed files.md"


@pytest.fixture(scope="module")
def english() -> LinkedVault:
    return link_vault(scan(shared_path("vaults", "obsidian-help-en")), NoteParser(), 1500)


@pytest.fixture(scope="module")
def chinese() -> LinkedVault:
    return link_vault(scan(shared_path("vaults", "obsidian-help-zh")), NoteParser(), 1500)


def test_every_raster_placement_outside_code_resolves(english: LinkedVault) -> None:
    images = [x for x in english.links if x.kind == "image"]
    assert len(images) >= 40
    unresolved = [(x.note, x.line, x.placement.raw) for x in images if x.target is None]
    assert unresolved == []
    for x in images:
        assert (english.vault.root / str(x.target)).is_file()


def test_backticked_placements_in_style_guide_do_not_count(english: LinkedVault) -> None:
    lines = sorted(e.line for e in english.notes[STYLE_GUIDE].placements)
    for shown_in_code in (373, 384, 392, 402):  # `![[...]]` written out as examples
        assert shown_in_code not in lines
    for rendered in (395, 398, 408, 412):
        assert rendered in lines


def test_engelbart_is_linked_with_the_paragraph_that_describes_it(english: LinkedVault) -> None:
    here = {x.line: x for x in english.links_to("Attachments/Engelbart.jpg")
            if x.note == EMBED_FILES}
    assert sorted(here) == [44, 54]  # 41 and 49 sit inside ```md code blocks
    assert any("To embed an image" in c.text for c in here[44].context)
    assert any("scales proportionally" in c.text for c in here[54].context)
    assert here[44].headings == ("Embed an image in a note",)


@pytest.mark.parametrize("which", ["english", "chinese"])
def test_every_note_parses_cleanly(which: str, request: pytest.FixtureRequest) -> None:
    linked: LinkedVault = request.getfixturevalue(which)
    assert len(linked.notes) > 100
    assert [p for p in linked.problems] == []
    root: Path = linked.vault.root
    for path, note in linked.notes.items():
        check_sections(note, (root / path).read_text(encoding="utf-8"))


def test_chinese_vault_links_with_chinese_context(chinese: LinkedVault) -> None:
    images = [x for x in chinese.links if x.kind == "image" and x.target]
    assert len(images) >= 30
    assert all(x.context and any(len(c.text.strip()) > 5 for c in x.context) for x in images)
    assert any("图片" in c.text for x in images for c in x.context)
