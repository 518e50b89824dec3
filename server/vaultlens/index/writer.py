"""Writing one file's outcome: indexed (in full or in part), skipped, or to be tried again.

Each is one catalog transaction, then the vector index, so a kill at any moment leaves the file
either as it was or as it is now. ``in_sync`` is False between the two: the vector index is not
saved while it disagrees with the catalog.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vaultlens.extract.documents import Document, image_document, pdf_document
from vaultlens.index.catalog import Catalog, FileRow
from vaultlens.index.report import Summary
from vaultlens.index.vectorizer import Embedded, Vectorizer
from vaultlens.index.vectors import VectorIndex
from vaultlens.vault.vault import FileKind, VaultFile


@dataclass
class Retries:
    max_tries: int = 3  # a truncated image is retried this many runs before it is skipped
    # a file indexed in part (OCR or embedding failed) is tried again this many times, the
    # first after retry_base seconds, each wait twice the last (at most six hours)
    partial_tries: int = 5
    retry_base: float = 60.0


class Writer:
    def __init__(self, catalog: Catalog, vectors: VectorIndex, retries: Retries) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.retries = retries
        self.in_sync = True  # the vectors match the catalog's items_version

    def indexed(self, f: VaultFile, h: str, row: FileRow | None, doc: Document,
                embedded: Embedded, failure: str | None, warning: str | None,
                links: Sequence[dict[str, Any]] | None,
                extracts: Sequence[tuple[str, str, Any]]) -> tuple[str, set[str]]:
        """Write a file read in full or in part; returns its status and the paths whose
        links changed (images and PDFs to describe again by their notes)."""
        failure = "; ".join(x for x in (failure, embedded.failure) if x) or None
        status, reason, tries, retry_at = "indexed", warning, 0, 0.0
        if failure is not None:
            status, tries = "partial", (row.tries if row and row.status == "partial" else 0) + 1
            reason, retry_at = self.backoff(failure, tries)
        dirty: set[str] = set()
        self.in_sync = False
        with self.catalog.transaction():
            for key, extractor, data in extracts:  # OCR and PDF text, cached by file hash
                self.catalog.store_extract(key, extractor, data)
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
        self.vectors.upsert([new[i] for i in embedded.keep], embedded.vectors)
        self.in_sync = True
        return status, dirty

    def unchanged(self, row: FileRow, f: VaultFile) -> None:
        """Same bytes under a new stat (touched, or copied back): remember the stat."""
        with self.catalog.transaction():
            self.catalog.touch_file(row.id, f.size, f.mtime_ns)

    def skipped(self, f: VaultFile, h: str | None, reason: str) -> str:
        if f.kind == FileKind.OTHER:  # (an urgent path: the run's own are never read)
            self.ignored([f])
            return "ignored"
        self.in_sync = False
        with self.catalog.transaction():
            file_id = self.catalog.upsert_file(f.path, f.kind, f.size, f.mtime_ns, h, "skipped",
                                               reason)
            old, _ = self.catalog.replace_items(file_id, [])
            self.catalog.bump_version()
        self.vectors.remove(old)
        self.in_sync = True
        return "skipped"

    def ignored(self, files: Sequence[VaultFile]) -> None:
        """Files of a kind nobody searches (FileKind.OTHER): remembered by their stat, never
        read, counted in the status and never listed as failures. One transaction."""
        if not files:
            return
        self.in_sync = False
        gone: list[int] = []
        with self.catalog.transaction():
            for f in files:
                file_id = self.catalog.upsert_file(f.path, f.kind, f.size, f.mtime_ns, None,
                                                   "ignored", None)
                gone += self.catalog.replace_items(file_id, [])[0]
            self.catalog.bump_version()
        self.vectors.remove(gone)
        self.in_sync = True

    def retry(self, f: VaultFile, row: FileRow | None, h: str | None, reason: str) -> str:
        tries = (row.tries if row else 0) + 1
        if tries >= self.retries.max_tries:
            return self.skipped(f, h, f"{reason}; gave up after {tries} tries")
        with self.catalog.transaction():
            # no hash stored: the next run reads it again whatever its stat says
            self.catalog.upsert_file(f.path, f.kind, f.size, f.mtime_ns, None, "retry", reason,
                                     tries)
        return "retry"

    def backoff(self, failure: str, tries: int) -> tuple[str, float]:
        """The reason to show for a partial file, and when it may be tried again."""
        most = self.retries.partial_tries
        if tries >= most:
            return f"{failure} (gave up after {tries} tries: edit the file to try again)", 0.0
        wait = min(self.retries.retry_base * 2 ** (tries - 1), 6 * 3600.0)
        return (f"{failure} (indexed without it; try {tries} of {most}, the next in "
                f"{wait / 60:.0f} min)"), time.time() + wait

    def redescribe(self, targets: set[str], vectorizer: Vectorizer, visual: bool,
                   summary: Summary) -> None:
        """Images and PDFs whose notes changed: new context for keyword search, and a new text
        vector when the text model describes them by that context."""
        files = self.catalog.files()
        for path in sorted(targets):
            row = files.get(path)
            if (row is None or row.status not in ("indexed", "partial")
                    or row.kind not in (FileKind.IMAGE, FileKind.PDF)):
                continue
            links = self.catalog.links_to(path)
            items = self.catalog._conn.execute(
                "SELECT id, page, text, content_hash FROM items WHERE file_id = ? ORDER BY id",
                (row.id,)).fetchall()
            if row.kind == FileKind.IMAGE:
                doc = image_document(path, str(row.hash), items[0]["text"], None, links,
                                     visual=False)
            else:
                doc = pdf_document(path, [(r["page"], r["text"], None) for r in items], links,
                                   False, str(row.hash))
            keep_vectors = visual  # pixels do not change when the words around them do
            vectors = (None if keep_vectors
                       else vectorizer.embed([doc], summary, [path], again=True)[0])
            if vectors is not None and vectors.failure:
                continue  # the old description stays; the next change of its notes retries
            self.in_sync = False
            with self.catalog.transaction():
                for i, item in enumerate(items):
                    self.catalog.set_fts(item["id"], *doc.fts[i])
                    if not keep_vectors:
                        self.catalog.set_content_hash(item["id"], doc.items[i]["content_hash"])
                self.catalog.bump_version()
            if vectors is not None:
                self.vectors.upsert([int(r["id"]) for r in items], vectors.vectors)
            self.in_sync = True

