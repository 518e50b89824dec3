"""What a search answers shows plain text, and its highlights mark the words the keyword
search matched, in the snippet and in the paragraph beside a picture: through the API, with
the real MiniLM (OCR off: the picture is found by its paragraph)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from indexing import screenshot
from inprocess_api import Api, Client, MakeVault, open_api

MARKUP = re.compile(r"\[\[|\]\]|\*\*|==|> ?\[!|\^blk|`|<b>|\[\^|!\[")
VAULT: dict[str, str | bytes] = {
    "Notes/Sync.md": "# Sync\n\n> [!tip] Regional servers\n> Obsidian **Sync** keeps "
                     "[[Servers/Regional servers|regional servers]]; see ==the map==[^1] and "
                     "`sync.conf`. The app will synchronize <b>everything</b>. ^blk1\n\n"
                     "[^1]: A footnote.\n",
    "Trips/Pier.md": "# Pier\n\n## Office\n\n- The 🚢 **harbour** office listed "
                     "[[Boats|every boat]] 同步 leaving.\n\n![[board.png]]^shot\n",
    "Attachments/board.png": screenshot("CARGO MANIFEST"),
}
PARAGRAPH = "The 🚢 harbour office listed every boat 同步 leaving."


@pytest.fixture
async def api(aiohttp_client: Client, make_vault: MakeVault, tmp_path: Path) -> Api:
    return await open_api(aiohttp_client, make_vault(VAULT), tmp_path / "data")


def js_slices(text: str, spans: list[list[int]]) -> list[str]:
    """What JavaScript's text.slice(start, end) gives for each span (UTF-16 units)."""
    units = text.encode("utf-16-le")
    return [units[2 * a : 2 * b].decode("utf-16-le") for a, b in spans]


async def search(api: Api, query: str, **body: Any) -> list[dict[str, Any]]:
    status, found = await api.post("/api/search", {"query": query, **body})
    assert status == 200, found
    results: list[dict[str, Any]] = found["results"]
    return results


async def test_a_note_snippet_is_plain_text_marked_by_stems(api: Api) -> None:
    note = next(h for h in await search(api, "regional sync servers") if h["kind"] == "note")
    assert note["path"] == "Notes/Sync.md"
    assert not MARKUP.search(note["text"]), note["text"]
    assert "Obsidian Sync keeps regional servers; see the map and sync.conf" in note["text"]
    marked = [w.lower() for w in js_slices(note["text"], note["highlights"])]
    # every word whose stem is a query term, "synchronize" not (the stemmer keeps it apart)
    assert marked == ["regional", "servers", "sync", "regional", "servers", "sync"]


async def test_the_paragraph_beside_a_picture_is_plain_and_highlighted(api: Api) -> None:
    image = next(h for h in await search(api, "harbour boats", kind="image"))
    assert image["path"] == "Attachments/board.png"
    assert image["context_text"] == PARAGRAPH
    assert js_slices(image["context_text"], image["context_highlights"]) == ["harbour", "boat"]
    for block in image["links"][0]["context"]:
        assert not MARKUP.search(block["text"]), block["text"]
    # a picture matched by its paragraph shows it as its snippet, marked the same way
    assert image["matched"] == "context"
    assert js_slices(image["text"], image["highlights"]) == ["harbour", "boat"]


async def test_cjk_words_are_marked_in_utf16_units(api: Api) -> None:
    image = next(h for h in await search(api, "同步", kind="image"))
    assert js_slices(image["context_text"], image["context_highlights"]) == ["同步"]


async def test_a_note_hit_has_no_paragraph_of_a_picture(api: Api) -> None:
    note = next(h for h in await search(api, "regional servers", kind="note"))
    assert note["context_text"] == "" and note["context_highlights"] == []


@pytest.mark.slow
def test_the_page_marks_the_words_in_the_paragraph_beside_a_picture(
        tmp_path: Path) -> None:
    from browsing import CHROMIUM

    if CHROMIUM is None:
        pytest.skip("no chromium installed")
    from playwright.sync_api import sync_playwright

    from conftest import write_vault
    from served import serving

    with serving(write_vault(tmp_path / "Harbour", VAULT), tmp_path / "data") as served, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{served.base}/#token={served.token}")
        page.fill("#q", "harbour boats")
        context = page.locator(".hit-image .context").first
        context.wait_for()
        assert context.inner_text() == PARAGRAPH
        assert context.locator("mark").all_inner_texts() == ["harbour", "boat"]
        browser.close()
