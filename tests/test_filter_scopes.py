"""Filtered searches ranked from memory (index/lookups.py, the postings with an allowed list)
answer exactly as SQLite does: the same items admitted by every path and kind filter, and the
same hits, in the same order with the same scores, for random combinations of every filter."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from conftest import indexed_reader, write_vault
from indexing import screenshot
from vaultlens.config import Config
from vaultlens.index.note_scopes import noted_items_sql
from vaultlens.index.reader import Reader
from vaultlens.search import searcher as searcher_module
from vaultlens.search.filters import Admission, passes
from vaultlens.search.fusion import Evidence
from vaultlens.search.hits import Hit
from vaultlens.search.keywords import Matches
from vaultlens.search.query import Filters, parse
from vaultlens.search.searcher import Allowed, Searcher, VectorSource
from vaultlens.workspace import Workspace, open_workspace

WORDS = ("tram harbour budget chart ferry castle receipts plant coffee river design review "
         "export graph canvas storm").split()
FOLDERS = ["Area 1", "area 1", "Area 10", "Ar_a", "Ar%a", "Deep/Sub", "Deep/sub/Inner", "Notes",
           "Trips/Lisbon"]
TAGS = ["trip", "trip/lisbon", "work", "Work/Budget", "cold"]
# as filters ask for them: nested, another case, with a '#', a prefix that is no parent
ASKED_TAGS = [*TAGS, "Trip", "#work", "WORK/budget", "trip/LISBON", "tri", "work/budget/q1",
              "lisbon", "inline", "Inline/Deep"]
PROPERTY_TESTS = ["status:done", "-status:done", "Status=draft", "ctr>5", "ctr<=3", "-ctr>5",
                  "ctr=7", "status:dra", "ctr!=2"]
FILTERS = [
    *[f'path:"{f}"' for f in FOLDERS], *[f'-path:"{f}"' for f in FOLDERS],
    'path:"Deep/"', 'path:"/Deep"', 'path:"Area 1/Note 3.md"', 'path:"Attachments"',
    'path:"area"', 'path:""',
    "kind:note", "kind:image", "-kind:note", "-kind:image",
    *[f"tag:{t}" for t in TAGS], *[f"-tag:{t}" for t in TAGS],
    "before:2022-01-01", "after:2021-06-01", "status:done", "-status:done", "ctr>5",
    "tag:inline", "tag:Inline/deep", "-tag:inline", "tag:TRIP",
]

BROAD = ["kind:note", "-kind:image", "-kind:pdf", '-path:"Area 1"', "-tag:cold", '-path:"Notes"']


def _vault(seed: int = 29) -> dict[str, str | bytes]:
    rng = random.Random(seed)
    files: dict[str, str | bytes] = {}
    for n in range(200):  # 500 items: a filter may admit more than a pool
        folder = FOLDERS[n % len(FOLDERS)]
        tags = rng.sample(TAGS, rng.randint(0, 2))
        front = [f"tags: [{', '.join(tags)}]"] if tags else []
        if rng.random() < 0.5:
            front.append(f"date: 202{rng.randint(0, 3)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}")
        if n % 6:  # some notes without one property or the other
            front.append(f"status: {rng.choice(['done', 'draft'])}")
        if n % 4:
            front.append(f"ctr: {rng.randint(0, 12)}")
        paras = [" ".join(rng.choices(WORDS, k=rng.randint(4, 10))) + "."
                 for _ in range(rng.randint(1, 4))]
        if n % 5 == 1:  # tags in the text too, nested and in another case
            paras[-1] += " " + rng.choice(["#inline", "#Inline/Deep", "#TRIP", "#work/budget"])
        if n % 7 == 0:
            paras.insert(1, f"![[shot {n % 3}.png]]")
        if n % 11 == 0:  # a page of the PDF, or all of it
            paras.insert(1, "![[deck.pdf]]" if n % 3 == 0 else f"![[deck.pdf#page={n % 3}]]")
        files[f"{folder}/Note {n}.md"] = (
            "---\n" + "\n".join(front) + f"\n---\n# Note {n}\n\n" + "\n\n".join(paras) + "\n")
    for n in range(3):
        files[f"Attachments/shot {n}.png"] = screenshot(f"{WORDS[n]} {WORDS[n + 5]}")
    files["Attachments/deck.pdf"] = _deck(rng)
    return files


def _deck(rng: random.Random) -> bytes:
    doc = pymupdf.open()
    for _ in range(3):
        page = doc.new_page(width=600, height=300)
        page.insert_text((40, 120), " ".join(rng.choices(WORDS, k=5)), fontsize=20)
    data: bytes = doc.tobytes()
    return data


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Reader]]:
    root = write_vault(tmp_path_factory.mktemp("scopes") / "vault", _vault())
    ws = indexed_reader(root)
    # a second connection for the reference: SQLite answers each filter, and ranks the words
    old = open_workspace(Config(vault=root, data_dir=root.parent / "data", model="minilm",
                                ocr=False), writer=False)
    yield ws, old.catalog
    old.close()
    ws.close()


def _reference(ws: Workspace, catalog: Reader) -> Searcher:
    """The search as SQLite answered a path or kind filter: its admitted items from a join,
    and the words ranked by bm25() among them."""
    scopes = catalog.scopes

    def by_sql(paths: list[str], not_paths: list[str], kinds: list[str],
               not_kinds: list[str]) -> object:
        if not (paths or not_paths or kinds or not_kinds):
            return None
        return scopes.items_in_sql(paths, not_paths, kinds, not_kinds)

    def noted_by_sql(tags: list[str], not_tags: list[str], tests: list[object],
                     passes: object) -> object:
        return noted_items_sql(catalog._conn, tags, not_tags, tests, passes)  # type: ignore

    scopes.items_in = by_sql  # type: ignore[assignment,method-assign]
    scopes.noted = noted_by_sql  # type: ignore[assignment,method-assign]
    return SqlSearcher(catalog, ws.vectors, ws.embedder, postings=None)


class SqlSearcher(Searcher):
    """The evidence of a filtered search as it was gathered with SQLite's admitted items:
    the nearest ``pool`` of them by their vectors, then every candidate's cosine."""

    def evidence(self, text: str, pool: int, vector: VectorSource,
                 allowed: Allowed = None) -> Evidence:
        within = None if allowed is None else allowed.tolist()
        ev = Evidence()
        terms = self.weighted_terms(text) if text.strip() else {}
        matches = (self.keywords.matches(terms, pool, allowed) if terms else Matches())
        ev.bm25, ev.idf = matches.bm25, sum(terms.values())
        if callable(vector):
            vector = vector()
        candidates = set(ev.bm25)
        if vector is not None and within is None:
            ids, sims = self.vectors.search(vector, pool)
            candidates.update(ids.tolist())
            if len(sims) >= pool:
                ev.reference = float(np.min(sims))
        elif vector is not None and within:
            sims = self.vectors.similarities(vector, within)
            nearest = np.argsort(-sims)[:pool]
            candidates |= {within[int(n)] for n in nearest}
            if len(nearest) >= pool:
                ev.reference = float(sims[nearest[-1]])
        ev.around = self.catalog.images_around(candidates)
        candidates |= {i for found in ev.around.values() for i in found}
        if ev.bm25 and self.fusion.weights.coverage:
            ranked = sorted(ev.bm25, key=lambda i: -ev.bm25[i])[:searcher_module.COVERAGE_DEPTH]
            ev.coverage = self.keywords.coverage(ranked, terms, matches.counts)
        if vector is not None and candidates:
            ordered = sorted(candidates)
            cosines = self.vectors.similarities(vector, ordered)
            ev.cosine = dict(zip(ordered, cosines.tolist(), strict=True))
        return ev


def _seen(hits: list[Hit]) -> list[tuple[int, str, str]]:
    return [(h.id, h.kind, h.path) for h in hits]


def test_every_path_and_kind_filter_admits_what_sqlite_admits(
        workspaces: tuple[Workspace, Reader]) -> None:
    ws, _ = workspaces
    scopes = ws.catalog.scopes
    rng = random.Random(1)
    folders = [*FOLDERS, "Deep/", "/Deep", "Area 1/Note 9.md", "area", "", "AREA 1", "Ar_",
               "Attachments", "attachments/shot 1.png", "Trips"]
    for _ in range(300):
        key = (rng.sample(folders, rng.choice([0, 0, 1, 2])),
               rng.sample(folders, rng.choice([0, 0, 1])),
               rng.sample(["section", "image", "page"], rng.choice([0, 0, 1, 2])),
               rng.sample(["section", "image"], rng.choice([0, 0, 1])))
        memory = scopes.items_in(*key)
        if not any(key):
            assert memory is None
            continue
        assert memory is not None
        assert memory.tolist() == scopes.items_in_sql(*key).tolist(), key
    assert scopes.shared.table is not None  # answered from memory, not by SQLite each time


def _places_by_sql(catalog: Reader, ids: list[int]) -> object:
    kept = catalog.scopes.places
    catalog.scopes.places = lambda _: None  # type: ignore[method-assign]
    try:
        return catalog.section_places(ids)
    finally:
        catalog.scopes.places = kept  # type: ignore[method-assign]


def test_section_places_from_the_table_are_sqlites(workspaces: tuple[Workspace, Reader]
                                                   ) -> None:
    ws, _ = workspaces
    catalog = ws.catalog
    catalog.scopes.items_in(["Notes"], [], [], [])  # the table is read
    every = [int(r[0]) for r in catalog._conn.execute("SELECT id FROM items")]
    ids = [*every, max(every) + 5, -1]  # and ids of no item
    memory = catalog.scopes.places(ids)
    assert memory is not None and len(memory) > 300
    assert memory == _places_by_sql(catalog, ids) == catalog.section_places(ids)
    assert {kind for (kind,) in catalog._conn.execute(
        f"SELECT DISTINCT kind FROM items WHERE id NOT IN ({','.join(map(str, memory))})")} \
        == {"image", "page"}  # images and PDF pages have none


@pytest.mark.slow
@pytest.mark.parametrize(("exact_within", "scan_share"), [(5000, 4), (100, 4), (100, 1)])
def test_filtered_searches_answer_as_sqlite_did(workspaces: tuple[Workspace, Reader],
                                                exact_within: int, scan_share: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``exact_within``: filters admitting more items than this rank the best of them by
    their vectors, not all of them; ``scan_share`` 1: those that admit most items find them
    by a scan of every vector (the reference fetches every allowed item's vector)."""
    monkeypatch.setattr(searcher_module, "EXACT_WITHIN", exact_within)
    monkeypatch.setattr(searcher_module, "SCAN_SHARE", scan_share)
    ws, old_catalog = workspaces
    new, old = ws.searcher(), _reference(ws, old_catalog)
    scans = 0
    search = ws.vectors.search

    def counted(query: object, k: int, exact: bool = False) -> object:
        nonlocal scans
        scans += exact
        return search(query, k, exact)  # type: ignore[arg-type]

    monkeypatch.setattr(ws.vectors, "search", counted)
    rng = random.Random(2)
    new.search("tram path:Notes")  # the postings and the table are read at the second search
    compared = 0
    for _ in range(120):
        words = " ".join(rng.sample(WORDS, rng.choice([0, 1, 1, 2, 3])))
        filters = " ".join(rng.sample(FILTERS, rng.randint(1, 3)))
        if scan_share == 1 and rng.random() < 0.5:  # one filter admitting most items
            filters = rng.choice(BROAD)
        query = f"{words} {filters}".strip()
        k, offset = rng.randint(1, 10), rng.choice([0, 0, 3])
        got = new.search(query, k, offset)
        want = old.search(query, k, offset)
        assert _seen(got) == _seen(want), query
        assert np.allclose([h.score for h in got], [h.score for h in want], rtol=1e-9), query
        compared += bool(want)
    assert compared > 50  # most combinations admit something: the comparison compares hits
    assert (scans > 10) == (scan_share == 1)  # ... and the scan found the nearest, or not
    assert ws.postings._state is not None  # the new side ranked from the postings
    assert ws.catalog.scopes.shared.table is not None  # ... and its filters from memory


def _filters(text: str) -> Filters:
    return parse(text, lambda name: name.lower() in {"status", "ctr"}).filters


def test_every_tag_and_property_filter_admits_what_checking_each_hit_admits(
        workspaces: tuple[Workspace, Reader]) -> None:
    """The items a tag or property filter admits from memory are SQLite's, and exactly the
    items that pass when each is checked as a hit after ranking (search/filters.py)."""
    ws, _ = workspaces
    catalog = ws.catalog
    maker = ws.searcher().hits
    every = catalog._conn.execute("SELECT id FROM items ORDER BY id").fetchall()
    hits = [h for h in (maker.hit(int(r[0]), 0.0, "") for r in every) if h is not None]
    assert {h.kind for h in hits} == {"note", "image", "pdf"}
    rng = random.Random(3)
    admitted_any = 0
    for _ in range(150):
        asked = " ".join([*(f"tag:{t}" for t in rng.sample(ASKED_TAGS, rng.choice([0, 1, 1, 2]))),
                          *(f"-tag:{t}" for t in rng.sample(ASKED_TAGS, rng.choice([0, 0, 1]))),
                          *rng.sample(PROPERTY_TESTS, rng.choice([0, 0, 1, 2]))])
        f = _filters(asked)
        if not (f.tags or f.not_tags or f.properties):
            continue
        memory = catalog.scopes.noted(f.tags, f.not_tags, f.properties, passes)
        assert memory is not None
        checked = Admission(catalog, f, ())
        each = sorted(h.id for h in hits if checked.admits(h))
        assert memory.tolist() == each, asked
        assert noted_items_sql(catalog._conn, f.tags, f.not_tags, f.properties,
                               passes).tolist() == each, asked
        admitted_any += bool(each) and len(each) < len(hits)
    assert admitted_any > 50  # most filters admit some items and not others


def test_without_the_table_each_hit_is_checked(workspaces: tuple[Workspace, Reader]) -> None:
    """While the items change between searches there is no table: the hits are checked one
    by one after ranking, and pass the same filters."""
    ws, _ = workspaces
    searcher = ws.searcher()
    query = "tram tag:trip -tag:work kind:note status:done"
    want = searcher.search(query, 10)
    searcher.catalog.scopes.noted = lambda *_: None  # type: ignore[method-assign]
    try:
        got = searcher.search(query, 10)
    finally:
        del searcher.catalog.scopes.noted
    assert got and {h.id for h in got} <= {h.id for h in searcher.search(query, 100)}
    f = _filters(query)
    assert all(Admission(ws.catalog, f, ()).admits(h) for h in got + want)


def test_a_change_to_the_catalog_is_seen_by_the_next_filter(tmp_path: Path) -> None:
    root = write_vault(tmp_path / "vault", {"A/one.md": "# One\n\ntram ferry\n",
                                            "B/two.md": "# Two\n\ntram river\n"})
    ws = indexed_reader(root)
    try:
        scopes = ws.catalog.scopes
        first = scopes.items_in(["A"], [], [], [])
        assert scopes.items_in(["A"], [], [], []) is not None and scopes.shared.table is not None
        (root / "A/three.md").write_text("# Three\n\ntram castle\n")
        writer = open_workspace(ws.config, writer=True)
        writer.update()
        writer.close()
        for _ in range(2):  # SQLite answers the first, the table read again the second
            now = scopes.items_in(["A"], [], [], [])
            assert first is not None and now is not None and len(now) > len(first)
            assert now.tolist() == scopes.items_in_sql(["A"], [], [], []).tolist()
        paths = {h.path for h in ws.searcher().search("tram path:A", 10)}
        assert paths == {"A/one.md", "A/three.md"}
        every = [int(r[0]) for r in ws.catalog._conn.execute("SELECT id FROM items")]
        assert ws.catalog.section_places(every) == _places_by_sql(ws.catalog, every)
        assert len(ws.catalog.section_places(every)) == 3
    finally:
        ws.close()
