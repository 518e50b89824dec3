"""What a run has to do for a file, from the catalog's row: nothing (unchanged, settled), and
which links under unchanged notes now point elsewhere."""

from __future__ import annotations

import time

from vaultlens.index.catalog import Catalog, FileRow
from vaultlens.index.writer import Retries
from vaultlens.vault.links import Resolver
from vaultlens.vault.vault import VaultFile


def settled(row: FileRow, retries: Retries) -> bool:
    """Nothing to do for this file's bytes: done, or skipped for good, or indexed in part
    and not yet due for another try (or out of tries)."""
    if row.status == "partial":
        return row.tries >= retries.partial_tries or time.time() < row.retry_at
    return row.status in ("indexed", "skipped", "ignored")


def unchanged(f: VaultFile, row: FileRow | None, retries: Retries) -> bool:
    """The file as the catalog has it (same kind, size and mtime), with nothing due. An
    ignored file is never read, so it has no hash: its kind is what matters (a kind that
    becomes searchable is no longer "other", and its files are read)."""
    return (row is not None and (row.hash is not None or row.status == "ignored")
            and row.kind == f.kind and row.size == f.size and row.mtime_ns == f.mtime_ns
            and settled(row, retries))


def retarget(catalog: Catalog, resolver: Resolver) -> set[str]:
    """Files came or went: links in unchanged notes may now point elsewhere. Returns the
    targets (old and new) whose descriptions changed."""
    changed: set[str] = set()
    with catalog.transaction():
        for row in catalog.all_links():
            res = resolver.resolve(row["link"], row["note"])
            if res.path != row["target"]:
                catalog.retarget(row["id"], res.path, res.reason)
                changed |= {t for t in (res.path, row["target"]) if t}
    return changed
