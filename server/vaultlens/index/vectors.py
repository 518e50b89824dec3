"""The vector index (usearch): a cache of the catalog's embeddings, keyed by item id.

Saved atomically (temp file, fsync, rename), mode 0600, next to a small JSON sidecar that
records the catalog version and model signature it matches. Missing, stale or unreadable:
rebuilt from the catalog's cached embeddings, never by re-embedding. Removals leave
tombstones in usearch; when they pile up, the index is rebuilt compactly. One lock guards every
call: usearch's bindings are not safe for concurrent add/search (unum-cloud/usearch#441), and a
search takes milliseconds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from usearch.index import Index

from vaultlens.embedders.base import Vectors
from vaultlens.index.private import PRIVATE_FILE, atomic_write, create_private

log = logging.getLogger(__name__)
DTYPES = ("f16", "i8", "f32")
REBUILD_TOMBSTONE_SHARE = 0.25


class Rows:
    """Stored vectors of some ids (``present``: the places of those that have one), for their
    cosines to a query."""

    def __init__(self, count: int, present: NDArray[np.int64], matrix: NDArray[np.float32]
                 ) -> None:
        self.count = count
        self.present = present
        self.matrix = matrix
        self.norms = np.maximum(np.linalg.norm(matrix, axis=1), 1e-12)

    def cosines(self, query: Vectors) -> NDArray[np.float32]:
        """Each id's cosine to ``query`` (0 for an id without a vector)."""
        out = np.zeros(self.count, dtype=np.float32)
        if len(self.present):
            out[self.present] = (self.matrix @ np.asarray(query, dtype=np.float32)) / self.norms
        return out


class VectorIndex:
    def __init__(self, path: Path, dimension: int, signature: str, dtype: str = "f16") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"vector dtype {dtype!r}: use one of {', '.join(DTYPES)}")
        self.path = path
        self.sidecar = path.with_suffix(".json")
        self.dimension = dimension
        self.signature = signature
        self.dtype = dtype
        self.index = self._new()
        self.removed = 0
        self.viewed = False  # a memory-mapped saved index: read-only
        self._lock = threading.RLock()

    def _new(self) -> Index:
        return Index(ndim=self.dimension, metric="cos", dtype=self.dtype)

    def __len__(self) -> int:
        return len(self.index)

    def load(self, version: int, view: bool = False) -> bool:
        """Load the saved index if it matches this catalog version and model; else False.
        ``view``: map the file instead of reading it (a reader that never adds: at a million
        items the first answer comes 0.6 s sooner, and the pages are the kernel's to drop)."""
        try:
            meta = json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            return False
        expected = {"version": version, "signature": self.signature,
                    "dimension": self.dimension, "dtype": self.dtype}
        if {k: meta.get(k) for k in expected} != expected:
            log.info("%s: saved for another catalog state or model; rebuilding", self.path)
            return False
        try:
            index = self._new()
            (index.view if view else index.load)(str(self.path))
        except Exception as exc:  # usearch raises plain RuntimeError/ValueError on bad files
            log.warning("%s: unreadable (%s); rebuilding from cached embeddings", self.path, exc)
            return False
        if len(index) != meta.get("count"):
            return False
        with self._lock:
            self.index, self.removed, self.viewed = index, 0, view
        return True

    def rebuild(self, vectors: Iterable[tuple[int, Vectors]]) -> None:
        """Build a fresh index aside, then swap it in: searches meanwhile use the old one."""
        fresh = VectorIndex(self.path, self.dimension, self.signature, self.dtype)
        fresh._fill(vectors)
        with self._lock:
            self.index, self.removed, self.viewed = fresh.index, 0, False

    def _fill(self, vectors: Iterable[tuple[int, Vectors]]) -> None:
        keys: list[int] = []
        rows: list[Vectors] = []
        for key, vec in vectors:
            keys.append(key)
            rows.append(vec)
            if len(keys) >= 4096:
                self._add(keys, rows)
                keys, rows = [], []
        if keys:
            self._add(keys, rows)

    def _add(self, keys: list[int], rows: list[Vectors]) -> None:
        self.index.add(np.asarray(keys, dtype=np.uint64), np.stack(rows).astype(np.float32))

    def upsert(self, keys: list[int], vectors: Vectors) -> None:
        if not keys:
            return
        if self.viewed:
            raise RuntimeError(f"{self.path}: opened read-only (memory-mapped)")
        with self._lock:
            self.remove(keys)
            self.index.add(np.asarray(keys, dtype=np.uint64),
                           np.asarray(vectors, dtype=np.float32))

    def remove(self, keys: Iterable[int]) -> None:
        if self.viewed:
            raise RuntimeError(f"{self.path}: opened read-only (memory-mapped)")
        with self._lock:
            present = [k for k in keys if self.index.contains(k)]
            if present:
                self.index.remove(np.asarray(present, dtype=np.uint64))
                self.removed += len(present)

    def needs_compaction(self) -> bool:
        return self.removed > max(1000, REBUILD_TOMBSTONE_SHARE * max(len(self.index), 1))

    def search(self, query: Vectors, k: int, exact: bool = False
               ) -> tuple[NDArray[np.uint64], NDArray[np.float32]]:
        """Item ids and cosine similarities, best first. ``exact``: the true nearest, by a
        scan of every vector (in one thread: a search's threads are the daemon's)."""
        with self._lock:
            if len(self.index) == 0 or k <= 0:
                return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float32)
            found = self.index.search(np.asarray(query, dtype=np.float32),
                                      min(k, len(self.index)), exact=exact,
                                      threads=1 if exact else 0)
        return (np.asarray(found.keys, dtype=np.uint64),
                1.0 - np.asarray(found.distances, dtype=np.float32))

    def similarities(self, query: Vectors, ids: list[int]) -> NDArray[np.float32]:
        """Cosine of the query to each id's stored vector (0 for an id without one): every
        candidate of a search is scored exactly, not just those in the nearest-k list."""
        return self.rows(ids).cosines(query)

    def rows(self, ids: list[int]) -> Rows:
        """The stored vectors of ``ids``, read once, for their cosines to a query to come."""
        if not ids:
            return Rows(0, np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32))
        with self._lock:
            # in the stored type: usearch converts each row to f32 one by one, 4x slower than
            # stacking them and converting once (cosine does not care about i8's scale)
            found: Any = self.index.get(np.asarray(ids, dtype=np.uint64))
        present = [n for n, v in enumerate(found) if v is not None]
        if not present:
            return Rows(len(ids), np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32))
        # one concatenation of the rows, not a stack of them: a third of the time
        kept = found if len(present) == len(ids) else [found[n] for n in present]
        matrix = np.concatenate(kept).reshape(len(present), -1).astype(np.float32)
        return Rows(len(ids), np.asarray(present, dtype=np.int64), matrix)

    def save(self, version: int) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        # made 0600 before usearch writes it: usearch rewrites the file in place, so the mode
        # holds (checked after, should a later usearch make a new file instead)
        tmp.unlink(missing_ok=True)
        os.close(create_private(tmp))
        with self._lock:
            self.index.save(str(tmp))
            count = len(self.index)
        with open(tmp, "rb+") as fh:
            os.fchmod(fh.fileno(), PRIVATE_FILE)
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        meta = {"version": version, "signature": self.signature, "dimension": self.dimension,
                "dtype": self.dtype, "count": count}
        atomic_write(self.sidecar, json.dumps(meta).encode())
