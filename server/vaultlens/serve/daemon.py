"""The daemon's life, owned in one place: its index (opened again when the data dir goes
wrong), the indexing thread (``indexing.py``), the searches' threads and read connections,
the query model, and daemon.json, which says where it listens.

With a text model, the indexer's model runs in a worker process that ends when indexing has
been idle a while (registry.indexing_model_for): the daemon itself never imports torch.

Searches run side by side in a pool of threads, each with its own read-only SQLite connection
(``connections.py``), and nothing heavy runs on the event loop. With a text model, searches have
their own query model and never wait for the indexer. A visual model is too big to load twice:
searches and the indexer share it, and its lock makes a search wait for at most the batch in
hand.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from vaultlens.embedders.base import Embedder, ModelError
from vaultlens.embedders.process import InWorker
from vaultlens.embedders.registry import indexing_model_for, query_model_for
from vaultlens.index.catalog import Catalog
from vaultlens.index.indexer import Indexer
from vaultlens.index.repair import rescue, set_aside
from vaultlens.search.pack import Packer
from vaultlens.search.pictures import Pictures
from vaultlens.search.searcher import Searcher
from vaultlens.search.tokens import TokenCounter
from vaultlens.serve.connections import Make, ThreadReaders
from vaultlens.serve.indexing import IndexService
from vaultlens.serve.status import daemon_state, daemon_status
from vaultlens.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)


class Daemon:
    """Typed application state: everything the views need."""

    def __init__(self, workspace: Workspace, query_model: Embedder, reconcile_every: float,
                 search_threads: int) -> None:
        self.workspace = workspace
        # with a text model, searches have a query model of their own (numpy MiniLM: no
        # torch to import, safe in many threads) and never queue behind the indexer's
        # batches; pastes are embedded by it too: it is loaded at start, where the indexer's
        # torch model loads on its first batch (seconds, on a busy machine)
        self.query_model = query_model
        self.token = workspace.data.token()
        self.started = time.time()
        # set once the query model is loaded: until then searches are keyword-only ("partial")
        self.ready = threading.Event()
        make = self._readers(workspace)
        # searches run side by side, each thread with its own read connection (connections.py)
        self.search_threads = search_threads
        self.readers = ThreadReaders(make, search_threads)
        self.search_pool = ThreadPoolExecutor(search_threads,
                                              thread_name_prefix="vaultlens-search")
        # /api/status reads the catalog with a connection and a thread of its own: it answers
        # while every search thread waits (on a stuck query worker, a slow search)
        self.status_readers = ThreadReaders(make, 1)
        self.status_pool = ThreadPoolExecutor(1, thread_name_prefix="vaultlens-status")
        self.port: int | None = None  # where `vaultlens serve` listens, once announced
        # the indexer's model: a worker process for a text model, ended while idle
        self.indexing_model = indexing_model_for(workspace.embedder)
        self.service = IndexService(
            workspace.indexer(urgent_embedder=query_model, embedder=self.indexing_model)
            if workspace.writer else None, reconcile_every, reopen=self.reopen)

    @classmethod
    def open(cls, workspace: Workspace, reconcile_every: float, search_threads: int
             ) -> Daemon:
        return cls(workspace, query_model_for(workspace.embedder), reconcile_every,
                   search_threads)

    def _readers(self, ws: Workspace) -> Make:
        query_model = self.query_model

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

    def announce(self, port: int) -> None:
        """daemon.json in the data dir while we serve: `vaultlens mcp` finds us by it. The one
        place it is written: at start, and again when the data dir was made anew."""
        self.port = port
        ws = self.workspace
        ws.data.write_daemon_info(port, str(ws.config.vault.resolve()))

    def withdraw(self) -> None:
        """daemon.json goes (if it is still ours): we no longer serve."""
        self.workspace.data.clear_daemon_info()

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
        ws.policy = old.policy  # the watcher holds it: one exclusion policy for the daemon
        ws.data.restore_token(self.token)
        make = self._readers(ws)
        self.readers.reopen(make)
        self.status_readers.reopen(make)
        self.workspace = ws
        if self.port is not None:  # daemon.json went with the data dir: say where we are
            self.announce(self.port)
        return ws.indexer(urgent_embedder=self.query_model, embedder=self.indexing_model)

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
        catalog = self.status_readers.get()[0].catalog
        return daemon_status(self.workspace.status(catalog), self.service,
                             self.ready.is_set(), self.started)

    def state(self) -> str:
        return daemon_state(self.service, self.ready.is_set())

    def close(self) -> None:
        self.search_pool.shutdown(wait=True)
        self.status_pool.shutdown(wait=True)
        self.readers.close()
        self.status_readers.close()
        self.query_model.close()
        model = self.indexing_model
        if model is not self.workspace.embedder:
            if isinstance(model, InWorker) and self.service.alive():
                model.child.kill()  # a run that did not stop in time: its batch is not waited for
            model.close()


DAEMON = web.AppKey("daemon", Daemon)
