"""Context packs, pictures and reading through the API, with the real MiniLM and RapidOCR."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from PIL import Image

from indexing import screenshot
from inprocess_api import Api, Client, MakeVault, assert_error, open_api
from vaultlens.embedders.minilm import MiniLM
from vaultlens.search.pack import Entry, render
from vaultlens.search.tokens import ESTIMATE_RULE, TokenCounter, estimate, image_tokens


def slide_pdf() -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=960, height=540)
    page.insert_text((60, 200), "Friction cost of switching tools", fontsize=36)
    data: bytes = doc.tobytes()
    return data


PARAGRAPH = ("The tide board in the harbour office listed every boat, and the ferry times were "
             "chalked below it.")
VAULT: dict[str, str | bytes] = {
    "Trips/Pier.md": f"# Pier\n\n## Office\n\n{PARAGRAPH}\n\n![[board.png]]\n\n"
                     "We left before the storm.\n",
    "Decks/Review.md": "# Review\n\nThe slide on switching tools:\n\n![[deck.pdf#page=1]]\n",
    "Sync.md": "# Selective sync\n\n" + " ".join(["Exclude a folder from Obsidian Sync in the "
               "selective sync settings."] * 30) + "\n",
    "Attachments/board.png": screenshot("HARBOUR TIDES"),
    "Attachments/deck.pdf": slide_pdf(),
}


@pytest.fixture(scope="module")
def minilm_counter() -> TokenCounter:
    model = MiniLM()
    return TokenCounter(lambda t: model.count_tokens(t) or 0, model.name)


@pytest.fixture
async def api(aiohttp_client: Client, make_vault: MakeVault, tmp_path: Path) -> Api:
    return await open_api(aiohttp_client, make_vault(VAULT), tmp_path / "data", ocr=True)


def recount(pack: dict[str, Any], counter: TokenCounter) -> int:
    """The pack's cost by its own stated rule, counted here on what a model is given."""
    total = counter.count(pack["preamble"])
    for e in pack["entries"]:
        entry = Entry(**{k: v for k, v in e.items() if k in Entry.__dataclass_fields__})
        total += sum(counter.count(b) for b in render(entry))
        if e.get("image"):
            total += image_tokens(e["image"]["width"], e["image"]["height"])
    return total + (counter.count(pack["summary"]) if pack["summary"] else 0)


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


async def test_pack_has_the_screenshot_with_its_paragraph(api: Api) -> None:
    status, body = await api.post("/api/context", {"query": "harbour tides board ferry times",
                                                   "inline": True})
    assert status == 200, body
    pack = body["pack"]
    images = [e for e in pack["entries"] if e["type"] == "image"]
    assert images and images[0]["path"] == "Attachments/board.png"
    shot = images[0]
    assert "TIDES" in shot["text"].upper()  # its OCR text
    assert any(PARAGRAPH in u["text"] for u in shot["used_in"]) or any(
        u["see"] for u in shot["used_in"])
    picture = decoded(base64.b64decode(shot["image"]["data"]))
    assert picture.format in ("PNG", "WEBP") and max(picture.size) <= 1568
    assert (picture.width, picture.height) == (shot["image"]["width"], shot["image"]["height"])
    # the paragraph beside the image is not repeated as a passage
    passages = [e for e in pack["entries"] if e["type"] == "passage"]
    shown = sum(PARAGRAPH in e["text"] for e in passages) + sum(
        PARAGRAPH in u["text"] for e in images for u in e["used_in"])
    assert shown == 1
    for p in passages:
        assert p["uri"].startswith("obsidian://open?vault=") and p["lines"][0] >= 1


@pytest.mark.parametrize("budget", [300, 1000, 4000])
async def test_budget_is_never_exceeded(api: Api, budget: int,
                                        minilm_counter: TokenCounter) -> None:
    status, body = await api.post("/api/context", {"query": "harbour sync folder switching "
                                                   "tools", "budget_tokens": budget})
    assert status == 200, body
    pack = body["pack"]
    assert pack["token_rule"] == "minilm tokenizer"
    assert pack["tokens"] == recount(pack, minilm_counter) <= budget
    for x in pack["left_out"]:
        assert x["reason"] and x["path"]
    if budget == 300:  # the long sync note cannot fit whole, nor every hit
        assert pack["left_out"] or any(e["text"].endswith("…") for e in pack["entries"])


async def test_image_route_downscales_images_and_pdf_pages(api: Api) -> None:
    ids = {}
    for path in ("Attachments/board.png", "Attachments/deck.pdf"):
        status, body = await api.post("/api/search", {"query": "tides friction", "path": path})
        assert status == 200 and body["results"], body
        ids[path] = body["results"][0]["id"]
    for item_id, side in ((ids["Attachments/board.png"], 200), (ids["Attachments/deck.pdf"], 640)):
        resp = await api.client.get(f"/api/items/{item_id}/image?max_px={side}",
                                    headers=api.headers())
        assert resp.status == 200 and resp.content_type.startswith("image/")
        data = await resp.read()
        assert len(data) <= 512 * 1024 and max(decoded(data).size) <= side
        resp = await api.client.get(f"/api/items/{item_id}/image")
        assert resp.status == 401
    assert_error(*await api.get(f"/api/items/{ids['Attachments/board.png']}/image?max_px=9"),
                 400, "bad_request")
    status, body = await api.post("/api/search", {"query": "pier storm", "kind": "note"})
    assert_error(*await api.get(f"/api/items/{body['results'][0]['id']}/image"), 404,
                 "not_found")


async def test_read_note_lines_and_pictures(api: Api) -> None:
    status, body = await api.post("/api/read", {"path": "Trips/Pier.md", "start_line": 5,
                                                "end_line": 5})
    assert status == 200 and body["read"]["text"] == PARAGRAPH
    status, body = await api.post("/api/read", {"path": "Attachments/deck.pdf", "page": 1})
    assert status == 200 and body["read"]["kind"] == "pdf"
    entry = body["read"]["entry"]
    assert entry["used_in"][0]["note"] == "Decks/Review.md" and "Friction" in entry["text"]
    assert decoded(base64.b64decode(entry["image"]["data"])).format in ("PNG", "WEBP")
    assert_error(*await api.post("/api/read", {"path": "../etc/passwd"}), 403, "forbidden")
    assert_error(*await api.post("/api/read", {"path": "Nope.md"}), 404, "not_found")
    assert_error(*await api.post("/api/read", {"path": "Attachments/deck.pdf", "page": 7}),
                 404, "not_found")


def test_estimate_is_fair_to_cjk() -> None:
    counter = TokenCounter()
    assert counter.rule == ESTIMATE_RULE
    assert estimate("同步笔记") == 4
    assert estimate("sync notes") == 3  # 9 characters: 3 by length, 2 by words
    text = "同步 " * 50 + "the selective sync settings " * 20
    cut = counter.cut(text, 40)
    assert cut.endswith("…") and counter.count(cut) <= 40 < counter.count(text)


def test_budget_rule_shrinks_images(make_vault: Callable[..., Path]) -> None:
    from vaultlens.search.tokens import side_for_tokens

    side = side_for_tokens(1600, 900, 500)
    assert image_tokens(side, side * 900 // 1600) <= 500 < image_tokens(side + 20,
                                                                        (side + 20) * 9 // 16)


TWO_SHOTS = "Both charts compare the **ferry** timetables of [[Harbours|the two harbours]]."
SHARED: dict[str, str | bytes] = {
    "Ferries.md": f"# Ferries\n\n{TWO_SHOTS}\n\n![[summer.png]]\n![[winter.png]]\n",
    "Attachments/summer.png": screenshot("SUMMER"),
    "Attachments/winter.png": screenshot("WINTER"),
}


@pytest.mark.parametrize("order", ["passage first", "pictures first"])
def test_a_paragraph_is_shown_once_in_a_pack(make_vault: Callable[..., Path],
                                             order: str) -> None:
    from conftest import indexed_reader
    from vaultlens.search.pack import Packer, PackOptions
    from vaultlens.search.pictures import Pictures

    ws = indexed_reader(make_vault(SHARED))
    try:
        searcher = ws.searcher()
        hits = searcher.search("ferry timetables of the two harbours", 10, vectors=False)
        passage = next(h for h in hits if h.kind == "note")
        pictures = [searcher.hit(i, 0.5, "ferry timetables")
                    for i in (searcher.catalog.item_hashes(p)[0][0]
                              for p in ("Attachments/summer.png", "Attachments/winter.png"))]
        assert all(pictures)
        ordered = [passage, *pictures] if order == "passage first" else [*pictures, passage]
        packer = Packer(searcher.catalog, Pictures(searcher.catalog, ws.config.vault),
                        TokenCounter(), "vault")
        pack = packer.build("ferry", [h for h in ordered if h], PackOptions(20_000, 4))
    finally:
        ws.close()
    plain = "Both charts compare the ferry timetables of the two harbours."
    text = "\n".join(b for e in pack.entries for b in render(e))
    assert text.count("timetables of") == 1, text
    assert plain in text
    assert "**" not in text and "[[" not in text
    shown = [e for e in pack.entries if plain in "".join(render(e))]
    assert len(shown) == 1
    number = pack.entries.index(shown[0]) + 1
    for e in pack.entries:  # the others point to the entry that shows it
        if e is not shown[0] and e.type == "image":
            assert e.used_in[0]["see"] == number and "in entry" in render(e)[1]
    if order == "pictures first":  # the passage held nothing else: left out, with its reason
        assert [x["reason"] for x in pack.left_out] == [
            "already shown beside an image in this pack"]
