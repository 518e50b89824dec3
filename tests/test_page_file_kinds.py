"""SVG diagrams, canvas cards and Excalidraw drawings found by their words on the search page,
in a real headless Chromium (as tests/test_page.py drives it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import file_kinds as fk
from browsing import needs_chromium, signed_in
from served import Served, serving

pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("kinds-page")
    fk.write_vault(root / "vault")
    with serving(root / "vault", root / "data") as daemon:
        yield daemon


def _first(page: Any, query: str, kind: str, path: str, text: str) -> Any:
    """The first hit of ``kind`` whose title holds ``path`` and that shows ``text``: this
    query's answer, not the last one's."""
    page.fill("#q", query)
    hit = page.locator(f".hit-{kind}", has=page.locator("a.open", has_text=path),
                       has_text=text).first
    hit.wait_for()
    return hit


def test_diagrams_cards_and_drawings_on_the_page(browser: Any, served: Served) -> None:
    page = signed_in(browser, served)
    failed: list[str] = []  # the favicon's 401 is the page's own issue, not these files'
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)

    hit = _first(page, "Billing reconciler", "image", "Diagrams/billing.drawio.svg",
                 fk.DRAWIO_LABEL)
    assert page.locator(".hit").first.locator("a.open").inner_text() == \
        "Diagrams/billing.drawio.svg"
    assert fk.DRAWIO_LABEL in hit.inner_text()
    # the SVG's thumbnail was rendered in the PDF reader's child
    page.wait_for_function(
        "() => document.querySelector('.hit-image img.thumb').naturalWidth > 0")

    hit = _first(page, "tide tables harbour pilots", "note", "Boards/Payments.canvas:",
                 "tide tables")
    href = hit.locator("a.open").get_attribute("href") or ""
    assert href.startswith("obsidian://open") and "Payments.canvas" in href

    hit = _first(page, "Kafka ingestion tier", "note", ".excalidraw.md:", "Kafka ingestion tier")
    assert fk.HIDDEN not in page.locator("#results").inner_text()

    shot = _first(page, "reconciliation job settles card refunds", "image",
                  "Attachments/refund-dashboard.png", "acquiring bank")
    assert "acquiring bank" in shot.locator(".context").inner_text()
    assert not failed, failed  # every thumbnail and search answered
