"""What lets searches run side by side cheaply: queries that arrive together are embedded in one
batch, a connection remembers term counts until the index changes, and the daemon holds
numpy's BLAS to one thread while it runs (and gives the setting back)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from indexing import VAULT, MakeVault
from vaultlens.config import Config
from vaultlens.embedders.base import Embedder, Input, ModelError, Role, Vectors, normalise
from vaultlens.embedders.coalesce import Coalesced
from vaultlens.embedders.minilm_numpy import NumpyMiniLM
from vaultlens.index.catalog import Catalog
from vaultlens.workspace import open_workspace


class Slow(Embedder):
    """A deterministic text model that takes 50 ms a call, and records each call's size."""

    name = signature = "slow"
    dimension = 8

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[int] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        with self.lock:
            self.calls.append(len(inputs))
        time.sleep(0.05)
        texts = [i.text or "" for i in inputs]
        if self.fail_on in texts:
            raise ModelError(f"cannot embed {self.fail_on!r}")
        rows = [[len(t), sum(map(ord, t)) % 97, 1, 0, 0, 0, 0, (hash(t) % 5) + 1] for t in texts]
        return normalise(np.asarray(rows, dtype=np.float32))


def ask_at_once(model: Embedder, texts: list[str]) -> list[Vectors | BaseException]:
    start = threading.Barrier(len(texts))

    def one(text: str) -> Vectors | BaseException:
        start.wait()
        try:
            row: Vectors = model.embed_texts([text], "query")[0]
            return row
        except ModelError as exc:
            return exc

    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(one, texts))


def test_queries_that_arrive_together_share_a_forward_pass() -> None:
    slow = Slow()
    model = Coalesced(slow)
    texts = [f"query number {i}" for i in range(16)]
    got = ask_at_once(model, texts)
    alone = Slow().embed_texts(texts, "query")
    for row, expected in zip(got, alone, strict=True):
        assert isinstance(row, np.ndarray)
        np.testing.assert_allclose(row, expected)
    # the first caller runs alone; the others wait and go together in one or two rounds
    assert sum(slow.calls) == 16 and len(slow.calls) <= 4, slow.calls
    assert model.rounds == len(slow.calls)
    # documents (a paste's chunks) go straight to the model, in one call
    model.embed_texts(["a", "b", "c"], "document")
    assert slow.calls[-1] == 3


def test_a_failed_batch_fails_its_callers_and_the_next_round_works() -> None:
    model = Coalesced(Slow(fail_on="bad"))
    got = ask_at_once(model, ["fine one", "bad", "fine two", "fine three"])
    errors = [g for g in got if isinstance(g, BaseException)]
    assert any("cannot embed 'bad'" in str(e) for e in errors)  # its caller hears why
    assert isinstance(got[1], ModelError)
    # nobody is left waiting, and the lead is free again
    assert model.embed_texts(["fine again"], "query").shape == (1, 8)


@pytest.mark.slow
def test_the_numpy_model_batched_equals_one_at_a_time() -> None:
    model = NumpyMiniLM()
    texts = ["sync", "how do I sync my vault between phone and laptop", "x " * 300, ""]
    together = model.embed_texts(texts, "query")
    alone = np.concatenate([model.embed_texts([t], "query") for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)  # padding changes nothing


def test_term_counts_are_remembered_until_the_index_changes(make_vault: MakeVault,
                                                             tmp_path: Path) -> None:
    cfg = Config(vault=make_vault(VAULT), data_dir=tmp_path / "data", model="minilm", ocr=False)
    ws = open_workspace(cfg, True)
    try:
        ws.update()
        reader = Catalog.open(ws.data.catalog)
        before = dict(reader.keyword_index.term_frequencies(["storm", "pier", "zebra"]))
        total = reader.keyword_index.item_count()
        assert before["storm"] > 0 and before["zebra"] == 0
        # another connection adds a note with "zebra": the reader sees it on its next search
        (cfg.vault / "Zoo.md").write_text("# Zoo\n\nA zebra, and a storm over the zoo.\n")
        ws.update()
        after = dict(reader.keyword_index.term_frequencies(["storm", "pier", "zebra"]))
        assert after["zebra"] == 1 and after["storm"] == before["storm"] + 1
        assert reader.keyword_index.item_count() > total
        # and this connection's own commits count too
        assert dict(ws.catalog.keyword_index.term_frequencies(["zebra"]))["zebra"] == 1
        with ws.catalog.transaction() as conn:
            conn.execute("DELETE FROM items_fts WHERE rowid IN (SELECT id FROM items"
                         " WHERE text LIKE '%zebra%')")
        assert dict(ws.catalog.keyword_index.term_frequencies(["zebra"]))["zebra"] == 0
        reader.close()
    finally:
        ws.close()


def test_a_reader_maps_the_vector_index_the_writer_loads(make_vault: MakeVault,
                                                         tmp_path: Path) -> None:
    cfg = Config(vault=make_vault(VAULT), data_dir=tmp_path / "data", model="minilm", ocr=False)
    queries = ["storm over the pier", "harbour office board", "selective sync"]
    ws = open_workspace(cfg, True)
    try:
        ws.update()
        assert not ws.vectors.viewed  # the writer adds to it
        expected = [[(h.path, h.score) for h in ws.searcher().search(q, 5)] for q in queries]
    finally:
        ws.close()
    reader = open_workspace(cfg, False)
    try:
        assert reader.vectors.viewed and len(reader.vectors) > 0
        got = [[(h.path, h.score) for h in reader.searcher().search(q, 5)] for q in queries]
        assert got == expected and all(expected)
    finally:
        reader.close()


DAEMON_BLAS = """
import sys
from pathlib import Path
from threadpoolctl import threadpool_info
from vaultlens.config import Config
from vaultlens.serve.daemon import Daemon
from vaultlens.serve.tuning import Tuning
from vaultlens.workspace import open_workspace

def blas():
    return [x["num_threads"] for x in threadpool_info() if x["user_api"] == "blas"]

before = blas()
cfg = Config(vault=Path(sys.argv[1]), data_dir=Path(sys.argv[2]), model="minilm", ocr=False)
tuning = Tuning.for_machine()  # what `vaultlens serve` decides, and its app holds
held = tuning.hold()
daemon = Daemon.open(open_workspace(cfg, True), 3600, tuning.search_threads)
during = blas()
daemon.close()
daemon.workspace.close()
held.release()
print(before, during, blas())
"""


def test_the_daemon_holds_numpys_blas_to_one_thread_and_gives_it_back(
        make_vault: MakeVault, tmp_path: Path) -> None:
    """In a process of its own: the setting is process-wide, which is the point."""
    vault = make_vault(VAULT)
    out = subprocess.run([sys.executable, "-c", DAEMON_BLAS, str(vault), str(tmp_path / "d")],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "2"}).stdout
    assert out.split("\n")[-2] == "[2] [1] [2]", out


MEMORY_PROBE = """
import ctypes, sqlite3, sys, _sqlite3
from vaultlens.index.sqlite_library import stop_memory_statistics
done = stop_memory_statistics() if sys.argv[1] == "off" else None
lib = ctypes.CDLL(_sqlite3.__file__)
lib.sqlite3_memory_used.restype = ctypes.c_int64
conn = sqlite3.connect(":memory:")
conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
conn.executemany("INSERT INTO t(x) VALUES (?)", [(f"word{i} other{i % 7}",) for i in range(2000)])
found = conn.execute("SELECT count(*) FROM t WHERE t MATCH 'other3'").fetchone()[0]
print(done, lib.sqlite3_memory_used(), found)
"""


def test_the_entry_point_turns_sqlites_memory_statistics_off() -> None:
    """Their global lock made search threads take turns (sqlite_library.py). Off, SQLite no
    longer counts what it allocates, and still works; on, it counts. Run in fresh processes:
    the setting is only taken while no connection is open."""
    if sys.platform != "linux":
        pytest.skip("made on Linux only")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "server")}

    def probe(mode: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, mode], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        return out

    done, used, found = probe("off")
    assert (done, used, found) == ("True", "0", "286")
    done, used, found = probe("on")
    assert done == "None" and int(used) > 0 and found == "286"


def test_the_vaultlens_command_starts_through_the_entry_point() -> None:
    import tomllib

    from vaultlens import cli
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml")
                              .read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["vaultlens"] == "vaultlens.cli:run"
    main = (Path(cli.__file__).parent / "__main__.py").read_text(encoding="utf-8")
    assert "sys.exit(run())" in main


def test_announced_queries_join_the_next_round_and_are_ready_when_asked() -> None:
    slow = Slow()
    model = Coalesced(slow)
    model.ahead("second")
    model.ahead("third")
    model.ahead("second")  # announced twice: embedded once
    first = model.embed_texts(["first"], "query")
    assert slow.calls == [3]  # the leader's query and both announced ones, in one pass
    for text in ("second", "third"):
        np.testing.assert_allclose(model.embed_texts([text], "query"),
                                   Slow().embed_texts([text], "query"))
    assert slow.calls == [3] and model.rounds == 1  # nothing embedded again
    np.testing.assert_allclose(first, Slow().embed_texts(["first"], "query"))


def test_an_announced_query_never_asked_for_does_not_hold_the_lead() -> None:
    """The lead passes only to a caller that waits: an announced query whose search never
    comes (the request was given up) must not leave the next caller waiting for ever."""
    slow = Slow()
    model = Coalesced(slow)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(model.embed_texts, ["busy"], "query")
        deadline = time.monotonic() + 5
        while not slow.calls and time.monotonic() < deadline:
            time.sleep(0.001)  # until its round is under way
        model.ahead("given up")
        running.result(timeout=5)
    late = ThreadPoolExecutor(1).submit(model.embed_texts, ["late"], "query")
    np.testing.assert_allclose(late.result(timeout=5), Slow().embed_texts(["late"], "query"))
    assert slow.calls == [1, 2]  # the given-up query went with the late one
    for n in range(200):  # and announced queries never asked for are forgotten
        model.ahead(f"never {n}")
    assert len(model._ahead) <= 64 and len(model._waiting) <= 64


def test_an_announced_query_whose_batch_failed_is_tried_again_when_asked() -> None:
    slow = Slow(fail_on="boom")
    model = Coalesced(slow)
    model.ahead("fine")
    with pytest.raises(ModelError):
        model.embed_texts(["boom"], "query")
    assert slow.calls == [2]
    np.testing.assert_allclose(model.embed_texts(["fine"], "query"),
                               Slow().embed_texts(["fine"], "query"))
    assert slow.calls == [2, 1]


def test_announced_queries_ride_along_only_up_to_the_models_batch() -> None:
    """The leader's search waits for the whole pass: a crowd of announced queries does not
    make it wait for more than one batch of the model's."""
    slow = Slow()
    slow.batch_size = 3
    model = Coalesced(slow)
    for n in range(6):
        model.ahead(f"waiting {n}")
    model.embed_texts(["first"], "query")
    assert slow.calls == [3]
    model.embed_texts(["waiting 5"], "query")  # still announced: it leads with the rest
    assert slow.calls == [3, 3]
