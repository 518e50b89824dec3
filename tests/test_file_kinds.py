"""SVG, JSON Canvas and Excalidraw drawings: read as the tools write them (tests/file_kinds.py),
found by their words through a real daemon's API, and hostile or broken ones skipped with a
reason, never a crash."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import file_kinds as fk
from lzstring import compress_to_base64, decompress_from_base64
from served import Client, Served, free_port
from vaultlens.extract.svg import MAX_SVG_BYTES, SvgError, svg_text
from vaultlens.index.datadir import DataDir
from vaultlens.vault.context import link_note
from vaultlens.vault.links import Resolver
from vaultlens.vault.notes import Note, NoteParser
from vaultlens.vault.vault import FileKind, file_kind

# ---- SVG --------------------------------------------------------------------------------


def test_svg_is_a_picture_and_canvas_a_note() -> None:
    assert file_kind("Diagrams/x.SVG") == FileKind.IMAGE
    assert file_kind("Boards/b.canvas") == FileKind.NOTE
    assert file_kind("Drawings/d.excalidraw.md") == FileKind.NOTE


def test_a_drawio_label_is_read_once_and_its_warning_never() -> None:
    said = svg_text(fk.DRAWIO.encode())
    assert said.labels == [fk.DRAWIO_LABEL]  # the <switch>'s HTML, not its fallback <text> too
    assert not said.icon


def test_mermaid_labels_in_html_and_tspans() -> None:
    assert svg_text(fk.MERMAID.encode()).labels == list(fk.MERMAID_WORDS)


def test_an_icon_has_no_words_and_is_an_icon() -> None:
    said = svg_text(fk.ICON.encode())
    assert said.labels == [] and said.icon


@pytest.mark.parametrize("svg", [fk.LAUGHS, fk.EXTERNAL])
def test_entities_are_refused_before_expansion(svg: str) -> None:
    with pytest.raises(SvgError, match="entities"):
        svg_text(svg.encode())


ILLUSTRATOR = ('<?xml version="1.0" encoding="utf-8"?>\n'
               '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
               '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [\n'
               '\t<!ENTITY ns_extend "http://ns.adobe.com/Extensibility/1.0/">\n'
               '\t<!ENTITY ns_ai "http://ns.adobe.com/AdobeIllustrator/10.0/">\n'
               '\t<!ENTITY ns_svg "http://www.w3.org/2000/svg">\n]>\n'
               '<svg version="1.1" xmlns:x="&ns_extend;" xmlns:i="&ns_ai;" xmlns="&ns_svg;" '
               'width="400" height="200"><text x="10" y="20">Quarterly churn by region</text>'
               '</svg>\n')


def test_an_illustrator_svg_with_its_namespace_entities_is_read() -> None:
    assert svg_text(ILLUSTRATOR.encode()).labels == ["Quarterly churn by region"]


@pytest.mark.parametrize("doctype", [
    '<!ENTITY % p "x">',  # a parameter entity
    f'<!ENTITY big "{"x" * 5000}">',  # one long value referenced many times
    "".join(f'<!ENTITY e{i} "x">' for i in range(100)),  # many
    '<!ENTITY u SYSTEM "http://example.com/x" NDATA gif>',  # unparsed, external
])
def test_entities_an_svg_never_needs_are_refused(doctype: str) -> None:
    svg = f'<?xml version="1.0"?><!DOCTYPE svg [{doctype}]><svg><text>hi</text></svg>'
    with pytest.raises(SvgError, match="entities"):
        svg_text(svg.encode())


@pytest.mark.parametrize("encoding", ["utf-7", "x-no-such-encoding"])
def test_an_svg_in_an_encoding_expat_cannot_read_says_so(encoding: str) -> None:
    with pytest.raises(SvgError, match="not a readable SVG"):
        svg_text(f'<?xml version="1.0" encoding="{encoding}"?><svg/>'.encode())


def test_broken_and_huge_svgs_say_why() -> None:
    with pytest.raises(SvgError, match="well-formed"):
        svg_text(fk.DRAWIO.encode()[:400])
    with pytest.raises(SvgError, match="larger than"):
        svg_text(b"<svg>" + b" " * MAX_SVG_BYTES + b"</svg>")
    with pytest.raises(SvgError, match="not an SVG"):
        svg_text(b"<html><text>hi</text></html>")
    deep = b"<svg>" + b"<g>" * 100_000 + b"<text>bottom</text>" + b"</g>" * 100_000 + b"</svg>"
    assert svg_text(deep).labels == ["bottom"]


# ---- Canvas -----------------------------------------------------------------------------


def _links(note: Note, files: dict[str, str]) -> dict[str, Any]:
    resolver = Resolver([note.path, *files])
    return {x.target: x.to_json() for x in link_note(note, resolver, files, 1500)}


def test_canvas_cards_are_passages_with_group_and_edge_labels() -> None:
    note = NoteParser().parse_bytes(fk.canvas().encode(), "Boards/Payments.canvas")
    assert not note.problems
    cards = {s.text: s for s in note.sections if s.kind == "card"}
    card = cards[fk.CARD]
    assert card.kind == "card"
    assert card.headings == ("Payments pipeline", "shown on the dashboard")
    assert "https://example.com/settlement" in cards
    assert cards["https://example.com/settlement"].headings == ()  # outside the group
    lines = fk.canvas().split("\n")  # each card on the line of the file that holds it
    assert '"id":"0b1c3d1e2f4a5b6c"' in lines[card.start - 1]
    placed = {p.target: p for p in note.placements}
    assert placed["Plans/Roadmap.md"].subpath == "Goals"
    assert '"id":"c91f2e07d65b4a38"' in lines[placed["Plans/Roadmap.md"].line - 1]
    one_line = NoteParser().parse_bytes(
        json.dumps(json.loads(fk.canvas())).encode(), "Boards/Payments.canvas")
    assert [s.start for s in one_line.sections if s.kind == "card"] == [2, 5, 6]  # places
    assert placed["Attachments/refund-dashboard.png"].kind == FileKind.IMAGE


def test_a_picture_on_a_canvas_has_the_cards_around_it_as_context() -> None:
    note = NoteParser().parse_bytes(fk.canvas().encode(), "Boards/Payments.canvas")
    links = _links(note, {"Attachments/refund-dashboard.png": "image",
                          "Plans/Roadmap.md": "note"})
    context = links["Attachments/refund-dashboard.png"]["context"]
    assert [c["text"] for c in context] == [fk.CARD]  # joined by the edge; the far card not
    assert links["Attachments/refund-dashboard.png"]["headings"] == ["Payments pipeline"]
    assert "Plans/Roadmap.md" not in links  # a note placed is no picture's context


def test_without_edges_or_groups_the_nearest_cards_are_its_context() -> None:
    nodes = [
        {"id": "far", "type": "text", "text": "Far away words", "x": 5000, "y": 5000,
         "width": 100, "height": 50},
        {"id": "img", "type": "file", "file": "shot.png", "x": 0, "y": 0, "width": 100,
         "height": 100},
        {"id": "near", "type": "text", "text": "Close neighbour words", "x": 150, "y": 0,
         "width": 100, "height": 50},
    ]
    note = NoteParser().parse_bytes(json.dumps({"nodes": nodes}).encode(), "b.canvas")
    context = _links(note, {"shot.png": "image"})["shot.png"]["context"]
    assert [c["text"] for c in context] == ["Close neighbour words", "Far away words"]


@pytest.mark.parametrize("data", [
    fk.canvas()[:300].encode(),  # truncated while Obsidian wrote it
    b"[]", b'{"nodes": 5}', b"\xff\xfe\x00", b"[" * 200_000,
    b'{"nodes": [1, {"id": 3}, {"id": "a", "type": "text", "text": 7}], "edges": "x"}',
])
def test_bad_canvas_json_is_a_reason_not_a_crash(data: bytes) -> None:
    note = NoteParser().parse_bytes(data, "Bad.canvas")
    assert note.problems and not note.sections


@pytest.mark.parametrize("edge", [{"fromNode": ["a"], "toNode": "a"},
                                  {"fromNode": {"x": 1}, "toNode": "a"}])
def test_odd_values_in_a_canvas_are_left_out(edge: dict[str, Any]) -> None:
    """An edge end that is not a string, a coordinate no float holds: the card is still
    read, the odd value ignored."""
    board = {"nodes": [{"id": "a", "type": "text", "text": "harbour crane schedule",
                        "x": int("9" * 400), "y": 0, "width": 1, "height": 1}],
             "edges": [edge]}
    note = NoteParser().parse_bytes(json.dumps(board).encode(), "Odd.canvas")
    assert [x.text for x in note.sections] == ["harbour crane schedule"]


def test_a_hostile_board_is_capped_and_quick() -> None:
    from vaultlens.vault.canvas import MAX_GROUPS, MAX_NODES

    nodes: list[dict[str, Any]] = [
        {"id": f"g{i}", "type": "group", "label": f"group {i}", "x": -1, "y": -1,
         "width": 1e9, "height": 1e9} for i in range(MAX_GROUPS + 5)]
    for i in range(MAX_NODES):
        kind = "text" if i % 2 else "file"
        nodes.append({"id": f"n{i}", "type": kind, "text": f"card {i}", "file": f"p{i}.png",
                      "x": i, "y": i, "width": 1, "height": 1})
    edges = [{"id": f"e{i}", "fromNode": f"n{i}", "toNode": "n1"} for i in range(MAX_NODES)]
    started = time.perf_counter()
    note = NoteParser().parse_bytes(json.dumps({"nodes": nodes, "edges": edges}).encode(),
                                    "Huge.canvas")
    assert time.perf_counter() - started < 10
    assert any("groups" in p for p in note.problems) and any("nodes" in p for p in note.problems)
    cards = [s for s in note.sections if s.kind == "card"]
    assert len(cards) + len(note.placements) + MAX_GROUPS <= MAX_NODES


# ---- Excalidraw -------------------------------------------------------------------------


def test_the_helper_writes_real_lz_string() -> None:
    assert compress_to_base64("hello") == "BYUwNmD2Q==="  # lz-string 1.4.4's own answer
    scene = '{"type":"excalidraw","elements":[{"text":"café 漢字"}]}'
    assert decompress_from_base64(compress_to_base64(scene)) == scene


@pytest.mark.parametrize("compressed", [True, False])
def test_a_drawing_is_its_text_elements_never_its_data(compressed: bool) -> None:
    text = fk.drawing(compressed)
    hidden = fk.HIDDEN if compressed else fk.HIDDEN_PLAIN
    block = re.search(r"```(?:compressed-)?json\n(.*?)\n```", text, re.S)
    assert block is not None
    data = block.group(1).replace("\n", "")
    assert hidden in (decompress_from_base64(data) if compressed else data)
    note = NoteParser().parse(text, "Drawings/Capacity.excalidraw.md")
    words = "\n".join(s.text for s in note.sections)
    assert "Quarterly capacity forecast" in words and "Kafka ingestion tier" in words
    assert hidden not in words and data[:40] not in words
    assert "EXCALIDRAW VIEW" not in words
    assert not [s for s in note.sections if s.kind == "code"]
    links = _links(note, {"whiteboard.png": "image"})
    context = " ".join(c["text"] for c in links["whiteboard.png"]["context"])
    assert "Quarterly capacity forecast" in context and "Kafka ingestion tier" in context


def test_a_renamed_drawing_is_still_one() -> None:
    note = NoteParser().parse(fk.drawing(compressed=False), "Architecture.md")
    words = "\n".join(s.text for s in note.sections)
    assert "Kafka ingestion tier" in words and fk.HIDDEN_PLAIN not in words


@pytest.mark.parametrize("line", ["# x" + " #" * 20_000 + "y", "abc: a" + " " * 40_000 + "b"])
def test_long_odd_lines_in_a_drawing_cost_one_pass(line: str) -> None:
    from vaultlens.vault.drawing import prepare_drawing

    lines = ["---", "excalidraw-plugin: parsed", "---", "## Embedded Files", line, line]
    start = time.perf_counter()
    prepare_drawing(lines)
    assert time.perf_counter() - start < 0.5  # quadratic, it took seconds


def test_a_note_named_like_a_drawing_section_is_left_alone() -> None:
    text = "# Plan\n\n## Drawing\n\n```python\nprint('kept')\n```\n"
    note = NoteParser().parse(text, "Plan.md")
    assert any("print('kept')" in s.text for s in note.sections)


# ---- through a real daemon --------------------------------------------------------------


class _Daemon(Served):
    """Served, on a model of the test's choosing (e5-small loads offline)."""

    def __init__(self, vault: Path, data: Path, model: str) -> None:
        self.vault, self.data, self.port = vault, data, free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vaultlens", "serve", "--vault", str(vault), "--data-dir",
             str(data), "--model", model, "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.token = DataDir(data).token()
        self.api = Client(self.port, self.token)
        self.base = f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Daemon]:
    root = tmp_path_factory.mktemp("kinds")
    fk.write_vault(root / "vault")
    served = _Daemon(root / "vault", root / "data", "e5-small")
    try:
        served.wait_idle()
        yield served
    finally:
        served.stop()


def _search(daemon: _Daemon, query: str, **extra: Any) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = daemon.api.call(
        "/api/search", {"query": query, "k": 5, **extra})["results"]
    return results


@pytest.mark.slow
@pytest.mark.parametrize(("query", "kind", "path"), [
    ("Billing reconciler", "image", "Diagrams/billing.drawio.svg"),
    ("Customer checkout", "image", "Diagrams/checkout.svg"),
    ("Payment gateway", "image", "Diagrams/checkout.svg"),
    ("reconciliation job settles card refunds", "note", "Boards/Payments.canvas"),
    ("tide tables harbour pilots", "note", "Boards/Payments.canvas"),
    ("Kafka ingestion tier", "note", None),
])
def test_each_kind_is_found_by_its_words(daemon: _Daemon, query: str, kind: str,
                                         path: str | None) -> None:
    hits = _search(daemon, query, kind=kind)
    assert hits, query
    if path is None:
        assert hits[0]["path"].endswith(".excalidraw.md")
    else:
        assert hits[0]["path"] == path
    assert hits[0]["matched"] == "words"


@pytest.mark.slow
def test_an_icon_is_counted_never_a_hit(daemon: _Daemon) -> None:
    """An interface glyph's name ("settings-gear") would crowd real answers: it is ignored,
    counted in the status, and never a hit nor a failure."""
    paths = [h["path"] for h in _search(daemon, "settings gear")]
    assert "icons/settings-gear.svg" not in paths
    status = daemon.api.call("/api/status")
    assert status["ignored"].get("svg") == 1
    assert "icons/settings-gear.svg" not in [f["path"] for f in status["failures"]]


@pytest.mark.slow
def test_a_svg_hit_reads_its_label_once(daemon: _Daemon) -> None:
    hit = _search(daemon, "Billing reconciler")[0]
    assert hit["kind"] == "image" and hit["text"].count("Billing reconciler") == 1


@pytest.mark.slow
def test_a_card_hit_says_its_group_and_edge(daemon: _Daemon) -> None:
    hit = _search(daemon, "Payments pipeline", kind="note")[0]
    assert hit["path"] == "Boards/Payments.canvas" and fk.CARD.startswith(hit["text"][:40])
    assert hit["headings"] == ["Payments pipeline", "shown on the dashboard"]


@pytest.mark.slow
@pytest.mark.parametrize("word", [fk.HIDDEN, fk.HIDDEN_PLAIN, fk.packed_word(), "lol"])
def test_drawing_data_and_refused_svgs_are_never_words(daemon: _Daemon, word: str) -> None:
    for hit in _search(daemon, word):
        assert hit["matched"] == "meaning", hit  # only vectors' nearest: no word matched
        assert word.lower() not in hit["text"].lower()


@pytest.mark.slow
def test_a_screenshot_on_a_canvas_is_found_by_a_paraphrase_of_its_card(daemon: _Daemon) -> None:
    query = "money given back to cardholders gets squared with the bank overnight"
    hits = _search(daemon, query, kind="image")
    assert hits[0]["path"] == "Attachments/refund-dashboard.png"
    assert [x["note"] for x in hits[0]["links"]] == ["Boards/Payments.canvas"]


@pytest.mark.slow
def test_pictures_in_a_drawing_belong_to_it(daemon: _Daemon) -> None:
    hits = _search(daemon, "quarterly capacity forecast", kind="image")
    assert hits[0]["path"] == "Drawings/whiteboard.png"
    assert {x["note"] for x in hits[0]["links"]} == {"Drawings/Capacity.excalidraw.md",
                                                     "Drawings/Legacy.excalidraw.md"}


@pytest.mark.slow
def test_hostile_and_broken_files_are_skip_reasons(daemon: _Daemon) -> None:
    status = daemon.api.call("/api/status")
    reasons = {f["path"]: f["reason"] for f in status["failures"]}
    assert set(reasons) == {"Diagrams/laughs.svg", "Diagrams/entity.svg", "Boards/Broken.canvas"}
    assert "entities" in reasons["Diagrams/laughs.svg"]
    assert "not a JSON Canvas file" in reasons["Boards/Broken.canvas"]
    # both diagrams are pictures (the icon is ignored); the drawings and the board notes
    assert status["counts"]["items_image"] == 4
    assert daemon.api.call("/api/health")["ok"]


@pytest.mark.slow
def test_a_svg_in_a_context_pack_is_a_picture(daemon: _Daemon) -> None:
    pack = daemon.api.call("/api/context", {"query": "Billing reconciler", "inline": True})["pack"]
    entry = next(e for e in pack["entries"] if e["path"] == "Diagrams/billing.drawio.svg")
    assert entry["type"] == "image" and entry["image"]["data"]  # rendered in the PDF child
    assert entry["text"] == fk.DRAWIO_LABEL


class _OCR:
    """An OCR pool that says what it was shown, and when."""

    signature = "fake-ocr"

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def read(self, image: Any, urgent: bool = False) -> str:
        self.seen.append(image.size)
        return "words drawn as outlines"


@pytest.mark.parametrize(("svg", "visual", "renders", "text"), [
    (fk.DRAWIO, False, False, fk.DRAWIO_LABEL),  # words: no pixels needed
    (fk.DRAWIO, True, True, fk.DRAWIO_LABEL),  # ... but the visual model sees them
    (fk.OUTLINED, False, True, "words drawn as outlines"),  # no words: OCR of its render
])
def test_an_svg_is_rendered_only_where_its_pixels_are_needed(
        tmp_path: Path, svg: str, visual: bool, renders: bool, text: str) -> None:
    from vaultlens.index.catalog import Catalog
    from vaultlens.index.extractor import Extractor
    from vaultlens.vault.vault import VaultFile

    (tmp_path / "vault").mkdir()
    (tmp_path / "vault" / "d.svg").write_text(svg)
    data = DataDir(tmp_path / "data")
    data.folder.mkdir(parents=True, exist_ok=True)
    ocr = _OCR()
    extractor = Extractor(tmp_path / "vault", data, Catalog.open(tmp_path / "c.db"), ocr,  # type: ignore[arg-type]
                          visual, 10, 30.0)
    out = extractor.read(VaultFile("d.svg", FileKind.IMAGE, len(svg), 0), None)
    assert out.outcome == "read" and out.ocr_text == text
    assert (out.image is not None) == renders
    assert bool(ocr.seen) == (text == "words drawn as outlines")


@pytest.mark.slow
def test_the_watcher_takes_a_new_canvas_and_svg(daemon: _Daemon) -> None:
    board = daemon.vault / "Boards" / "Live.canvas"
    diagram = daemon.vault / "Diagrams" / "live.svg"
    nodes = [{"id": "a", "type": "text", "text": "Marmalade inventory for the winter fair",
              "x": 0, "y": 0, "width": 200, "height": 80}]
    board.write_text(json.dumps({"nodes": nodes, "edges": []}))
    diagram.write_text(fk.MERMAID.replace("Customer checkout", "Porcupine quills"))
    try:
        daemon.api.wait_for(lambda: {h["path"] for h in _search(daemon, "marmalade winter fair")
                                     + _search(daemon, "porcupine quills")
                                     if h["matched"] == "words"}
                            == {"Boards/Live.canvas", "Diagrams/live.svg"}, "the live files")
    finally:
        board.unlink()
        diagram.unlink()
    daemon.api.wait_for(lambda: not [h for h in _search(daemon, "marmalade winter fair")
                                     if h["path"] == "Boards/Live.canvas"], "the board gone")
