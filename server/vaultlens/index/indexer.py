"""Reconcile the vault with the catalog and index what changed.

Added, changed (size or mtime, then hash), removed and renamed files are found by comparing a
scan with the catalog. Each file is extracted and embedded outside any transaction, then written
in one transaction, so a kill at any moment loses at most the file in hand, and the next run
finishes the work with no duplicate. OCR, PDF text and vectors are cached by content hash: a
renamed or unchanged file costs a hash, never a model call.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty, SimpleQueue

import numpy as np

from vaultlens.embedders.base import Embedder, Vectors
from vaultlens.extract.documents import Document, image_document, pdf_document
from vaultlens.extract.images import ImageError
from vaultlens.extract.ocr import OCR
from vaultlens.extract.pdfs import PdfError
from vaultlens.index.catalog import Catalog, FileRow
from vaultlens.index.datadir import DataDir
from vaultlens.index.extractor import Extractor, SkipFile
from vaultlens.index.report import Progress, Summary
from vaultlens.index.vectors import VectorIndex
from vaultlens.vault.links import Resolver
from vaultlens.vault.vault import VaultFile, file_kind, scan

log = logging.getLogger(__name__)
ORDER = {"note": 0, "image": 1, "pdf": 2, "other": 3}


@dataclass(frozen=True)
class IndexOptions:
    config_dir: str = ".obsidian"
    exclude: tuple[str, ...] = ()
    context_chars: int = 1500
    max_pdf_pages: int = 200
    pdf_timeout: float = 20.0
    max_tries: int = 3  # a truncated image is retried this many runs before it is skipped
    # a file indexed in part (OCR or embedding failed) is tried again this many times, the
    # first after retry_base seconds, each wait twice the last (at most six hours)
    partial_tries: int = 5
    retry_base: float = 60.0
    save_every: float = 120.0  # seconds between vector index saves in a long run


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Indexer:
    def __init__(self, root: Path, data: DataDir, catalog: Catalog, vectors: VectorIndex,
                 embedder: Embedder, ocr: OCR | None, options: IndexOptions,
                 progress: Callable[[Progress], None] | None = None) -> None:
        self.root = root
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.ocr = ocr
        self.options = options
        self.progress = progress
        self.extract = Extractor(data, catalog, ocr, embedder.supports_images,
                                 options.context_chars, options.max_pdf_pages,
                                 options.pdf_timeout)
        self.urgent: SimpleQueue[str] = SimpleQueue()  # vault paths to index before the rest
        self.stop = threading.Event()  # set: the run ends after the file in hand
        self.state = Progress(0, 0, "")
        self.visual = embedder.supports_images
        self._in_sync = True  # vectors match the catalog's items_version

    def close(self) -> None:
        if self.ocr is not None:
            self.ocr.close()

    def save_vectors(self) -> None:
        if self._in_sync:
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
        dirty: set[str] = set()
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
        work.sort(key=lambda f: (ORDER[f.kind], f.path))
        queue = deque(work)
        done: set[str] = set()
        last_save = time.monotonic()
        while True:
            # urgent paths first, and even when nothing else changed: a reindex request for
            # an unchanged file must be answered (and leave the queue), not wait forever
            self._take_urgent(queue, resolver, kinds)
            if not queue:
                break
            if self.stop.is_set():
                summary.stopped = True
                break
            f = queue.popleft()
            self._report(Progress(len(done), len(done) + len(queue) + 1, f.path))
            outcome, h = self._index_file(f, rows.get(f.path), resolver, kinds, dirty, summary)
            if outcome == "indexed" and f.path not in rows and h in gone_hashes:
                summary.renamed += 1  # a new path with a removed file's bytes: all from cache
            done.add(f.path)
            if time.monotonic() - last_save > self.options.save_every:
                self.save_vectors()
                last_save = time.monotonic()
        self._report(Progress(len(done), len(done) + len(queue), ""))
        self._refresh(dirty - done, summary)
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

    def _take_urgent(self, queue: deque[VaultFile], resolver: Resolver,
                     kinds: dict[str, str]) -> None:
        """Paths someone is waiting for (a paste, a reindex request) jump the queue; a file
        born after this run's scan joins it here."""
        while True:
            try:
                path = self.urgent.get_nowait()
            except Empty:
                return
            waiting = next((f for f in queue if f.path == path), None)
            if waiting is not None:
                queue.remove(waiting)
                queue.appendleft(waiting)
                continue
            try:
                st = (self.root / path).stat()
            except OSError:
                continue  # gone again: the next run removes it
            f = VaultFile(path, file_kind(path), st.st_size, st.st_mtime_ns)
            resolver.add(path)
            kinds[path] = f.kind
            queue.appendleft(f)

    def _unchanged(self, f: VaultFile, row: FileRow | None) -> bool:
        return (row is not None and row.hash is not None and row.kind == f.kind
                and row.size == f.size and row.mtime_ns == f.mtime_ns and self._settled(row))

    def _settled(self, row: FileRow) -> bool:
        """Nothing to do for this file's bytes: done, or skipped for good, or indexed in part
        and not yet due for another try (or out of tries)."""
        if row.status == "partial":
            return row.tries >= self.options.partial_tries or time.time() < row.retry_at
        return row.status in ("indexed", "skipped")

    # one file -----------------------------------------------------------------------------
    def _index_file(self, f: VaultFile, row: FileRow | None, resolver: Resolver,
                    kinds: dict[str, str], dirty: set[str], summary: Summary
                    ) -> tuple[str, str | None]:
        """Index one file; returns what happened and the file's hash."""
        path = self.root / f.path
        try:
            h = file_hash(path)
        except OSError as exc:
            return self._skip(f, None, f"cannot read: {exc.strerror or exc}"), None
        if row is not None and row.hash == h and self._settled(row):
            with self.catalog.transaction():
                self.catalog.touch_file(row.id, f.size, f.mtime_ns)
            summary.unchanged += 1
            return "unchanged", h
        if f.kind == "other":
            suffix = Path(f.path).suffix or "no extension"
            return self._skip(f, h, f"not a note, image or PDF ({suffix})"), h
        failure: str | None = None  # what failed and is worth another try
        warning: str | None = None  # what will not change by trying again
        links = None
        try:
            if f.kind == "note":
                doc, links, warning = self.extract.note(f, path, resolver, kinds)
            elif f.kind == "image":
                doc, failure = self.extract.image(f, h, path, summary)
            else:
                doc, failure = self.extract.pdf(f, h, path, summary)
        except ImageError as exc:
            if exc.retry:
                return self._retry(f, row, h, exc.reason), h
            return self._skip(f, h, exc.reason), h
        except (PdfError, SkipFile) as exc:
            return self._skip(f, h, str(exc)), h
        keep = list(range(len(doc.items)))
        try:
            vectors = self._embed(doc, summary)
        except Exception as exc:  # a model that chokes (or a GPU out of memory) must not stop
            # the run, nor cost the file: its text is indexed now, its vectors on a later try
            log.exception("%s: embedding failed", f.path)
            failure = "; ".join(x for x in (
                failure, f"embedding failed: {type(exc).__name__}: {exc}") if x)
            vectors, keep = self._cached_only(doc)
        status, reason, tries, retry_at = "indexed", warning, 0, 0.0
        if failure is not None:
            status, tries = "partial", (row.tries if row and row.status == "partial" else 0) + 1
            reason, retry_at = self._backoff(failure, tries)
        self._in_sync = False
        with self.catalog.transaction():
            file_id = self.catalog.upsert_file(f.path, f.kind, f.size, f.mtime_ns, h, status,
                                               reason, tries, retry_at)
            old, new = self.catalog.replace_items(file_id, doc.items)
            for item_id, (text, names, context) in zip(new, doc.fts, strict=True):
                self.catalog.set_fts(item_id, text, names, context)
            if doc.tags is not None:
                self.catalog.set_tags(file_id, doc.tags)
            if doc.properties is not None:
                self.catalog.set_properties(file_id, doc.properties)
            if links is not None:
                dirty |= self.catalog.link_targets_from(file_id)
                self.catalog.replace_links(file_id, links)
                dirty |= {x["target"] for x in links if x["target"]}
            self.catalog.bump_version()
        self.vectors.remove(old)
        self.vectors.upsert([new[i] for i in keep], vectors)
        self._in_sync = True
        summary.indexed += 1
        return status, h

    def _backoff(self, failure: str, tries: int) -> tuple[str, float]:
        """The reason to show for a partial file, and when it may be tried again."""
        most = self.options.partial_tries
        if tries >= most:
            return f"{failure} (gave up after {tries} tries: edit the file to try again)", 0.0
        wait = min(self.options.retry_base * 2 ** (tries - 1), 6 * 3600.0)
        return (f"{failure} (indexed without it; try {tries} of {most}, the next in "
                f"{wait / 60:.0f} min)"), time.time() + wait

    def _cached_only(self, doc: Document) -> tuple[Vectors, list[int]]:
        """The vectors the cache already holds for a document's items, and which items."""
        hashes = [it["content_hash"] for it in doc.items]
        cached = self.catalog.cached_vectors(hashes, self.embedder.signature)
        keep = [i for i, h in enumerate(hashes) if h in cached]
        if not keep:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32), []
        return np.stack([cached[hashes[i]] for i in keep]), keep

    def _embed(self, doc: Document, summary: Summary) -> Vectors:
        hashes = [it["content_hash"] for it in doc.items]
        cached = self.catalog.cached_vectors(hashes, self.embedder.signature)
        missing = {h: inp for h, inp in zip(hashes, doc.inputs, strict=True) if h not in cached}
        if missing:
            start = time.perf_counter()
            try:
                fresh = self.embedder.embed(list(missing.values()), "document")
            finally:
                summary.timed("embed", start)
            new = dict(zip(missing, fresh, strict=True))
            with self.catalog.transaction():
                self.catalog.store_vectors(self.embedder.signature, new)
            cached.update(new)
        summary.embedded += len(missing)
        summary.reused += len(hashes) - len(missing)
        if not hashes:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.stack([cached[h] for h in hashes])

    def _skip(self, f: VaultFile, h: str | None, reason: str) -> str:
        self._in_sync = False
        with self.catalog.transaction():
            file_id = self.catalog.upsert_file(f.path, f.kind, f.size, f.mtime_ns, h, "skipped",
                                               reason)
            old, _ = self.catalog.replace_items(file_id, [])
            self.catalog.bump_version()
        self.vectors.remove(old)
        self._in_sync = True
        return "skipped"

    def _retry(self, f: VaultFile, row: FileRow | None, h: str, reason: str) -> str:
        tries = (row.tries if row else 0) + 1
        if tries >= self.options.max_tries:
            return self._skip(f, h, f"{reason}; gave up after {tries} tries")
        with self.catalog.transaction():
            # no hash stored: the next run reads it again whatever its stat says
            self.catalog.upsert_file(f.path, f.kind, f.size, f.mtime_ns, None, "retry", reason,
                                     tries)
        return "retry"

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
        """Images and PDFs whose notes changed: new context for keyword search, and a new text
        vector when the text model describes them by that context."""
        files = self.catalog.files()
        for path in sorted(targets):
            row = files.get(path)
            if row is None or row.status != "indexed" or row.kind not in ("image", "pdf"):
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
            vectors = None if keep_vectors else self._embed(doc, summary)
            self._in_sync = False
            with self.catalog.transaction():
                for i, item in enumerate(items):
                    self.catalog.set_fts(item["id"], *doc.fts[i])
                    if not keep_vectors:
                        self.catalog.set_content_hash(item["id"], doc.items[i]["content_hash"])
                self.catalog.bump_version()
            if vectors is not None:
                self.vectors.upsert([int(r["id"]) for r in items], vectors)
            self._in_sync = True

