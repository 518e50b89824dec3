"""Everything one vault's index is made of, opened together: data dir, catalog, model, vectors.

The CLI and the daemon both start here, so both open an index the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from vaultlens.config import Config
from vaultlens.embedders.base import Embedder
from vaultlens.embedders.registry import load
from vaultlens.errors import VaultlensError
from vaultlens.extract.ocr import OCRPool
from vaultlens.index.catalog import Catalog, CatalogError
from vaultlens.index.datadir import DataDir, data_dir_for
from vaultlens.index.indexer import Indexer, IndexOptions
from vaultlens.index.lookups import ScopeTable
from vaultlens.index.postings import Postings
from vaultlens.index.reader import Reader
from vaultlens.index.repair import set_aside
from vaultlens.index.report import NotIndexed, Summary
from vaultlens.index.vectors import VectorIndex
from vaultlens.search.remote_reranker import RemoteReranker
from vaultlens.search.reranker import Qwen3VLReranker, Rerank, Reranker, hit_document
from vaultlens.search.searcher import Searcher
from vaultlens.vault.policy import Policy


class WorkspaceError(VaultlensError, RuntimeError):
    pass


@dataclass(frozen=True)
class IndexStatus:
    """What is indexed, with which model, and what not (and why): what `vaultlens status`,
    /api/status and MCP's status tool each say, in their own words."""

    vault: str
    data_dir: str
    model: str
    model_url: str | None  # a remote model's server (no credentials)
    visual: bool
    notice: str | None
    vectors: int
    counts: dict[str, int]
    not_indexed: list[NotIndexed]  # real problems, the most serious first
    ignored: dict[str, int] = field(default_factory=dict)  # a kind nobody searches: css: 3


@dataclass
class Workspace:
    config: Config
    data: DataDir
    catalog: Catalog
    embedder: Embedder
    notice: str | None  # what the user must be told about the model (e.g. visual search off)
    vectors: VectorIndex
    writer: bool
    reranker: Reranker | None = None  # loaded for the first searcher that reranks
    # the keyword postings that searches have read, shared by every searcher (postings.py)
    postings: Postings = field(default_factory=Postings)
    # which items a path or kind filter admits, shared by every searcher (index/lookups.py)
    scope_table: ScopeTable = field(default_factory=ScopeTable)
    # which vault paths are ours: one object for the scan, the urgent lane, the watcher and
    # reindex, so all of them see app.json as it is now
    policy: Policy = field(init=False)

    def __post_init__(self) -> None:
        self.policy = Policy(self.config.vault, self.config.config_dir, self.config.exclude)

    def indexer(self, progress: object = None, urgent_embedder: Embedder | None = None,
                embedder: Embedder | None = None) -> Indexer:
        """``embedder``: the model to index with, if not ``self.embedder`` itself (the
        daemon's runs in a worker process: registry.indexing_model_for)."""
        if not self.writer:
            raise WorkspaceError("opened read-only")
        cfg = self.config
        workers = cfg.threads or os.cpu_count() or 1  # one file read per core at once
        options = IndexOptions(
            context_chars=cfg.context_chars,
            max_pdf_pages=cfg.max_pdf_pages, pdf_timeout=cfg.pdf_timeout, workers=workers,
        )
        ocr = OCRPool(workers) if cfg.ocr else None
        callback = progress if callable(progress) else None
        return Indexer(cfg.vault, self.data, self.catalog, self.vectors,
                       embedder or self.embedder, ocr, options, callback, urgent_embedder,
                       policy=self.policy)

    def update(self, progress: object = None) -> Summary:
        """Bring the index up to date (a warm run embeds nothing); what is done stays saved,
        even when interrupted."""
        indexer = self.indexer(progress)
        try:
            return indexer.run()
        finally:
            indexer.save_vectors()
            indexer.close()

    def searcher(self, catalog: Reader | None = None, embedder: Embedder | None = None
                 ) -> Searcher:
        """A searcher over this index; the daemon passes its own read connection and query
        model."""
        catalog = catalog or self.catalog
        catalog.scopes.shared = self.scope_table
        return Searcher(catalog, self.vectors, embedder or self.embedder,
                        rerank=self.rerank(catalog), postings=self.postings)

    def rerank(self, catalog: Reader) -> Rerank | None:
        cfg = self.config
        if cfg.rerank == "off":
            return None
        if self.reranker is None and cfg.rerank.startswith("remote:"):
            self.reranker = RemoteReranker(cfg.rerank.removeprefix("remote:"),
                                           max_image_tokens=cfg.max_image_tokens)
        if self.reranker is None:  # one model, however many searchers (threads) use it
            self.reranker = Qwen3VLReranker(cfg.rerank, max_image_tokens=cfg.max_image_tokens,
                                            threads=cfg.threads)
        return Rerank(self.reranker, hit_document(catalog, cfg.vault), cfg.rerank_top)

    def status(self, catalog: Reader | None = None) -> IndexStatus:
        """``catalog``: a connection of the caller's own (the daemon's status thread)."""
        catalog = catalog or self.catalog
        failures = catalog.failures()
        return IndexStatus(str(self.config.vault), str(self.data.folder), self.embedder.signature,
                           self.embedder.location, self.embedder.supports_images, self.notice,
                           len(self.vectors), catalog.counts(), failures, catalog.ignored())

    def close(self) -> None:
        self.catalog.close()
        if self.writer:
            self.data.unlock()


def open_workspace(cfg: Config, writer: bool, embedder: Embedder | None = None) -> Workspace:
    """Open (and for a writer, lock) the vault's index. A reader needs an index built with the
    same model; a writer re-embeds when the model changed, and sets a damaged catalog aside
    and starts again. ``embedder``: a model already loaded (a daemon reopening its index)."""
    data = DataDir(data_dir_for(cfg.vault, cfg.data_dir))
    if writer:
        data.lock()
    try:
        damage = None
        try:
            catalog = Catalog.open(data.catalog)
        except CatalogError as exc:
            if not (writer and exc.damaged):
                raise
            aside = set_aside(data.catalog)
            damage = f"{exc}; set aside as {aside.name}, and the vault is indexed again"
            catalog = Catalog.open(data.catalog)
        notice = None
        if embedder is None:
            embedder, notice = load(cfg.model, dims=cfg.dims,
                                    max_image_tokens=cfg.max_image_tokens, threads=cfg.threads)
        notice = "; ".join(x for x in (damage, notice) if x) or None
        indexed_with = catalog.get_meta("model_signature")
        if not writer and indexed_with is None:
            raise WorkspaceError(
                f"{cfg.vault}: not indexed yet; run `vaultlens serve --vault {cfg.vault}` (it "
                "indexes, then keeps the index fresh) or `vaultlens index` first")
        if not writer and indexed_with != embedder.signature:
            raise WorkspaceError(
                f"the index was built with {indexed_with}, not {embedder.signature}: "
                "run `vaultlens index` with this model, or pass the model it was built with"
            )
        vectors = VectorIndex(data.vectors, embedder.dimension, embedder.signature,
                              cfg.vector_dtype)
        version = int(catalog.get_meta("items_version") or 0)
        if not vectors.load(version, view=not writer):  # a reader maps the file: it never adds
            vectors.rebuild(catalog.live_vectors(embedder.signature))
            if writer:
                vectors.save(version)
    except BaseException:
        if writer:
            data.unlock()
        raise
    return Workspace(cfg, data, catalog, embedder, notice, vectors, writer)
