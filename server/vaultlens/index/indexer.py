"""Reconcile the vault with the catalog and index what changed.

Added, changed (size or mtime, then hash), removed and renamed files are found by comparing a
scan with the catalog. Files are read ahead on worker threads (``pipeline.py``: the OCR and PDF
pages of the next files while this thread embeds the ones before), embedded in batches that
span files (``vectorizer.py``), and each is written in one transaction of its own
(``writer.py``), so a kill at any moment loses at most the files in flight, and the next run
finishes the work with no duplicate. OCR, PDF text and vectors are cached by content hash: a
renamed or unchanged file costs a hash, never a model call.

What runs next (an urgent file, a read to take, the pending batch) is decided by the run's
``Plan``; urgent paths are the ``Urgent`` lane's (``urgent.py``): queued until the run takes
them, read first, and served between two model calls of a batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vaultlens.embedders.base import Embedder
from vaultlens.extract.ocr import OCRPool
from vaultlens.index.catalog import SCRUB, Catalog, FileRow
from vaultlens.index.cleanup import forget_gone
from vaultlens.index.datadir import DataDir
from vaultlens.index.diff import retarget, settled, unchanged
from vaultlens.index.extractor import Extracted, Extractor
from vaultlens.index.pipeline import ReadAhead
from vaultlens.index.plan import Admitted, Now, Plan, Step, UrgentLane
from vaultlens.index.prepared import Prepared, prepare
from vaultlens.index.repair import deleted
from vaultlens.index.report import Progress, Summary, file_work
from vaultlens.index.runstate import RunState
from vaultlens.index.urgent import Serving, Urgent
from vaultlens.index.vectorizer import Stopped, Vectorizer
from vaultlens.index.vectors import VectorIndex
from vaultlens.index.writer import Retries, Writer
from vaultlens.vault.links import Resolver
from vaultlens.vault.policy import Policy
from vaultlens.vault.scan import scan_with
from vaultlens.vault.vault import FileKind, VaultFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexOptions:
    context_chars: int = 1500
    max_pdf_pages: int = 200
    pdf_timeout: float = 20.0
    retries: Retries = field(default_factory=Retries)
    save_every: float = 120.0  # seconds between vector index saves in a long run
    workers: int = 0  # threads reading files ahead (0: one per core)
    # inputs gathered across files before they are embedded, sorted by length, in model
    # calls of about 1024 tokens (an urgent file is served between two): bigger pads less
    batch_inputs: int = 256


class Indexer:
    def __init__(self, root: Path, data: DataDir, catalog: Catalog, vectors: VectorIndex,
                 embedder: Embedder, ocr: OCRPool | None, options: IndexOptions,
                 progress: Callable[[Progress], None] | None = None,
                 urgent_embedder: Embedder | None = None, *, policy: Policy) -> None:
        self.root = root
        # which paths are ours: the scan and the urgent lane ask the one policy (the
        # workspace's, shared with the daemon's watcher and reindex)
        self.policy = policy
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.ocr = ocr
        self.options = options
        self._on_progress = progress
        self.workers = options.workers or os.cpu_count() or 1
        # the read-ahead threads look up cached OCR through a connection of their own
        self._cache = Catalog.open(catalog.path)
        self.extract = Extractor(root, data, self._cache, ocr, embedder.supports_images,
                                 options.max_pdf_pages, options.pdf_timeout)
        self._stop = threading.Event()  # set: the run ends after the files in hand
        self.urgent = Urgent(UrgentLane(self.policy), self._stop, ocr)
        self.vectorizer = Vectorizer(catalog, embedder)  # files described anew
        self.batches = Vectorizer(catalog, embedder, pause=self.urgent)  # urgent files wait less
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
        self._state = Progress(0, 0, "")
        self.visual = embedder.supports_images
        # the vault's files of a kind a run reads: as the catalog has them until a scan says
        counts = catalog.counts()
        self._searchable = counts["files"] - counts.get("files_ignored", 0)

    # what the daemon's indexing thread asks of the indexer -------------------------------
    def prepare(self) -> None:
        """Ready the urgent lane before the first paste (its OCR worker)."""
        self.urgent.prepare()

    def request_urgent(self, paths: Iterable[str]) -> None:
        """Index these vault paths before anything else (from any thread)."""
        self.urgent.request(paths)

    def urgent_waiting(self) -> int:
        """Urgent paths asked for that no run has taken yet."""
        return self.urgent.waiting()

    def hand_over(self, successor: Indexer) -> None:
        """What was asked for is still wanted by the indexer that replaces this one."""
        successor.request_urgent(self.urgent.take())

    def stop(self) -> None:
        """The run in progress ends within one model call (from any thread); so does any
        later one."""
        self._stop.set()

    def progress(self) -> Progress:
        """The current (or last) run's progress."""
        return self._state

    def searchable(self) -> int:
        """How many of the vault's files are of a kind a run reads (at the last scan)."""
        return self._searchable

    def observe(self, progress: Callable[[Progress], None]) -> None:
        """Be told of each run's progress, in the indexing thread, as it happens: first the
        run's size (nothing done), then each file or batch done."""
        self._on_progress = progress

    def catalog_deleted(self) -> bool:
        """Whether the catalog's file was deleted or replaced under this indexer."""
        return deleted(self.catalog)

    def close(self) -> None:
        if self.ocr is not None:
            self.ocr.close()
        self._cache.close()

    def save_vectors(self) -> None:
        if self.writer.in_sync:
            self.vectors.save(int(self.catalog.get_meta("items_version") or 0))

    def run(self) -> Summary:
        """Scan the vault, diff it with the catalog, drain the plan (urgent paths first),
        finish (links, clean-up, vectors saved, the summary)."""
        start = time.perf_counter()
        summary = Summary(model=self.embedder.signature, visual=self.visual)
        vault = scan_with(self.policy)
        summary.skipped += [{"path": p.path, "reason": p.reason} for p in vault.problems]
        st = self._diff(vault.files, summary)
        self._drain(st)
        self._finish(st, len(vault.files))
        summary.seconds = round(time.perf_counter() - start, 3)
        return summary

    def _diff(self, files: list[VaultFile], summary: Summary) -> RunState:
        """What changed since the catalog: removed files go at once; the rest is planned."""
        rows = self.catalog.files()
        if self.catalog.get_meta("model_signature") != self.embedder.signature:
            rows = {p: FileRow(**{**asdict(r), "hash": None}) for p, r in rows.items()}
            with self.catalog.transaction():
                self.catalog.set_meta("model_signature", self.embedder.signature)
        on_disk = {f.path for f in files}
        removed = [r for p, r in rows.items() if p not in on_disk]
        todo = [f for f in files if not unchanged(f, rows.get(f.path), self.options.retries)]
        # a kind nobody searches is never read (not even hashed: it may be a large video)
        self.writer.ignored([f for f in todo if f.kind == FileKind.OTHER])
        to_read = [f for f in todo if f.kind != FileKind.OTHER]
        self._searchable = sum(1 for f in files if f.kind != FileKind.OTHER)
        st = RunState(summary, rows, Resolver(f.path for f in files),
                      {f.path: f.kind for f in files}, {r.hash for r in removed if r.hash},
                      set(), Plan(to_read, lambda p: len(p.doc.inputs),
                                  self.options.batch_inputs))
        for r in removed:
            with self.catalog.transaction():
                ids = self.catalog.delete_file(r.id)
                self.catalog.bump_version()
            self.vectors.remove(ids)
            st.dirty.add(r.path)
        summary.removed = len(removed)
        summary.unchanged = len(files) - len(todo)
        st.work_total = sum(file_work(f) for f in to_read)
        self._report(Progress(0, len(to_read), "", 0.0, st.work_total))  # what it will read
        if removed or any(f.path not in rows for f in todo):
            # before any file is indexed: a moved image must find its notes' links at once
            st.dirty |= retarget(self.catalog, st.resolver)
        return st

    def _drain(self, st: RunState) -> None:
        ahead = ReadAhead(self.extract.read, self.workers)
        serving = Serving(ahead, lambda taken: self._claim(st, taken),
                          lambda f: self._known(st, f), lambda got: self._take(st, got, ahead))
        try:
            with self.urgent.serving(serving):
                self._loop(st, ahead)
        finally:
            ahead.close()
            if self.ocr is not None:
                self.ocr.rest()
        self._report(Progress(st.done, st.done, "", st.work_done, st.work_done))

    def _finish(self, st: RunState, files: int) -> None:
        summary = st.summary
        self._refresh(st.dirty, summary)
        # every file is in the catalog: what none holds may go. A hash stops being held only
        # when a file is removed or written anew; a mark left by a killed run asks again
        if not summary.stopped and (summary.removed or summary.indexed
                                    or self.catalog.get_meta(SCRUB) is not None):
            forget_gone(self.catalog, self.extract.data.thumbs)
        if self.vectors.needs_compaction():  # removed keys leave tombstones behind in usearch
            self.vectors.rebuild(self.catalog.live_vectors(self.embedder.signature))
        self.save_vectors()
        summary.files, summary.items = files, self.catalog.counts()["items"]
        summary.add_not_indexed(self.catalog.failures())
        summary.ignored = self.catalog.ignored()

    def _load(self) -> None:
        try:
            self.embedder.embed_texts(["warm up"], "document")
        except Exception:  # the first batch meets the same error, and records it per file
            log.exception("the indexing model failed to load")
        finally:
            self._loaded.set()

    def _loop(self, st: RunState, ahead: ReadAhead) -> None:
        """Drain the plan: at each step urgent paths first (even when nothing else changed: a
        reindex request for an unchanged file must be answered, and leave the lane), then
        what the plan says."""
        plan, last_save = st.plan, time.monotonic()
        while True:
            self.urgent.admit()
            if not self._stop.is_set():
                ahead.fill(plan.notes, plan.others, lambda f: self._known(st, f))
            got = None if self._stop.is_set() else ahead.ready()
            step = plan.next(Now(self._stop.is_set(), got is not None, self.urgent.reading(),
                                 ahead.in_flight(), self._loaded.is_set()))
            if step is Step.STOP:
                # a stop ends within one model call: what is read and not yet embedded (a
                # whole vault, maybe, read while the model loaded) keeps its OCR and PDF text
                # in the cache and is embedded at the next start; what is in flight is dropped
                self._keep_extracts(plan.pending)
                st.summary.stopped = plan.unfinished(ahead.in_flight())
                plan.pending.clear()
                return
            if step is Step.DONE:
                return
            if step is Step.TAKE:
                assert got is not None
                self._take(st, got, ahead)
                if time.monotonic() - last_save > self.options.save_every:
                    self.save_vectors()
                    last_save = time.monotonic()
            elif step is Step.WAIT_URGENT:
                ahead.wait(0.25, urgent_only=True)  # the cores are the urgent file's: no batch
            elif step is Step.WAIT_MODEL:
                self._loaded.wait(0.1)  # the model is loading: serve urgent files meanwhile
            elif step is Step.FLUSH or (step is Step.LINGER and not ahead.wait(0.05)):
                self._flush_pending(st, ahead)  # nothing more comes at once: embed meanwhile
            elif step is Step.WAIT:
                ahead.wait(0.25)  # and look at the urgent paths again

    def _take(self, st: RunState, got: Extracted, ahead: ReadAhead) -> None:
        """A file read: written now if there is nothing to embed or it is urgent, else kept
        for the next batch."""
        self._tell(st, ahead, got.file.path, 1)
        if got.outcome != "read":
            self._settle(got, st.rows.get(got.file.path), st.summary)
            st.finished(got.file)
            return
        prepared = self._prepare(got, st)
        if got.urgent:  # alone and now, not with the next batch
            log.debug("urgent %s: read", got.file.path)
            self._flush(st, [prepared], now=True)
            log.debug("urgent %s: written", got.file.path)
            st.finished(got.file)
            return
        st.plan.hold(prepared)
        st.read(got.file)
        if not self._loading and not self._loaded.is_set():
            self._loading = True
            threading.Thread(target=self._load, name="vaultlens-model-load", daemon=True).start()
        if st.plan.batch_full(self._loaded.is_set()):
            self._flush_pending(st, ahead)

    def _flush_pending(self, st: RunState, ahead: ReadAhead) -> None:
        """Embed and write the files read so far, about ``batch_inputs`` inputs at a time:
        the files read while the model loaded (a whole vault of notes, maybe) are written
        batch by batch, so progress moves and an interruption loses one batch at most."""
        while st.plan.pending and not self._stop.is_set():
            batch = st.plan.cut()
            try:
                self._flush(st, batch)
            except Stopped:  # the batch goes back to the files read, kept for the stop
                st.plan.put_back(batch)
                return
            st.written([p.read.file for p in batch])
            self._tell(st, ahead, batch[-1].read.file.path)

    def _keep_extracts(self, pending: list[Prepared]) -> None:
        with self.catalog.transaction():
            for p in pending:
                for key, extractor, data in p.read.extracts:
                    self.catalog.store_extract(key, extractor, data)

    def _known(self, st: RunState, f: VaultFile) -> str | None:
        """The hash the catalog has for this file when its bytes need nothing more."""
        row = st.rows.get(f.path)
        return row.hash if row is not None and settled(row, self.options.retries) else None

    def _tell(self, st: RunState, ahead: ReadAhead, path: str, taking: int = 0) -> None:
        """Progress: files done, of those done, in hand (``taking``) and still to come; and
        the same weighed (report.file_work)."""
        left = st.plan.left() + ahead.in_flight() + taking
        self._report(Progress(st.done, st.done + left, path, st.work_done,
                              max(st.work_total, st.work_done)))

    def _report(self, p: Progress) -> None:
        self._state = p
        if self._on_progress:
            self._on_progress(p)

    def _claim(self, st: RunState, taken: Admitted) -> None:
        """Urgent paths taken: the plan's other lanes read them no more; the files to read
        now join the run's links and kinds, the refused its skipped. A kind nobody searches is
        recorded as ignored here and leaves ``taken.files``: it is never read, as in a run."""
        if other := [f for f in taken.files if f.kind == FileKind.OTHER]:
            self.writer.ignored(other)
            taken.files[:] = [f for f in taken.files if f.kind != FileKind.OTHER]
        queued = {f.path for f in (*st.plan.notes, *st.plan.others)}
        for path in taken.paths:
            st.plan.claim(path)
        st.summary.skipped += [{"path": p.path, "reason": p.reason} for p in taken.refused]
        for f in taken.files:
            if f.path not in queued:  # work the run did not plan: a paste, a reindex
                st.work_total += file_work(f)
            st.resolver.add(f.path)
            st.kinds[f.path] = f.kind
            log.debug("urgent %s: reading", f.path)

    # one file -----------------------------------------------------------------------------
    def _settle(self, got: Extracted, row: FileRow | None, summary: Summary) -> None:
        """A file with nothing to embed: unchanged bytes, or skipped, or to be retried."""
        summary.merge(got.timings, got.ocr_images)
        if got.outcome == "unchanged" and row is not None:
            self.writer.unchanged(row, got.file)
            summary.unchanged += 1
        elif got.outcome == "retry":
            self.writer.retry(got.file, row, got.hash, str(got.reason))
        elif got.outcome == "ignore":  # read and found to be nothing anyone searches
            self.writer.ignored([got.file])
        else:
            self.writer.skipped(got.file, got.hash, str(got.reason))

    def _prepare(self, got: Extracted, st: RunState) -> Prepared:
        if got.file.kind != FileKind.NOTE:
            st.dirty.discard(got.file.path)  # described by its notes as they are now
        return prepare(got, st.resolver, st.kinds, self.catalog.links_to, self.visual,
                       self.options.context_chars)

    def _flush(self, st: RunState, batch: list[Prepared], now: bool = False) -> None:
        """Embed a batch of files, then write each in a transaction of its own. ``now``: an
        urgent file, and the images its notes place are described again at once too (a pasted
        screenshot gets its paragraph while a cold index runs on). Else urgent files are
        served between model calls and between writes."""
        if not batch:
            return
        vectorizer = self.urgent_vectorizer if now else self.batches
        embedded = vectorizer.embed([p.doc for p in batch], st.summary,
                                    [p.read.file.path for p in batch])
        for p, vectors in zip(batch, embedded, strict=True):
            got, row = p.read, st.rows.get(p.read.file.path)
            assert got.hash is not None
            st.summary.merge(got.timings, got.ocr_images)
            _, changed = self.writer.indexed(got.file, got.hash, row, p.doc, vectors,
                                             got.failure, p.warning, p.links, got.extracts)
            if now:  # by the urgent model too: the indexing one may be resting (not loaded)
                self._refresh(changed, st.summary, self.urgent_vectorizer)
            st.dirty |= changed  # (again at the end: one may be in a batch not yet written)
            st.summary.indexed += 1
            if row is None and got.hash in st.gone_hashes:
                st.summary.renamed += 1  # a new path with a removed file's bytes: from cache
            if not now:
                with contextlib.suppress(Stopped):  # embedded: the batch is written whole
                    self.urgent.between_calls()

    def _refresh(self, targets: set[str], summary: Summary,
                 vectorizer: Vectorizer | None = None) -> None:
        self.writer.redescribe(targets, vectorizer or self.vectorizer, self.visual, summary)
