"""The search page's results and layout in a real headless Chromium: chip counts equal what
each chip shows, "Show more", find-similar in the address, the notices (a partial answer, a
long query), the footer's failures and ignored files, no console errors, and nothing covered
or spilling sideways at 1280 and 390 px. Fields the daemon may not send yet are added to its
real answers by Playwright's route interception."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from browsing import needs_chromium
from conftest import write_vault
from documents import two_page_pdf
from indexing import screenshot
from served import Served, serving
from vaultlens.search.searcher import MAX_QUERY_CHARS

pytestmark = [pytest.mark.slow, needs_chromium]

LONG_PATH = "Projects/Harbour authority/Quarterly tide measurements/Harbour tide readings.md"
NOTES = 60  # more than the page shows at first (30), and more than a page of 50
VAULT: dict[str, str | bytes] = {
    **{f"Logs/Harbour log {n:02}.md": f"# Harbour log {n}\n\nBoat {n} left the harbour at "
       f"{n % 12 + 1} o'clock with the tide.\n" for n in range(NOTES)},
    "Trips/Pier.md": "# Pier\n\nThe tide board in the harbour office.\n\n![[board.png]]\n\n"
                     "![[crane.png]]\n",
    "Attachments/board.png": screenshot("HARBOUR TIDES"),
    "Attachments/crane.png": screenshot("HARBOUR CRANE"),
    "Decks/Review.md": "# Review\n\n![[deck.pdf#page=2]]\n",
    "Attachments/deck.pdf": two_page_pdf(),
    LONG_PATH: "# Readings\n\nHarbour tide readings, taken each quarter by the authority.\n",
    "Attachments/broken.png": b"\x89PNG\r\n\x1a\n but not really",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("results")
    with serving(write_vault(root / "Harbour", VAULT), root / "data") as daemon:
        yield daemon




def opened(browser: Any, served: Served, query: str = "", width: int = 1280,
           setup: Callable[[Any], None] | None = None) -> Any:
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    if setup:
        setup(page)
    page.goto(f"{served.base}/{query}#token={served.token}")
    return page


def amended(path: str, extra: dict[str, Any]) -> Callable[[Any], None]:
    """A setup that adds ``extra`` to the daemon's real answers at ``path``."""
    def setup(page: Any) -> None:
        def handle(route: Any) -> None:
            resp = route.fetch()
            route.fulfill(response=resp, body=json.dumps({**resp.json(), **extra}))
        page.route(f"**{path}", handle)
    return setup


def settled(page: Any, hits: bool = True) -> None:
    """Wait for the search the last action started to be shown (the page marks its results
    busy from a keystroke or a click until then)."""
    page.wait_for_selector("#results[aria-busy='false']", state="attached")
    if hits:
        page.wait_for_selector(".hit")


def cards(page: Any) -> int:
    return int(page.locator(".hit").count())


# counts and more results ------------------------------------------------------------------
def test_each_chip_counts_what_it_shows(browser: Any, served: Served) -> None:
    page = opened(browser, served, "?q=harbour")
    settled(page)
    for kind in ("note", "image", "pdf", ""):
        page.click(f"button.chip[data-kind='{kind}']")
        page.wait_for_selector(f"button.chip.on[data-kind='{kind}']")
        settled(page, hits=False)
        count = page.inner_text(f"button.chip[data-kind='{kind}']").rsplit(" ", 1)[-1]
        kinds = set(page.eval_on_selector_all(".hit", "hs => hs.map((h) => h.className)"))
        if kind:
            assert kinds <= {f"hit hit-{kind}"}, (kind, kinds)
        if count.endswith("+"):  # the chip offers more than it shows at first
            assert cards(page) == int(count[:-1]) and page.is_visible("#more"), (kind, count)
        else:
            assert cards(page) == int(count) and page.is_hidden("#more"), (kind, count)
    # this vault has screenshots, a PDF page and more notes than one page under "harbour"
    counts = page.eval_on_selector_all("button.chip",
                                       "bs => bs.map((b) => b.textContent.split(' ').pop())")
    assert counts[0].endswith("+") and counts[1].endswith("+") and counts[2] != "0"


def test_an_unknown_kind_in_the_address_searches_every_kind(browser: Any,
                                                             served: Served) -> None:
    page = opened(browser, served, "?q=harbour+tides&kind=spreadsheet")
    settled(page)
    assert cards(page) > 0 and page.is_visible("button.chip.on[data-kind='']")
    assert page.inner_text("#message") == ""


def test_show_more_until_every_note_is_shown(browser: Any, served: Served) -> None:
    page = opened(browser, served, "?q=harbour+boat+tide&kind=note")
    settled(page)
    shown = [cards(page)]
    while page.is_visible("#more"):
        page.click("#more")
        settled(page)
        shown.append(cards(page))
    titles = page.eval_on_selector_all(".hit a.open", "as => as.map((a) => a.textContent)")
    assert shown[0] == 30 and len(shown) >= 2 and shown == sorted(set(shown))
    assert len(titles) == len(set(titles)) >= NOTES  # every log, once
    assert sum("Harbour log" in t for t in titles) == NOTES


# find similar ------------------------------------------------------------------------------
def test_find_similar_lives_in_the_address(browser: Any, served: Served) -> None:
    page = opened(browser, served, "?q=harbour+tides&kind=image")
    settled(page)
    page.locator(".hit-image button.similar").first.click()
    page.wait_for_function("() => location.search.includes('similar=')")
    page.wait_for_function("() => document.getElementById('message').textContent"
                           ".startsWith('Similar to')")
    assert "q=" not in page.url and "kind=" not in page.url
    assert page.input_value("#q") == ""
    assert page.is_hidden("#kind-chips")
    assert "similar to: Attachments/" in page.inner_text("#filter-chips")
    similar_url = page.url
    page.go_back()  # back to the search, as it was
    page.wait_for_function("() => location.search.includes('q=harbour')")
    settled(page)
    assert page.input_value("#q") == "harbour tides"
    assert page.is_visible("button.chip.on[data-kind='image']")
    assert page.inner_text("#message") == ""
    page.goto(similar_url)  # a reload or a bookmark shows the same
    page.wait_for_function("() => document.getElementById('message').textContent"
                           ".startsWith('Similar to')")
    assert cards(page) > 0 and page.input_value("#q") == ""
    page.fill("#q", "crane")  # typing leaves it for a search
    page.wait_for_function("() => location.search === '?q=crane'")
    page.go_back()
    page.wait_for_function("() => location.search.includes('similar=')")


# notices -----------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, expected", [
    ({"partial": True, "partial_reason": "indexing", "indexed_share": 0.234},
     "Still indexing: 23% of the vault so far; results may be incomplete."),
    ({"partial": True}, "The model is still loading: keyword hits only."),
    ({"partial": True, "partial_reason": "model loading", "indexed_share": 1.0},
     "The model is still loading: keyword hits only."),
    ({"partial": False, "partial_reason": None, "indexed_share": 1.0}, ""),
])
def test_a_partial_answer_says_why(browser: Any, served: Served, extra: dict[str, Any],
                                   expected: str) -> None:
    page = opened(browser, served, "?q=harbour", setup=amended("/api/search", extra))
    settled(page)
    assert page.inner_text("#notice") == expected if expected else page.is_hidden("#notice")


def test_a_long_query_is_cut_where_the_server_cuts_it(browser: Any, served: Served) -> None:
    page = opened(browser, served)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(json.loads(r.post_data or "{}")["query"])
            if r.url.endswith("/api/search") else None)
    words = "harbour tides " * 5000  # 70,000 characters: more than a JSON body may hold
    page.fill("#q", words)
    settled(page)
    assert "Search failed" not in page.inner_text("#message")
    assert f"first {MAX_QUERY_CHARS:,} characters" in page.inner_text("#notice")
    assert sent and all(len(q) <= MAX_QUERY_CHARS for q in sent)
    assert all(words.startswith(q) and q.endswith(("harbour", "tides")) for q in sent)
    assert page.input_value("#q") == words  # what was typed stays in the box
    page.fill("#q", "harbour")
    settled(page)
    assert page.is_hidden("#notice")


# the footer and the drop hint --------------------------------------------------------------
def test_failures_and_ignored_files_in_the_footer(browser: Any, served: Served) -> None:
    failure = {"path": "Attachments/broken.png", "status": "failed", "reason": "not an image"}
    setup = amended("/api/status", {"failures": [failure], "ignored": {"css": 12, "js": 3,
                                                                      "ogg": 0}})
    page = opened(browser, served, setup=setup)
    page.wait_for_selector("#skipped:not([hidden])")
    assert page.inner_text("#skipped-summary") == "1 file(s) could not be indexed"
    assert page.inner_text("#ignored") == "Not searched: 12 css, 3 js files"
    clean = opened(browser, served, setup=amended("/api/status", {"failures": [],
                                                                   "ignored": {}}))
    clean.wait_for_function("() => document.getElementById('status-text').textContent"
                            ".includes('visual search')")
    assert clean.is_hidden("#skipped") and clean.is_hidden("#ignored")


@pytest.mark.parametrize("visual", [False, True])
def test_the_drop_hint_only_with_visual_search(browser: Any, served: Served,
                                               visual: bool) -> None:
    page = opened(browser, served, setup=amended("/api/status", {"visual_search": visual}))
    page.wait_for_function("() => document.getElementById('status-text').textContent"
                           ".includes('visual search')")
    assert page.is_visible("#drop-hint") is visual


# no console errors, and a public icon ------------------------------------------------------
def test_no_console_errors_on_load_and_during_a_search(browser: Any, served: Served) -> None:
    problems: list[str] = []

    def watch(page: Any) -> None:
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)

    page = opened(browser, served, setup=watch)
    page.wait_for_function("() => document.getElementById('status-text').textContent"
                           ".includes('visual search')")
    page.fill("#q", "harbour tides")
    settled(page)
    page.click("button.chip[data-kind='image']")
    page.wait_for_selector("button.chip.on[data-kind='image']")
    settled(page)
    if page.is_visible("#more"):
        page.click("#more")
        settled(page, hits=False)
    assert problems == []


def test_the_icon_needs_no_token(served: Served) -> None:
    import urllib.request

    with urllib.request.urlopen(served.base + "/favicon.ico") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("image/svg")
        assert resp.read().startswith(b"<svg")


# layout at two widths ----------------------------------------------------------------------
BREAKS = """(a) => {
    // the characters after which the link's text wraps to a new line
    const text = a.textContent, range = document.createRange(), out = [];
    const nodes = [...a.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE);
    let top = null, prev = "";
    for (const node of nodes) for (let i = 0; i < node.length; i++) {
        range.setStart(node, i); range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (!rect) continue;
        if (top !== null && rect.top > top + 2) out.push(prev);
        top = rect.top; prev = node.data[i];
    }
    return {text, out};
}"""


def at_width(browser: Any, served: Served, width: int) -> Any:
    # failures give the footer a second line, and a long list when it is opened
    failures = [{"path": f"Attachments/broken {n}.png", "status": "failed",
                 "reason": "not an image"} for n in range(12)]
    page = opened(browser, served, "?q=harbour+tide+readings+authority", width=width,
                  setup=amended("/api/status", {"failures": failures}))
    settled(page)
    page.wait_for_selector("#skipped:not([hidden])")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing spills
    return page


@pytest.mark.parametrize("width", [1280, 390])
def test_no_empty_band_above_the_first_card(browser: Any, served: Served, width: int) -> None:
    page = at_width(browser, served, width)
    gap = page.evaluate("""() => document.querySelector('.hit').getBoundingClientRect().top
        - document.querySelector('nav.filters').getBoundingClientRect().bottom""")
    assert 0 <= gap <= 20


@pytest.mark.parametrize("width", [1280, 390])
def test_the_footer_covers_nothing(browser: Any, served: Served, width: int) -> None:
    page = at_width(browser, served, width)
    # the status is one line, the footer at most two, and at the end of the page it covers
    # nothing
    line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 19")
    assert page.locator("#status-text").bounding_box()["height"] < 1.5 * line
    footer = page.locator("footer.status").bounding_box()
    assert footer["height"] < 3 * line, footer
    page.click("#skipped-summary")  # the list of failures opens in the footer
    page.wait_for_selector("#skipped-list li")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_timeout(100)
    footer = page.locator("footer.status").bounding_box()
    for last in (".hit >> nth=-1", "#more"):
        box = page.locator(last).bounding_box()
        assert box is not None and box["y"] + box["height"] <= footer["y"], (last, box, footer)


@pytest.mark.parametrize("width", [1280, 390])
def test_paths_wrap_at_a_slash(browser: Any, served: Served, width: int) -> None:
    page = at_width(browser, served, width)
    # a path wraps after a "/" (or at a space), never inside a name
    for link in page.locator("a.open").all():
        found = link.evaluate(BREAKS)
        assert all(c in "/ " for c in found["out"]), found
    if width == 390:
        long = page.locator("a.open", has_text="Harbour tide readings").first
        assert long.evaluate(BREAKS)["out"], "the long path fits one line at 390 px?"


def test_page_modules_cut_and_count(browser: Any, served: Served) -> None:
    page = opened(browser, served)
    found = page.evaluate("""async () => {
        const s = await import('/web/search.js');
        const st = await import('/web/status.js');
        return [s.cutQuery('aa bb cc', 5), s.cutQuery('abcdefgh', 5), s.cutQuery('ab', 5),
                s.partialNote({partial: true, partial_reason: 'indexing'}),
                s.partialNote({partial: true, partial_reason: 'indexing', indexed_share: 1.7}),
                st.ignoredLine({json: 2, css: 2, ico: 9}), st.ignoredLine(undefined)];
    }""")
    assert found == ["aa", "abcde", "ab", "Still indexing: results may be incomplete.",
                     "Still indexing: 100% of the vault so far; results may be incomplete.",
                     "Not searched: 9 ico, 2 css, 2 json files", ""]
