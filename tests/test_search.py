"""Search on an indexed vault with the real MiniLM: images found through the paragraphs around
them, grouping, highlights, filters, phrases, negation, CJK, passages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import indexed_reader, write_vault
from indexing import screenshot
from vaultlens.search.hits import Hit
from vaultlens.search.query import QueryError
from vaultlens.search.searcher import Searcher
from vaultlens.workspace import Workspace

OLD = datetime(2020, 6, 1, tzinfo=UTC).timestamp()
VAULT: dict[str, str | bytes] = {
    "Trips/Lisbon.md": (
        "---\ntags: [trip]\nstatus: done\nctr: 12\ndate: 2023-04-02\n---\n# Lisbon\n\n"
        "The yellow tram climbs the hill to the castle every morning.\n\n"
        "![[tram.png]]\n\n"
        "Pastries at the bakery by the river were the best part.\n"),
    "Trips/Oslo.md": (
        "---\ntags: [trip, cold]\nstatus: draft\nctr: 3\n---\n# Oslo\n\n"
        "Ferry tickets to the islands cost less with a monthly pass.\n\n![[tram.png]]\n"),
    "Work/Budget.md": (
        "---\nstatus: done\nctr: 7\ndate: 2021-01-15\n---\n# Budget\n\n"
        "Quarterly budget review with the finance team.\n\n"
        "Spreadsheet formulas for currency conversion.\n\n"
        "Travel expenses need receipts before the end of the month.\n\n"
        "## Unrelated\n\nThe office plants need water on Fridays.\n"),
    "Work/Chart.md": "# Chart\n\nA purple chart comparing two tools.\n\n![[chart.png]]\n\n"
                     "It mentions the friction cost of switching.\n",
    "中文/同步.md": "# 同步\n\n选择性同步可以排除一个文件夹 不让它同步到其他设备。\n",
    "Attachments/tram.png": screenshot("TRAM 28"),
    "Attachments/chart.png": screenshot("Q3"),
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = write_vault(tmp_path_factory.mktemp("search") / "vault", VAULT)
    os.utime(root / "Work/Chart.md", (OLD, OLD))
    reader = indexed_reader(root)
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def searcher(ws: Workspace) -> Searcher:
    return ws.searcher()


def where(hits: list[Hit]) -> list[tuple[str, str]]:
    return [(h.kind, h.path) for h in hits]


def test_a_paragraph_finds_the_screenshot_pasted_beside_it(searcher: Searcher) -> None:
    # the image has no text of its own (OCR off): only the paragraph around it describes it
    hits = searcher.search("purple chart that compares tools", 3)
    assert ("image", "Attachments/chart.png") in where(hits)
    image = next(h for h in hits if h.kind == "image")
    assert [(x["note"], x["line"]) for x in image.links] == [("Work/Chart.md", 5)]
    # its snippet is the paragraph around it, without the embed's own markup
    assert image.text.startswith("A purple chart comparing two tools") and "![[" not in image.text
    assert image.text[slice(*image.highlights[0])].lower() == "purple"
    note = next(h for h in hits if h.kind == "note")
    assert note.path == "Work/Chart.md"
    assert [x["path"] for x in note.images] == ["Attachments/chart.png"]


def test_an_image_placed_twice_appears_once_with_both_places(searcher: Searcher) -> None:
    hits = searcher.search("yellow tram climbing to the castle", 10)
    trams = [h for h in hits if h.path == "Attachments/tram.png"]
    assert len(trams) == 1
    assert {x["note"] for x in trams[0].links} == {"Trips/Lisbon.md", "Trips/Oslo.md"}


def test_snippets_carry_highlight_spans(searcher: Searcher) -> None:
    hits = searcher.search("ferry tickets", 3)
    note = next(h for h in hits if h.kind == "note")
    assert [note.text[a:b].lower() for a, b in note.highlights] == ["ferry", "tickets"]
    # an image with no words of its own shows the words around it that matched
    image = next(h for h in hits if h.kind == "image")
    assert [image.text[a:b].lower() for a, b in image.highlights] == ["ferry", "tickets"]


def test_kind_path_and_negated_path(searcher: Searcher) -> None:
    assert {h.kind for h in searcher.search("tram kind:image", 5)} == {"image"}
    assert all(h.path.startswith("Trips/") for h in searcher.search("tickets path:Trips", 5))
    assert all(not h.path.startswith("Trips/")
               for h in searcher.search("tram tickets budget -path:Trips", 10))


def test_tags_reach_the_images_their_notes_place(searcher: Searcher) -> None:
    hits = searcher.search("tram castle ferry tag:cold", 10)
    assert {h.path for h in hits} == {"Trips/Oslo.md", "Attachments/tram.png"}
    hits = searcher.search("tram castle ferry budget chart -tag:trip", 10)
    assert hits and "Attachments/tram.png" not in {h.path for h in hits}  # both notes: trip
    assert not {h.path for h in hits} & {"Trips/Lisbon.md", "Trips/Oslo.md"}


def test_properties_with_comparisons(searcher: Searcher) -> None:
    notes = lambda q: {h.path for h in searcher.search(q, 20) if h.kind == "note"}  # noqa: E731
    query = "budget tram ferry pastries receipts"
    assert notes(f"{query} status:done") == {"Trips/Lisbon.md", "Work/Budget.md"}
    assert notes(f"{query} ctr>5") == {"Trips/Lisbon.md", "Work/Budget.md"}
    assert notes(f"{query} ctr<=5") == {"Trips/Oslo.md"}
    # a note without the property is not done either
    assert notes(f"{query} chart -status:done") == {"Trips/Oslo.md", "Work/Chart.md"}


def test_before_and_after_use_frontmatter_dates_then_file_times(searcher: Searcher) -> None:
    query = "budget tram purple chart ferry"
    assert {h.path for h in searcher.search(f"{query} before:2022 kind:note", 10)} == {
        "Work/Budget.md", "Work/Chart.md"}  # Budget by its date: property, Chart by its mtime
    after = {h.path for h in searcher.search(f"{query} after:2023-04 kind:note", 10)}
    assert "Trips/Lisbon.md" in after and "Work/Budget.md" not in after
    assert "Work/Chart.md" not in after


def test_exact_phrases_and_excluded_words(searcher: Searcher) -> None:
    hits = searcher.search('"friction cost"', 10)
    assert hits and all("friction cost" in h.text.lower() for h in hits)
    assert searcher.search('"cost friction"', 10) == []  # the words, not in that order
    # a passage goes when any of its paragraphs has the word, not only its best one
    hits = searcher.search("yellow tram hill pastries bakery river -castle", 10)
    assert "Trips/Lisbon.md" not in {h.path for h in hits if h.kind == "note"}
    # excluded per hit: the plants paragraph goes, the rest of its note stays
    hits = searcher.search("budget receipts office plants -plants", 10)
    assert hits and all("plants" not in h.text.lower() for h in hits)
    assert ("note", "Work/Budget.md") in where(hits)


def test_filters_alone_list_what_matches(searcher: Searcher) -> None:
    assert where(searcher.search("kind:image", 10)) == [
        ("image", "Attachments/chart.png"), ("image", "Attachments/tram.png")]


def test_chinese_query_on_a_chinese_note(searcher: Searcher) -> None:
    assert searcher.embedder.multilingual is False  # so the vectors sit this one out
    assert where(searcher.search("怎么排除文件夹同步", 1)) == [("note", "中文/同步.md")]


def test_neighbouring_paragraphs_come_back_as_one_passage(searcher: Searcher) -> None:
    hits = searcher.search("budget review spreadsheet formulas currency", 10)
    budget = [h for h in hits if h.path == "Work/Budget.md"]
    assert budget[0].line is not None and budget[0].end_line is not None
    assert budget[0].end_line > budget[0].line  # two paragraphs, one hit
    # a paragraph under another heading stays its own hit
    assert all(h.headings == ["Budget"] for h in budget if h.line == budget[0].line)


def test_bad_filter_is_an_error(searcher: Searcher) -> None:
    with pytest.raises(QueryError, match="not a date"):
        searcher.search("tram before:someday", 5)


def test_paging_has_no_duplicates(searcher: Searcher) -> None:
    first = searcher.search("tram budget ferry chart", 3)
    second = searcher.search("tram budget ferry chart", 3, offset=3)
    assert not {h.id for h in first} & {h.id for h in second}


def test_keywords_only_while_loading(searcher: Searcher) -> None:
    hits = searcher.search("ferry tickets", 3, vectors=False)
    # the paragraph, and the picture pasted under it (which that paragraph describes)
    assert set(where(hits[:2])) == {("note", "Trips/Oslo.md"), ("image", "Attachments/tram.png")}


def test_properties_are_stored_typed(ws: Workspace) -> None:
    rows = set(tuple(r) for r in ws.catalog._conn.execute(
        "SELECT name, value, number FROM properties JOIN files ON files.id = file_id"
        " WHERE files.path = 'Trips/Lisbon.md'"))
    assert ("ctr", "12", 12.0) in rows and ("date", "2023-04-02", None) in rows
    assert ("tags", "trip", None) in rows


def test_words_with_colons_stay_words(searcher: Searcher) -> None:
    q = searcher.parse("meeting at 10:30 status:done")  # status is a property in this vault
    assert q.text == "meeting at 10:30" and q.filters.properties[0].name == "status"


def test_path_filter_ranks_within_the_folder_exactly(searcher: Searcher) -> None:
    # never an item outside the folder, however well it matches
    hits = searcher.search("budget receipts path:中文", 5)
    assert all(h.path.startswith("中文/") for h in hits)
    assert searcher.catalog.items_in(["Trips"], [], ["image"], []) == []
    trips = searcher.catalog.items_in(["Trips"], [], [], [])
    assert trips and set(trips) == {
        r[0] for r in searcher.catalog._conn.execute(
            "SELECT items.id FROM items JOIN files ON files.id = file_id"
            " WHERE files.path LIKE 'Trips/%'")}
    # % and _ in a folder name are literal
    assert searcher.catalog.items_in(["Tr_ps"], [], [], []) == []
    assert searcher.catalog.items_in(["%"], [], [], []) == []


def test_words_with_a_case_change_bring_their_parts() -> None:
    from vaultlens.search.keywords import fts_tokens

    assert fts_tokens("macOS iPhone") == ["macos", "iphone", "mac", "os", "phone"]
    assert fts_tokens("Sync sync SYNC") == ["sync"]  # plain words: once each, no parts
    assert fts_tokens("同步设置") == ["同步", "步设", "设置", "同", "步", "设", "置"]


def test_a_pasted_page_is_searched_by_its_start(searcher: Searcher,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultlens.search import keywords
    from vaultlens.search import searcher as search_module

    words = " ".join(f"w{i}x" for i in range(5000))
    assert len(keywords.fts_tokens(words)) == keywords.MAX_QUERY_TOKENS
    seen: list[str] = []
    real = searcher.keyword_scores
    monkeypatch.setattr(searcher, "keyword_scores",
                        lambda text, *a: seen.append(text) or real(text, *a))
    searcher.search("ferry tickets " + words, 3)
    assert seen and len(seen[0]) <= search_module.MAX_QUERY_CHARS
    assert seen[0].startswith("ferry tickets w0x")


def test_an_image_does_not_count_its_paragraphs_words_twice(
        searcher: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image's own keyword match mostly comes from the words around it; it is lent the
    paragraph's score too. The larger of the two plus half the smaller keeps a deck page whose
    own match is weak below the paragraph that answers the query (adding both put it above)."""
    from dataclasses import replace

    from vaultlens.search.fusion import Fusion, FusionWeights
    from vaultlens.search.keywords import Matches

    paragraph, image = 101, 202
    monkeypatch.setattr(searcher, "weighted_terms", lambda text: {"w": 1.0})
    monkeypatch.setattr(searcher, "keyword_scores",
                        lambda *a, **k: Matches({paragraph: 1.0, image: 0.15}))
    monkeypatch.setattr(searcher.catalog, "images_around",
                        lambda ids, places=None: {paragraph: {image}})
    monkeypatch.setattr(searcher, "fusion", Fusion(replace(FusionWeights(), coverage=0.0,
                                                           context=0.9, lent_rest=0.5)))
    scores = searcher.scores("w", 10, None)
    own, lent = 0.15, 0.9 * 1.0  # keywords alone: BM25 over the best
    assert scores[image] == pytest.approx(max(own, lent) + 0.5 * min(own, lent))
    assert scores[image] < scores[paragraph] < own + lent


def test_a_failed_keyword_query_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3
    from types import SimpleNamespace

    from vaultlens.search.searcher import Searcher

    def broken(*_: object) -> None:
        raise sqlite3.OperationalError("fts5: syntax error")

    catalog = SimpleNamespace(keyword_index=SimpleNamespace(
        bm25=broken, term_frequencies=lambda words: [(w, 1) for w in words]))
    searcher = Searcher(catalog, None, None)  # type: ignore[arg-type]
    with caplog.at_level("WARNING"):
        assert searcher.keyword_scores("x", 10, terms={"x": 1.0}).bm25 == {}
    assert "keyword search failed" in caplog.text


PIECES = ["tram", "yellow", "status:done", "ctr>5", "kind:image", "path:Trips", "10:30",
          '"friction cost"', "-draft", "同步", "before:2024", "after:soon", "x:y", "-kind:pdf",
          "tag:trip", "http://x", "  "]


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(PIECES), max_size=6).map(" ".join),
                 st.text(max_size=30)), st.booleans())
def test_the_text_a_daemon_announces_is_the_text_its_search_embeds(
        searcher: Searcher, query: str, literal: bool) -> None:
    """The daemon embeds a waiting search's query ahead of its search (coalesce.py), from the
    text told without the catalog: it must be the very text the search embeds, or None."""
    from collections.abc import Sequence

    from vaultlens.embedders.base import Embedder, Input, Role, Vectors
    from vaultlens.search.searcher import text_to_embed

    class Spy(Embedder):
        def __init__(self, model: Embedder) -> None:
            self.model, self.seen = model, []  # type: list[str]
            self.name, self.signature, self.dimension = model.name, model.signature, 384
            self.multilingual = model.multilingual

        def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
            self.seen += [i.text or "" for i in inputs]
            return self.model.embed(inputs, role)

    spy = Spy(searcher.embedder)
    told = text_to_embed(query, literal, spy.multilingual)
    try:
        Searcher(searcher.catalog, searcher.vectors, spy).search(query, 3, literal=literal)
    except QueryError:
        assert told is None
        return
    if told is not None:
        assert spy.seen == [told]
    elif ":" not in query and "<" not in query and ">" not in query and "=" not in query:
        assert spy.seen == []  # nothing left unsure: None means nothing is embedded


def test_hit_json_is_its_fields_and_a_copy() -> None:
    hit = Hit(id=3, kind="image", path="a.png", line=None, end_line=None, page=None, score=0.5,
              text="shot", highlights=[[0, 4]], headings=["H"],
              links=[{"note": "n.md", "line": 2, "context": [{"text": "p"}]}],
              images=[{"path": "b.png"}], matched="words")
    out = hit.to_json()
    assert out == asdict(hit)
    out["links"].append({"note": "other.md"})
    out["highlights"].clear()
    assert len(hit.links) == 1 and hit.highlights == [[0, 4]]  # the hit's lists are its own


class Waiting:
    """Wraps the query model: a query's vector comes back only once the words are being
    scored (or after 5 s), and says which it was."""

    def __init__(self, model: object, words_started: object) -> None:
        self.model, self.words_started = model, words_started
        self.overlapped: list[bool] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def embed_texts(self, texts: list[str], role: str) -> object:
        self.overlapped.append(self.words_started.wait(5))  # type: ignore[attr-defined]
        return self.model.embed_texts(texts, role)  # type: ignore[attr-defined]


def test_the_query_is_embedded_while_its_words_are_scored(
        searcher: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from vaultlens.embedders.base import ModelError

    started = threading.Event()
    scored = searcher.keyword_scores

    def keyword_scores(*args: object, **kwargs: object) -> object:
        started.set()
        return scored(*args, **kwargs)  # type: ignore[arg-type]

    waiting = Waiting(searcher.embedder, started)
    monkeypatch.setattr(searcher, "embedder", waiting)
    monkeypatch.setattr(searcher, "keyword_scores", keyword_scores)
    hits = searcher.search("yellow tram up the hill", 3)
    assert waiting.overlapped == [True] and "Trips/Lisbon.md" in [h.path for h in hits]

    def failing(texts: list[str], role: str) -> object:
        raise ModelError("the query model is gone")

    monkeypatch.setattr(waiting, "embed_texts", failing)
    with pytest.raises(ModelError, match="gone"):  # the daemon answers by keywords then
        searcher.search("yellow tram", 3)


def test_a_lone_surrogate_in_a_query_still_ranks_by_meaning(searcher: Searcher) -> None:
    vector = searcher.query_vector("\ud800 harbour")  # what JSON lets through
    assert vector is not None and abs(float((vector * vector).sum()) - 1.0) < 1e-3
