"""The search page in a real headless Chromium (Playwright driving the system's chromium),
against a real `vaultlens serve` on a temp vault. Skips when no chromium is installed; CI
installs it. Set VAULTLENS_SCREENSHOTS=DIR to keep the screenshots."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from browsing import needs_chromium, signed_in
from conftest import write_vault
from documents import two_page_pdf
from indexing import screenshot
from served import Served, serving

pytestmark = [pytest.mark.slow, needs_chromium]




PARAGRAPH = "The tide board in the harbour office listed every boat leaving that week."
VAULT: dict[str, str | bytes] = {
    "Trips/Pier.md": f"# Pier\n\n## Office\n\n{PARAGRAPH}\n\n![[board.png]]\n\n"
                     "We left before the storm.\n",
    "Sync.md": "# Selective sync\n\nExclude a folder from Obsidian Sync in the selective sync "
               "settings.\n",
    "Attachments/board.png": screenshot("HARBOUR TIDES"),
    "Decks/Review.md": "# Review\n\nThe second slide of the deck:\n\n![[deck.pdf#page=2]]\n",
    "Attachments/deck.pdf": two_page_pdf(),
    "Attachments/broken.png": b"\x89PNG\r\n\x1a\n but not really",
}
# clicks on obsidian:// links are recorded, not followed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("page")
    with serving(write_vault(root / "Harbour", VAULT), root / "data") as daemon:
        yield daemon






def test_sign_in_through_the_fragment(browser: Any, served: Served) -> None:
    page = signed_in(browser, served)
    page.wait_for_function("() => document.getElementById('status-text').textContent"
                           ".includes('visual search')")
    assert "token" not in page.url and "#" not in page.url
    assert served.token not in page.evaluate("location.href + JSON.stringify(history.state)")
    page.reload()
    page.fill("#q", "selective sync")
    page.wait_for_selector(".hit")
    assert page.locator("#signin").is_hidden()


def test_a_word_in_a_screenshot_finds_it_beside_its_paragraph(browser: Any,
                                                              served: Served) -> None:
    page = signed_in(browser, served)
    page.fill("#q", "tides")
    hit = page.locator(".hit-image").first
    hit.wait_for()
    assert "Attachments/board.png" in hit.locator("a.open").inner_text()
    assert PARAGRAPH in hit.locator(".context").inner_text()
    assert "words in the picture" in hit.locator(".why").inner_text()
    page.wait_for_function(
        "() => document.querySelector('.hit-image img.thumb').naturalWidth > 0")
    src = hit.locator("img.thumb").get_attribute("src") or ""
    assert src.startswith("blob:")  # fetched with the Authorization header, not by URL


def test_pdf_page_with_its_number_and_thumbnail(browser: Any, served: Served) -> None:
    page = signed_in(browser, served)
    page.fill("#q", "friction cost switching")
    hit = page.locator(".hit-pdf").first
    hit.wait_for()
    assert hit.locator(".page").inner_text() == "page 2"
    page.wait_for_function(
        "() => document.querySelector('.hit-pdf img.thumb').naturalWidth > 0")


def test_find_similar_and_a_pasted_picture(browser: Any, served: Served) -> None:
    page = signed_in(browser, served)
    page.fill("#q", "tides")
    page.locator(".hit-image button.similar").first.click()
    page.wait_for_function(
        "() => document.getElementById('message').textContent.startsWith('Similar to')")
    assert page.locator(".hit").count() > 0
    page.wait_for_function("() => document.getElementById('status-text').textContent"
                           ".includes('visual search off')")
    page.evaluate("""() => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array([137, 80, 78, 71])], "shot.png",
                                {type: "image/png"}));
        document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data}));
    }""")
    assert "needs a visual model" in page.inner_text("#message")


def test_arrow_and_enter_open_the_hit_in_obsidian(browser: Any, served: Served) -> None:
    page = signed_in(browser, served)
    page.fill("#q", "selective sync settings")
    page.wait_for_selector(".hit-note")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    opened = page.evaluate("window.__opened")
    assert opened == [f"obsidian://open?vault=Harbour&file={quote('Sync#Selective sync', safe='')}"]
    page.keyboard.press("c")
    page.wait_for_selector("#toast:not([hidden])")
    assert "[[Sync#Selective sync]]" in page.inner_text("#toast")
    # the Advanced URI setting jumps to the line instead
    page.click("#settings-button")
    page.check("#advanced-uri")
    page.focus("#q")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.evaluate("window.__opened")[-1] == (
        "obsidian://advanced-uri?vault=Harbour&filepath=Sync.md&line=3")


def test_status_lists_skipped_files_with_reasons(browser: Any, served: Served) -> None:
    page = signed_in(browser, served)
    page.wait_for_selector("#skipped:not([hidden])")
    page.click("#skipped-summary")
    listed = page.inner_text("#skipped-list")
    assert "Attachments/broken.png: " in listed and "image" in listed.lower()


def test_kind_chip_narrows_and_the_url_keeps_the_state(browser: Any, served: Served) -> None:
    page = signed_in(browser, served)
    page.fill("#q", "harbour tides board")
    page.wait_for_selector(".hit-note")
    page.click("button.chip[data-kind='image']")
    page.wait_for_function("""() => {
        const hits = [...document.querySelectorAll('.hit')];
        return hits.length > 0 && hits.every((h) => h.classList.contains('hit-image'));
    }""")
    assert "kind=image" in page.url and "q=harbour" in page.url
    page.reload()  # the state survives a reload (and so a bookmark)
    page.wait_for_selector(".hit-image")
    assert page.locator(".hit-note").count() == 0
    assert page.input_value("#q") == "harbour tides board"


def test_a_wrong_token_says_so(browser: Any, served: Served) -> None:
    page = browser.new_page()
    page.goto(f"{served.base}/#token=wrong")
    page.wait_for_selector("#signin:not([hidden])")
    text = page.inner_text("#signin-message")
    assert "wrong" in text and "vaultlens token" in text
    fresh = browser.new_page()
    fresh.goto(served.base)
    fresh.wait_for_selector("#signin:not([hidden])")
    assert "not signed in" in fresh.inner_text("#signin-message")


def test_security_headers(served: Served) -> None:
    import urllib.request

    with urllib.request.urlopen(served.base + "/") as resp:
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        html = resp.read().decode()
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all("src=" in tag for tag in scripts)  # no inline script
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html)  # no inline event handler


def test_progress_shows_while_200_notes_index(browser: Any, tmp_path: Path) -> None:
    notes: dict[str, str | bytes] = {
        f"Notes/Note {n}.md": f"# Note {n}\n\n" + "\n\n".join(
            f"Paragraph {p} of note {n} about harbours, tides and boats." for p in range(8))
        for n in range(200)}
    daemon = Served(write_vault(tmp_path / "Big", notes), tmp_path / "data")
    try:
        daemon.wait_up()
        page = browser.new_page()
        page.goto(f"{daemon.base}/#token={daemon.token}")
        page.wait_for_function(
            "() => /Indexing \\d+\\/2\\d\\d/.test("
            "document.getElementById('status-text').textContent)"
            " && !document.getElementById('progress').hidden", timeout=120_000)
        page.wait_for_function("() => document.getElementById('progress').hidden",
                               timeout=180_000)
        assert "Indexing" not in page.inner_text("#status-text")
    finally:
        daemon.stop()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots(browser: Any, served: Served, scheme: str, width: int,
                     tmp_path: Path) -> None:
    page = signed_in(browser, served, "?q=harbour+tides+board", color_scheme=scheme,
                     viewport={"width": width, "height": 900})
    page.wait_for_selector(".hit-image img.thumb")
    page.wait_for_function(
        "() => document.querySelector('.hit-image img.thumb').naturalWidth > 0")
    # nothing spills sideways at either width
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    out = Path(os.environ.get("VAULTLENS_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"page-{width}-{scheme}.png"), full_page=True)
    labels = page.evaluate("""() => [...document.querySelectorAll('input, button')].filter(
        (e) => !e.getAttribute('aria-label') && !e.labels?.length && !e.textContent.trim()
    ).length""")
    assert labels == 0  # every control has an accessible name
