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
from vaultlens.index.catalog import Catalog, FileRow
from vaultlens.index.datadir import DataDir
from vaultlens.index.extractor import Extracted, Extractor
from vaultlens.index.pipeline import ReadAhead
from vaultlens.index.report import Progress, Summary
from vaultlens.index.vectorizer import Vectorizer
from vaultlens.index.vectors import VectorIndex
from vaultlens.index.writer import Retries, Writer
from vaultlens.vault.context import link_note
from vaultlens.vault.links import Resolver
from vaultlens.vault.vault import VaultFile, file_kind, scan

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
    # inputs gathered across files before one model call: bigger pads less (the embedder
    # sorts by length), smaller lets an urgent file in sooner
    batch_inputs: int = 64


@dataclass
class Prepared:
    """A file read and turned into a document, waiting for its vectors."""

    read: Extracted
    doc: Document
    links: list[dict[str, Any]] | None
    warning: str | None


class Indexer:
    def __init__(self, root: Path, data: DataDir, catalog: Catalog, vectors: VectorIndex,
                 embedder: Embedder, ocr: OCRPool | None, options: IndexOptions,
                 progress: Callable[[Progress], None] | None = None) -> None:
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
        self.writer = Writer(catalog, vectors, options.retries)
        self.urgent: SimpleQueue[str] = SimpleQueue()  # vault paths to index before the rest
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
        resolver = Resolver(f.path for f in vault.files)
        kinds = {f.path: f.kind for f in vault.files}
        rows = self.catalog.files()
        if self.catalog.get_meta("model_signature") != self.embedder.signature:
            rows = {p: FileRow(**{**asdict(r), "hash": None}) for p, r in rows.items()}
            with self.catalog.transaction():
                self.catalog.set_meta("model_signature", self.embedder.signature)
        on_disk = {f.path for f in vault.files}
        removed = [r for p, r in rows.items() if p not in on_disk]
        gone_hashes = {r.hash for r in removed if r.hash}
        dirty: set[str] = set()  # images and PDFs whose notes' links changed
        for r in removed:
            with self.catalog.transaction():
                ids = self.catalog.delete_file(r.id)
                self.catalog.bump_version()
            self.vectors.remove(ids)
            dirty.add(r.path)
        summary.removed = len(removed)

        work = [f for f in vault.files if not self._unchanged(f, rows.get(f.path))]
        summary.unchanged = len(vault.files) - len(work)
        if removed or any(f.path not in rows for f in work):
            # before any file is indexed: a moved image must find its notes' links at once
            dirty |= self._retarget(resolver)
        work.sort(key=lambda f: f.path)
        notes = deque(f for f in work if f.kind == "note")
        others = deque(f for f in work if f.kind != "note")
        done: list[int] = [0]
        pending: list[Prepared] = []  # read, waiting to be embedded with the next batch
        ahead = ReadAhead(self.extract.read, self.workers)

        def known(f: VaultFile) -> str | None:
            row = rows.get(f.path)
            return row.hash if row is not None and self._settled(row) else None

        def flush() -> None:
            self._flush(pending, rows, gone_hashes, dirty, summary)
            done[0] += len(pending)
            pending.clear()

        last_save = time.monotonic()
        try:
            while True:
                # urgent paths first, and even when nothing else changed: a reindex request
                # for an unchanged file must be answered (and leave the queue), not wait
                self._take_urgent((notes, others), ahead, resolver, kinds, known)
                if self.stop.is_set():  # write what is read; what is in flight is dropped
                    flush()
                    summary.stopped = bool(notes or others or ahead.in_flight())
                    break
                ahead.fill(notes, others, known)
                got = ahead.ready()
                if got is None:
                    if pending:
                        flush()  # embed while the workers read the next files
                    elif not (ahead.in_flight() or notes or others):
                        break
                    else:
                        ahead.wait(0.25)  # and look at the urgent paths again
                    continue
                left = len(notes) + len(others) + ahead.in_flight() + len(pending)
                self._report(Progress(done[0], done[0] + left + 1, got.file.path))
                if got.outcome != "read":
                    self._settle(got, rows.get(got.file.path), summary)
                    done[0] += 1
                    continue
                pending.append(self._prepare(got, resolver, kinds, dirty))
                if got.urgent:  # alone and now, not with the next batch
                    urgent = pending.pop()
                    self._flush([urgent], rows, gone_hashes, dirty, summary, now=True)
                    done[0] += 1
                elif sum(len(p.doc.inputs) for p in pending) >= self.options.batch_inputs:
                    flush()
                if time.monotonic() - last_save > self.options.save_every:
                    self.save_vectors()
                    last_save = time.monotonic()
        finally:
            ahead.close()
        self._report(Progress(done[0], done[0], ""))
        self._refresh(dirty, summary)
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

    def _report(self, p: Progress) -> None:
        self.state = p
        if self.progress:
            self.progress(p)

    def _take_urgent(self, queues: tuple[deque[VaultFile], ...], ahead: ReadAhead,
                     resolver: Resolver, kinds: dict[str, str],
                     known: Callable[[VaultFile], str | None]) -> None:
        """Paths someone is waiting for (a paste, a reindex request) are read on the urgent
        lane at once; a file born after this run's scan joins here."""
        while True:
            try:
                path = self.urgent.get_nowait()
            except Empty:
                return
            if path in ahead.paths:
                continue  # being read already: it is written as soon as it is
            for queue in queues:
                waiting = next((f for f in queue if f.path == path), None)
                if waiting is not None:
                    queue.remove(waiting)
            try:
                st = (self.root / path).stat()
            except OSError:
                continue  # gone again: the next run removes it
            f = VaultFile(path, file_kind(path), st.st_size, st.st_mtime_ns)
            resolver.add(path)
            kinds[path] = f.kind
            ahead.urgent(f, known(f))

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

    def _prepare(self, got: Extracted, resolver: Resolver, kinds: dict[str, str],
                 dirty: set[str]) -> Prepared:
        """The document of a file read by a worker, with the links of the notes written so
        far (which is why this runs here, in order, and not on the worker)."""
        f = got.file
        assert got.hash is not None
        if f.kind == "note":
            assert got.note is not None
            links = [x.to_json() for x in link_note(got.note, resolver, kinds,
                                                     self.options.context_chars)
                     if x.kind != "external"]
            return Prepared(got, note_document(got.note), links,
                            "; ".join(got.note.problems) or None)
        dirty.discard(f.path)  # described by its notes as they are now
        lenders = self.catalog.links_to(f.path)
        if f.kind == "image":
            doc = image_document(f.path, got.hash, got.ocr_text, got.image, lenders, self.visual)
        else:
            doc = pdf_document(f.path, got.pages, lenders, self.visual, got.hash)
        return Prepared(got, doc, None, None)

    def _flush(self, batch: list[Prepared], rows: dict[str, FileRow], gone_hashes: set[str],
               dirty: set[str], summary: Summary, now: bool = False) -> None:
        """Embed a batch of files in one call, then write each in a transaction of its own.
        ``now``: the images its notes embed are described again at once, not at the end of
        the run (a pasted screenshot gets its paragraph while a cold index runs on)."""
        if not batch:
            return
        embedded = self.vectorizer.embed([p.doc for p in batch], summary,
                                         [p.read.file.path for p in batch])
        for p, vectors in zip(batch, embedded, strict=True):
            got, row = p.read, rows.get(p.read.file.path)
            assert got.hash is not None
            self._merge(got, summary)
            _, changed = self.writer.indexed(got.file, got.hash, row, p.doc, vectors,
                                             got.failure, p.warning, p.links, got.extracts)
            if now:
                self._refresh(changed, summary)
                dirty -= changed
            else:
                dirty |= changed
            summary.indexed += 1
            if row is None and got.hash in gone_hashes:
                summary.renamed += 1  # a new path with a removed file's bytes: all from cache
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
        """Images and PDFs whose notes changed: new context for keyword search, and a new text
        vector when the text model describes them by that context."""
        files = self.catalog.files()
        for path in sorted(targets):
            row = files.get(path)
            if (row is None or row.status not in ("indexed", "partial")
                    or row.kind not in ("image", "pdf")):
                continue
            links = self.catalog.links_to(path)
            items = self.catalog.conn.execute(
                "SELECT id, page, text, content_hash FROM items WHERE file_id = ? ORDER BY id",
                (row.id,)).fetchall()
            if row.kind == "image":
                doc = image_document(path, str(row.hash), items[0]["text"], None, links,
                                     visual=False)
            else:
                doc = pdf_document(path, [(r["page"], r["text"], None) for r in items], links,
                                   False, str(row.hash))
            keep_vectors = self.visual  # pixels do not change when the words around them do
            vectors = None if keep_vectors else self.vectorizer.embed([doc], summary, [path])[0]
            if vectors is not None and vectors.failure:
                continue  # the old description stays; the next change of its notes retries
            self.writer.in_sync = False
            with self.catalog.transaction():
                for i, item in enumerate(items):
                    self.catalog.set_fts(item["id"], *doc.fts[i])
                    if not keep_vectors:
                        self.catalog.set_content_hash(item["id"], doc.items[i]["content_hash"])
                self.catalog.bump_version()
            if vectors is not None:
                self.vectors.upsert([int(r["id"]) for r in items], vectors.vectors)
            self.writer.in_sync = True

