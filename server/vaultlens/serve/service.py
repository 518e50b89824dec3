"""What the daemon runs: one indexing thread (the only writer), and searches on the side.

The indexing thread waits for a reason to run (the start, a watcher event, a reindex request,
the periodic reconcile) and then runs the indexer, which takes urgent paths first. Searches run
side by side in a pool of threads, each with its own read-only SQLite connection
(``readers.py``), and nothing heavy runs on the event loop. With a text model, searches have
their own query model and never wait for the indexer. A visual model is too big to load twice:
searches and the indexer share it, and its lock makes a search wait for at most the batch in
hand.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from vaultlens.embedders.base import Embedder, ModelError
from vaultlens.embedders.registry import query_model_for
from vaultlens.errors import VaultlensError
from vaultlens.index.catalog import Catalog
from vaultlens.index.indexer import Indexer
from vaultlens.index.repair import classify, deleted, rescue, set_aside
from vaultlens.index.report import Progress, Summary
from vaultlens.search.pack import Packer
from vaultlens.search.pictures import Pictures
from vaultlens.search.searcher import Searcher
from vaultlens.search.tokens import TokenCounter
from vaultlens.serve.readers import Make, Readers
from vaultlens.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)
# searches at once: SQLite, usearch and numpy release the GIL, so threads overlap even on two
# cores; more than eight would only queue inside the process instead of in the pool
SEARCH_THREADS = min(8, max(4, os.cpu_count() or 1))


class ReadOnly(VaultlensError, RuntimeError):
    """This daemon serves an index that another process writes."""


class IndexService:
    def __init__(self, indexer: Indexer | None, reconcile_every: float,
                 reopen: Callable[[bool], Indexer] | None = None,
                 retry_every: float = 30.0) -> None:
        self.indexer = indexer  # None: another process writes this index; we only read it
        self.reconcile_every = reconcile_every
        # reopen(damaged): the index opened again after its data dir was deleted (False) or
        # its catalog damaged (True); returns the new indexer
        self.reopen = reopen
        self.retry_every = retry_every  # while the data dir is full or read-only
        self.problem: str | None = None  # what is wrong with the data dir now
        self.repairs: list[dict[str, Any]] = []  # what was wrong, and what was done
        self.last: Summary | None = None
        self.last_error: str | None = None
        self.run_started = 0.0  # monotonic time the current run began
        self.running = False
        self.runs = 0
        self._wake = threading.Event()
        self._quit = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vaultlens-indexer", daemon=True)

    def prepare(self) -> None:
        """Start the urgent OCR worker: its models take a second or more to load, in a
        process of its own. Started on the first paste instead, that paste waited for it."""
        if self.indexer is not None and self.indexer.ocr is not None:
            self.indexer.ocr.start_urgent()

    def start(self) -> None:
        if self.indexer is None:
            self._idle.set()
            return
        self._wake.set()  # the reconcile at start: what changed while the daemon was down
        self.prepare()  # (already started, unless the daemon skipped it)
        if not self._quit.is_set():
            self._thread.start()

    def request(self, paths: list[str]) -> None:
        """Index these vault paths before anything else, as soon as possible."""
        if self.indexer is None:
            raise ReadOnly("another process writes this index; it indexes the vault")
        for p in paths:
            self.indexer.urgent.put(p)
        self._idle.clear()
        self._wake.set()

    def reconcile(self) -> None:
        self._idle.clear()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        assert self.indexer is not None  # start() runs no thread without one
        while not self._quit.is_set():
            # woken, or time for the periodic reconcile (sooner while the disk is in trouble)
            self._wake.wait(self.retry_every if self.problem else self.reconcile_every)
            if self._quit.is_set():
                break
            self._wake.clear()
            self.running = True
            self.run_started = time.monotonic()
            try:
                if self.reopen is not None and deleted(self.indexer.catalog):
                    self._repair(False, "the data dir or its catalog was deleted: recreated "
                                        "from what the daemon still had open")
                self.last = self.indexer.run()
                self.last_error = self.problem = None
            except Exception as exc:  # keep serving; say why in /api/status
                self._failed(exc)
            finally:
                self.running = False
                self.runs += 1
            if not self._wake.is_set() and self.indexer.urgent.empty():
                self._idle.set()

    def _failed(self, exc: Exception) -> None:
        kind = classify(exc)
        if kind is None:
            log.exception("indexing failed")
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        log.warning("indexing stopped: the data dir is %s (%s)", kind, exc)
        self.problem = (f"the data dir is {kind} ({exc}); searches answer from the index as it "
                        f"was, and indexing tries again every {self.retry_every:.0f} s")
        if kind == "damaged" and self.reopen is not None:
            self._repair(True, f"the catalog was damaged ({exc}): set aside, and the vault is "
                               "indexed again")
            self._wake.set()  # rebuild now, not after the wait

    def _repair(self, damaged: bool, what: str) -> None:
        assert self.reopen is not None and self.indexer is not None
        log.warning("%s", what)
        old = self.indexer
        self.indexer = self.reopen(damaged)
        while not old.urgent.empty():  # what was asked for is still wanted
            self.indexer.urgent.put(old.urgent.get())
        old.close()
        self.repairs.append({"at": round(time.time(), 1), "what": what})

    def alive(self) -> bool:
        """Whether the indexing thread still runs (after a ``stop`` that timed out)."""
        return self._thread.is_alive()

    def stop(self, timeout: float) -> bool:
        """Finish the file in hand, save the vectors. False if the thread did not end in time
        (then the next start rebuilds the vectors from the catalog's cache)."""
        self._quit.set()
        if self.indexer is None:
            return True
        self.indexer.stop.set()
        self._wake.set()
        if self._thread.ident is not None:  # it may never have started
            self._thread.join(timeout)
        ended = not self._thread.is_alive()
        if ended:  # else its connections stay open under it: the process is ending anyway
            self.indexer.save_vectors()
            self.indexer.close()
        return ended


@dataclass
class Daemon:
    """Typed application state: everything the views need."""

    workspace: Workspace
    service: IndexService
    readers: Readers
    query_model: Embedder
    token: str
    # /api/status reads the catalog with a connection and a thread of its own: it answers
    # while every search thread waits (on a stuck query worker, a slow search)
    status_readers: Readers
    started: float = field(default_factory=time.time)
    # set once the query model is loaded: until then searches are keyword-only ("partial")
    ready: threading.Event = field(default_factory=threading.Event)
    # searches run side by side, each thread with its own read connection (readers.py)
    search_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(SEARCH_THREADS,
                                                    thread_name_prefix="vaultlens-search"))
    status_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="vaultlens-status"))
    port: int | None = None  # where `vaultlens serve` listens, once it said so in daemon.json
    blas: Any = None  # numpy's BLAS thread limit, given back at close (see open)

    @classmethod
    def open(cls, workspace: Workspace, reconcile_every: float) -> Daemon:
        from threadpoolctl import threadpool_limits

        # In the daemon, numpy's BLAS does small products for searches (the query model,
        # candidate cosines). With a thread per core, a search's product waits spinning for a
        # helper thread that another search holds off the core: at eight searches at once that
        # doubled the CPU each one costs. One thread each is faster for all of them. The
        # indexer's torch models have threads of their own, and the one numpy model that
        # indexes (USE) raises the limit for its own calls (embedders/use.py).
        blas = threadpool_limits(1, user_api="blas")
        # with a text model, searches have a query model of their own (numpy MiniLM: no
        # torch to import, safe in many threads) and never queue behind the indexer's batches
        query_model = query_model_for(workspace.embedder)
        # pastes are embedded by the query model too: it is loaded at start, where the
        # indexer's torch model loads on its first batch (seconds, on a busy machine)
        service = IndexService(workspace.indexer(urgent_embedder=query_model)
                               if workspace.writer else None, reconcile_every)
        make = cls._readers(workspace, query_model)
        readers = Readers(make, SEARCH_THREADS)
        daemon = cls(workspace, service, readers, query_model, workspace.data.token(),
                     status_readers=Readers(make, 1), blas=blas)
        service.reopen = daemon.reopen
        return daemon

    @staticmethod
    def _readers(ws: Workspace, query_model: Embedder) -> Make:
        def make() -> tuple[Searcher, Pictures]:
            reader = Catalog.open(ws.data.catalog)
            return (ws.searcher(reader, query_model),
                    Pictures(reader, ws.config.vault, ws.config.pdf_timeout))
        return make

    @property
    def searcher(self) -> Searcher:
        """The calling search thread's searcher (its own read connection)."""
        return self.readers.get()[0]

    @property
    def pictures(self) -> Pictures:
        return self.readers.get()[1]

    def reopen(self, damaged: bool) -> Indexer:
        """Open the index again after its data dir went wrong (from the indexing thread):
        a deleted catalog is copied out of the still-open connection, a damaged one is set
        aside. Each search thread moves to the new file before its next search."""
        old = self.workspace
        if not damaged:
            rescue(old.catalog)
        old.close()
        if damaged:
            set_aside(old.data.catalog)
        ws = open_workspace(old.config, True, embedder=old.embedder)
        ws.data.restore_token(self.token)
        if self.port is not None:  # daemon.json went with the data dir: say where we are again
            ws.data.write_daemon_info(self.port, str(ws.config.vault.resolve()))
        make = self._readers(ws, self.query_model)
        self.readers.reopen(make)
        self.status_readers.reopen(make)
        self.workspace = ws
        return ws.indexer(urgent_embedder=self.query_model)

    def packer(self) -> Packer:
        """A context packer counting with the query model's tokenizer once it is loaded (the
        stated estimate until then); used from the search thread."""
        counter = TokenCounter()
        model = self.query_model
        if self.ready.is_set():
            try:
                if model.count_tokens("") is not None:
                    counter = TokenCounter(lambda t: model.count_tokens(t) or 0, model.name)
            except ModelError:
                log.warning("the model's tokenizer failed; context packs use the estimate")
        return Packer(self.searcher.catalog, self.pictures, counter,
                      self.workspace.config.vault.name)

    def start(self) -> None:
        """Load the query model in the background, then start indexing. Searches are answered
        from the first second, by keywords alone until the model is in. The indexing thread
        waits for the model: transformers' lazy imports are not thread-safe on first use (two
        threads importing at once raise ImportError)."""
        # the urgent OCR worker starts once the query model is in (service.start): its
        # models take a second of CPU to load, and loaded beside the query model's worker
        # they put the first answer with vectors past two seconds at 100k items
        threading.Thread(target=self._warm, name="vaultlens-warm-up", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.query_model.embed_texts(["warm up"], "query")
            self.ready.set()
        except Exception:
            log.exception("the query model failed to load; searches stay keyword-only")
        self.service.start()

    def status(self) -> dict[str, Any]:
        """What /api/status answers; called in ``status_pool``'s thread, never a search
        thread."""
        ws, service = self.workspace, self.service
        progress = service.indexer.state if service.indexer else Progress(0, 0, "")
        urgent = service.indexer.urgent.qsize() if service.indexer else 0
        catalog = self.status_readers.get()[0].catalog
        counts = catalog.counts()
        failures = [
            {"path": r["path"], "status": r["status"], "reason": r["reason"]}
            for r in catalog.conn.execute(
                "SELECT path, status, reason FROM files WHERE status != 'indexed'"
                " ORDER BY path")
        ]
        return {
            "ok": True,
            "vault": str(ws.config.vault),
            "model": ws.embedder.signature,
            "model_url": ws.embedder.location,  # a remote model's server (no credentials)
            "visual_search": ws.embedder.supports_images,
            "vector_search_ready": self.ready.is_set(),
            "notice": ws.notice,
            "counts": counts,
            "vectors": len(ws.vectors),
            "state": self.state(),
            "indexing": service.running,
            "queue": urgent + max(progress.total - progress.done, 0),
            "writer": service.indexer is not None,
            "progress": {"done": progress.done, "total": progress.total,
                         "current": progress.path or None, **self._pace(progress)},
            "runs": service.runs,
            "last_run": service.last.to_json() if service.last else None,
            "last_error": service.last_error,
            "problem": service.problem,
            "repairs": service.repairs[-5:],
            "failures": failures,
            "uptime_s": round(time.time() - self.started, 1),
        }

    def state(self) -> str:
        """What the daemon is doing: loading (the query model; searches are keyword-only),
        indexing, starting (loaded, the first run not begun: not yet up to date) or idle."""
        service = self.service
        if not self.ready.is_set():
            return "loading"
        if service.running:
            return "indexing"
        if service.indexer is not None and service.runs == 0:
            return "starting"
        return "idle"

    def _pace(self, progress: Progress) -> dict[str, float | None]:
        """Files per second in the current run, and the seconds it still needs at that pace."""
        if not self.service.running or progress.done == 0:
            return {"files_per_s": None, "eta_s": None}
        rate = progress.done / max(time.monotonic() - self.service.run_started, 1e-3)
        return {"files_per_s": round(rate, 2),
                "eta_s": round(max(progress.total - progress.done, 0) / rate, 1)}

    def close(self) -> None:
        self.search_pool.shutdown(wait=True)
        self.status_pool.shutdown(wait=True)
        self.readers.close()
        self.status_readers.close()
        self.query_model.close()
        if self.blas is not None:
            self.blas.restore_original_limits()


DAEMON = web.AppKey("daemon", Daemon)
