"""Reconcile the vault with the catalog and index what changed.

Added, changed (size or mtime, then hash), removed and renamed files are found by comparing a
scan with the catalog. Files are read ahead on worker threads (``pipeline.py``: the OCR and PDF
pages of the next files while this thread embeds the ones before), embedded in batches that
span files (``vectorizer.py``), and each is written in one transaction of its own
(``writer.py``), so a kill at any moment loses at most the files in flight, and the next run
finishes the work with no duplicate. OCR, PDF text and vectors are cached by content hash: a
renamed or unchanged file costs a hash, never a model call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any

from vaultlens.embedders.base import Embedder
from vaultlens.extract.documents import Document, image_document, note_document, pdf_document
from vaultlens.extract.ocr import OCRPool
from vaultlens.index.catalog import SCRUB, Catalog, FileRow
from vaultlens.index.cleanup import forget_gone
from vaultlens.index.datadir import DataDir
from vaultlens.index.extractor import Extracted, Extractor
from vaultlens.index.pipeline import ReadAhead
from vaultlens.index.report import Progress, Summary
from vaultlens.index.vectorizer import Stopped, Vectorizer
from vaultlens.index.vectors import VectorIndex
from vaultlens.index.writer import Retries, Writer
from vaultlens.vault.context import link_note
from vaultlens.vault.links import Resolver
from vaultlens.vault.vault import LiveRules, Problem, VaultFile, live_file, scan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexOptions:
    config_dir: str = ".obsidian"
    exclude: tuple[str, ...] = ()
    context_chars: int = 1500
    max_pdf_pages: int = 200
    pdf_timeout: float = 20.0
    retries: Retries = field(default_factory=Retries)
    save_every: float = 120.0  # seconds between vector index saves in a long run
    workers: int = 0  # threads reading files ahead (0: one per core)
    # inputs gathered across files before they are embedded, sorted by length, in model
    # calls of about 1024 tokens (an urgent file is served between two): bigger pads less
    batch_inputs: int = 256


@dataclass
class Prepared:
    """A file read and turned into a document, waiting for its vectors."""

    read: Extracted
    doc: Document
    links: list[dict[str, Any]] | None
    warning: str | None


@dataclass
class RunState:
    """One run's bookkeeping, shared by the loop and the urgent files it serves between
    embedding chunks."""

    summary: Summary
    rows: dict[str, FileRow]  # the catalog's files at the start of the run
    resolver: Resolver
    kinds: dict[str, str]
    gone_hashes: set[str]  # hashes of removed files: a new path with one is a rename
    dirty: set[str]  # images and PDFs whose notes' links changed: described again at the end
    notes: deque[VaultFile] = field(default_factory=deque)
    others: deque[VaultFile] = field(default_factory=deque)
    pending: list[Prepared] = field(default_factory=list)  # read, waiting for the next batch
    done: int = 0


class Indexer:
    def __init__(self, root: Path, data: DataDir, catalog: Catalog, vectors: VectorIndex,
                 embedder: Embedder, ocr: OCRPool | None, options: IndexOptions,
                 progress: Callable[[Progress], None] | None = None,
                 urgent_embedder: Embedder | None = None) -> None:
        self.root = root
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.ocr = ocr
        self.options = options
        self.progress = progress
        self.workers = options.workers or os.cpu_count() or 1
        # the read-ahead threads look up cached OCR through a connection of their own
        self._cache = Catalog.open(catalog.path)
        self.extract = Extractor(root, data, self._cache, ocr, embedder.supports_images,
                                 options.max_pdf_pages, options.pdf_timeout)
        self.vectorizer = Vectorizer(catalog, embedder)
        # urgent files may be embedded by another copy of the model (the daemon's query
        # model: loaded at start, where the indexer's loads torch on its first batch)
        if urgent_embedder is not None and urgent_embedder.signature != embedder.signature:
            raise ValueError(f"urgent model {urgent_embedder.signature} is not "
                             f"{embedder.signature}: its vectors would not match")
        self.urgent_vectorizer = Vectorizer(catalog, urgent_embedder or embedder)
        # with an urgent model, the indexer's own loads beside the loop when the first file
        # needs it (torch takes seconds to import; a vault with nothing new never pays):
        # batches wait for it, urgent files do not
        self._loaded = threading.Event()
        self._loading = False
        if urgent_embedder is None:
            self._loaded.set()
        self.writer = Writer(catalog, vectors, options.retries)
        self.urgent: SimpleQueue[str] = SimpleQueue()  # vault paths to index before the rest
        self.rules = LiveRules(root, options.config_dir, options.exclude)
        self.stop = threading.Event()  # set: the run ends after the files in hand
        self.state = Progress(0, 0, "")
        self.visual = embedder.supports_images

    def close(self) -> None:
        if self.ocr is not None:
            self.ocr.close()
        self._cache.close()

    def save_vectors(self) -> None:
        if self.writer.in_sync:
            self.vectors.save(int(self.catalog.get_meta("items_version") or 0))

    def run(self) -> Summary:
        start = time.perf_counter()
        summary = Summary(model=self.embedder.signature, visual=self.visual)
        vault = scan(self.root, self.options.config_dir, self.options.exclude)
        summary.skipped += [{"path": p.path, "reason": p.reason} for p in vault.problems]
        rows = self.catalog.files()
        if self.catalog.get_meta("model_signature") != self.embedder.signature:
            rows = {p: FileRow(**{**asdict(r), "hash": None}) for p, r in rows.items()}
            with self.catalog.transaction():
                self.catalog.set_meta("model_signature", self.embedder.signature)
        on_disk = {f.path for f in vault.files}
        removed = [r for p, r in rows.items() if p not in on_disk]
        st = RunState(summary, rows, Resolver(f.path for f in vault.files),
                      {f.path: f.kind for f in vault.files},
                      {r.hash for r in removed if r.hash}, set())
        for r in removed:
            with self.catalog.transaction():
                ids = self.catalog.delete_file(r.id)
                self.catalog.bump_version()
            self.vectors.remove(ids)
            st.dirty.add(r.path)
        summary.removed = len(removed)

        work = [f for f in vault.files if not self._unchanged(f, rows.get(f.path))]
        summary.unchanged = len(vault.files) - len(work)
        if removed or any(f.path not in rows for f in work):
            # before any file is indexed: a moved image must find its notes' links at once
            st.dirty |= self._retarget(st.resolver)
        work.sort(key=lambda f: f.path)
        st.notes.extend(f for f in work if f.kind == "note")
        st.others.extend(f for f in work if f.kind != "note")
        ahead = ReadAhead(self.extract.read, self.workers)
        try:
            self._loop(st, ahead)
        finally:
            ahead.close()
            if self.ocr is not None:
                self.ocr.rest()
        self._report(Progress(st.done, st.done, ""))
        self._refresh(st.dirty, summary)
        # every file is in the catalog: what none holds may go. A hash stops being held only
        # when a file is removed or written anew; a mark left by a killed run asks again
        if not summary.stopped and (summary.removed or summary.indexed
                                    or self.catalog.get_meta(SCRUB) is not None):
            forget_gone(self.catalog, self.extract.data.thumbs)
        if self.vectors.needs_compaction():  # removed keys leave tombstones behind in usearch
            self.vectors.rebuild(self.catalog.live_vectors(self.embedder.signature))
        self.save_vectors()
        counts = self.catalog.counts()
        summary.files, summary.items = len(vault.files), counts["items"]
        for path, row in self.catalog.files().items():
            if row.status == "skipped":
                summary.skipped.append({"path": path, "reason": str(row.reason)})
            elif row.status == "retry":
                summary.retry.append({"path": path, "reason": str(row.reason)})
            elif row.status == "partial":
                summary.partial.append({"path": path, "reason": str(row.reason)})
        summary.seconds = round(time.perf_counter() - start, 3)
        return summary

    def _load(self) -> None:
        try:
            self.embedder.embed_texts(["warm up"], "document")
        except Exception:  # the first batch meets the same error, and records it per file
            log.exception("the indexing model failed to load")
        finally:
            self._loaded.set()

    def _loop(self, st: RunState, ahead: ReadAhead) -> None:
        last_save = time.monotonic()
        while True:
            # urgent paths first, and even when nothing else changed: a reindex request for
            # an unchanged file must be answered (and leave the queue), not wait forever
            self._take_urgent(st, ahead)
            if self.stop.is_set():
                # a stop ends within one model call: what is read and not yet embedded (a
                # whole vault, maybe, read while the model loaded) keeps its OCR and PDF text
                # in the cache and is embedded at the next start; what is in flight is dropped
                self._keep_extracts(st.pending)
                st.summary.stopped = bool(st.pending or st.notes or st.others
                                          or ahead.in_flight())
                st.pending.clear()
                return
            ahead.fill(st.notes, st.others, lambda f: self._known(st, f))
            got = ahead.ready()
            if got is None and ahead.urgent_in_flight():
                ahead.wait(0.25, urgent_only=True)  # the cores are the urgent file's: no batch
                continue
            if got is None and st.pending and not self._loaded.is_set():
                self._loaded.wait(0.1)  # the model is loading: serve urgent files meanwhile
                continue
            if got is None:
                busy = bool(ahead.in_flight() or st.notes or st.others)
                if st.pending and (not busy or not ahead.wait(0.05)):
                    # nothing more is coming at once: embed while the workers read ahead
                    self._flush_pending(st, ahead)
                elif not busy:
                    return
                elif not st.pending:
                    ahead.wait(0.25)  # and look at the urgent paths again
                continue
            self._take(st, got, ahead)
            if time.monotonic() - last_save > self.options.save_every:
                self.save_vectors()
                last_save = time.monotonic()

    def _take(self, st: RunState, got: Extracted, ahead: ReadAhead) -> None:
        """A file read: written now if there is nothing to embed or it is urgent, else kept
        for the next batch."""
        self._tell(st, ahead, got.file.path, 1)
        if got.outcome != "read":
            self._settle(got, st.rows.get(got.file.path), st.summary)
            st.done += 1
            return
        prepared = self._prepare(got, st)
        if got.urgent:  # alone and now, not with the next batch
            log.debug("urgent %s: read", got.file.path)
            self._flush(st, [prepared], now=True)
            log.debug("urgent %s: written", got.file.path)
            st.done += 1
            return
        st.pending.append(prepared)
        if not self._loading and not self._loaded.is_set():
            self._loading = True
            threading.Thread(target=self._load, name="vaultlens-model-load", daemon=True).start()
        if (sum(len(p.doc.inputs) for p in st.pending) >= self.options.batch_inputs
                and self._loaded.is_set()):
            self._flush_pending(st, ahead)

    def _flush_pending(self, st: RunState, ahead: ReadAhead) -> None:
        """Embed and write the files read so far, about ``batch_inputs`` inputs at a time:
        the files read while the model loaded (a whole vault of notes, maybe) are written
        batch by batch, so progress moves and an interruption loses one batch at most."""

        def between() -> None:
            """An urgent file does not wait for the whole batch: it is served here, and the
            batch waits while it is read (its OCR then has the cores). A stop ends the batch
            here, between two model calls, before anything of it is written."""
            if self.stop.is_set():
                raise Stopped
            self._take_urgent(st, ahead)
            while ahead.urgent_in_flight():
                ahead.wait(0.25, urgent_only=True)
                while (got := ahead.ready(urgent_only=True)) is not None:
                    self._take(st, got, ahead)
                self._take_urgent(st, ahead)

        while st.pending and not self.stop.is_set():
            cut, inputs = 0, 0
            while cut < len(st.pending) and (cut == 0 or inputs < self.options.batch_inputs):
                inputs += len(st.pending[cut].doc.inputs)
                cut += 1
            batch, st.pending = st.pending[:cut], st.pending[cut:]
            try:
                self._flush(st, batch, between=between)
            except Stopped:  # the batch goes back to the files read, kept for the stop
                st.pending = batch + st.pending
                return
            st.done += len(batch)
            self._tell(st, ahead, batch[-1].read.file.path)

    def _keep_extracts(self, pending: list[Prepared]) -> None:
        with self.catalog.transaction():
            for p in pending:
                for key, extractor, data in p.read.extracts:
                    self.catalog.store_extract(key, extractor, data)

    def _known(self, st: RunState, f: VaultFile) -> str | None:
        """The hash the catalog has for this file when its bytes need nothing more."""
        row = st.rows.get(f.path)
        return row.hash if row is not None and self._settled(row) else None

    def _tell(self, st: RunState, ahead: ReadAhead, path: str, taking: int = 0) -> None:
        """Progress: files done, of those done, in hand (``taking``) and still to come."""
        left = len(st.notes) + len(st.others) + ahead.in_flight() + len(st.pending) + taking
        self._report(Progress(st.done, st.done + left, path))

    def _report(self, p: Progress) -> None:
        self.state = p
        if self.progress:
            self.progress(p)

    def _take_urgent(self, st: RunState, ahead: ReadAhead) -> None:
        """Paths someone is waiting for (a paste, a reindex request) are read on the urgent
        lane at once; a file born after this run's scan joins here, held to the scan's rules
        as they are now (a link made or a rule set in Obsidian since is refused all the same)."""
        while True:
            try:
                path = self.urgent.get_nowait()
            except Empty:
                return
            if path in ahead.paths:
                continue  # being read already: it is written as soon as it is
            for queue in (st.notes, st.others):
                waiting = next((f for f in queue if f.path == path), None)
                if waiting is not None:
                    queue.remove(waiting)
            f = live_file(self.root, path, self.rules)
            if isinstance(f, Problem):
                st.summary.skipped.append({"path": f.path, "reason": f.reason})
                continue
            if f is None:
                continue  # excluded, or gone again: the next run settles it
            st.resolver.add(path)
            st.kinds[path] = f.kind
            log.debug("urgent %s: reading", path)
            ahead.urgent(f, self._known(st, f))

    def _unchanged(self, f: VaultFile, row: FileRow | None) -> bool:
        return (row is not None and row.hash is not None and row.kind == f.kind
                and row.size == f.size and row.mtime_ns == f.mtime_ns and self._settled(row))

    def _settled(self, row: FileRow) -> bool:
        """Nothing to do for this file's bytes: done, or skipped for good, or indexed in part
        and not yet due for another try (or out of tries)."""
        if row.status == "partial":
            return (row.tries >= self.options.retries.partial_tries
                    or time.time() < row.retry_at)
        return row.status in ("indexed", "skipped")

    # one file -----------------------------------------------------------------------------
    def _settle(self, got: Extracted, row: FileRow | None, summary: Summary) -> None:
        """A file with nothing to embed: unchanged bytes, or skipped, or to be retried."""
        self._merge(got, summary)
        if got.outcome == "unchanged" and row is not None:
            self.writer.unchanged(row, got.file)
            summary.unchanged += 1
        elif got.outcome == "retry":
            self.writer.retry(got.file, row, got.hash, str(got.reason))
        else:
            self.writer.skipped(got.file, got.hash, str(got.reason))

    @staticmethod
    def _merge(got: Extracted, summary: Summary) -> None:
        for stage, seconds in got.timings.items():
            summary.timings[stage] = round(summary.timings.get(stage, 0.0) + seconds, 3)
        summary.ocr_images += got.ocr_images

    def _prepare(self, got: Extracted, st: RunState) -> Prepared:
        """The document of a file read by a worker, with the links of the notes written so
        far (which is why this runs here, and not on the worker)."""
        f = got.file
        assert got.hash is not None
        if f.kind == "note":
            assert got.note is not None
            links = [x.to_json() for x in link_note(got.note, st.resolver, st.kinds,
                                                     self.options.context_chars)
                     if x.kind != "external"]
            return Prepared(got, note_document(got.note), links,
                            "; ".join(got.note.problems) or None)
        st.dirty.discard(f.path)  # described by its notes as they are now
        lenders = self.catalog.links_to(f.path)
        if f.kind == "image":
            doc = image_document(f.path, got.hash, got.ocr_text, got.image, lenders, self.visual)
        else:
            doc = pdf_document(f.path, got.pages, lenders, self.visual, got.hash)
        if not self.visual:  # the pixels are read: a batch waiting to be embedded keeps text
            got.image, got.pages = None, []
        return Prepared(got, doc, None, None)

    def _flush(self, st: RunState, batch: list[Prepared], now: bool = False,
               between: Callable[[], None] | None = None) -> None:
        """Embed a batch of files, then write each in a transaction of its own. ``now``: the
        images its notes embed are described again at once too (a pasted screenshot gets its
        paragraph while a cold index runs on). ``between``: called between model calls and
        between writes."""
        if not batch:
            return
        vectorizer = self.urgent_vectorizer if now else self.vectorizer
        embedded = vectorizer.embed([p.doc for p in batch], st.summary,
                                    [p.read.file.path for p in batch], between)
        for p, vectors in zip(batch, embedded, strict=True):
            got, row = p.read, st.rows.get(p.read.file.path)
            assert got.hash is not None
            self._merge(got, st.summary)
            _, changed = self.writer.indexed(got.file, got.hash, row, p.doc, vectors,
                                             got.failure, p.warning, p.links, got.extracts)
            if now:
                self._refresh(changed, st.summary)
            st.dirty |= changed  # (again at the end: one may be in a batch not yet written)
            st.summary.indexed += 1
            if row is None and got.hash in st.gone_hashes:
                st.summary.renamed += 1  # a new path with a removed file's bytes: from cache
            if between is not None:
                with contextlib.suppress(Stopped):  # embedded: the batch is written whole
                    between()

    # links that changed under unchanged files ----------------------------------------------
    def _retarget(self, resolver: Resolver) -> set[str]:
        """Files came or went: links in unchanged notes may now point elsewhere."""
        changed: set[str] = set()
        with self.catalog.transaction():
            for row in self.catalog.all_links():
                res = resolver.resolve(row["link"], row["note"])
                if res.path != row["target"]:
                    self.catalog.retarget(row["id"], res.path, res.reason)
                    changed |= {t for t in (res.path, row["target"]) if t}
        return changed

    def _refresh(self, targets: set[str], summary: Summary) -> None:
        self.writer.redescribe(targets, self.vectorizer, self.visual, summary)
