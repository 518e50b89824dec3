"""The vector index: atomic save, stale or broken files rebuilt, tombstones compacted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vaultlens.index.vectors import VectorIndex


def unit(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", ["f16", "i8", "f32"])
def test_search_returns_the_nearest(tmp_path: Path, dtype: str) -> None:
    idx = VectorIndex(tmp_path / "v.usearch", 8, "sig", dtype)
    vecs = unit(50)
    idx.upsert(list(range(100, 150)), vecs)
    keys, sims = idx.search(vecs[7], 3)
    assert int(keys[0]) == 107 and sims[0] > 0.95


def test_save_then_load_only_for_the_same_version_and_model(tmp_path: Path) -> None:
    path = tmp_path / "v.usearch"
    idx = VectorIndex(path, 8, "sig")
    idx.upsert([1, 2, 3], unit(3))
    idx.save(version=7)
    assert not list(tmp_path.glob("*.tmp"))
    assert VectorIndex(path, 8, "sig").load(7)
    assert not VectorIndex(path, 8, "sig").load(8)  # the catalog moved on
    assert not VectorIndex(path, 8, "other-model").load(7)
    assert not VectorIndex(path, 8, "sig", "i8").load(7)


@pytest.mark.parametrize("dtype", ["f16", "i8"])
def test_a_reader_maps_the_saved_index_and_cannot_add_to_it(tmp_path: Path, dtype: str
                                                            ) -> None:
    path = tmp_path / "v.usearch"
    writer = VectorIndex(path, 8, "sig", dtype)
    vecs = unit(40)
    writer.upsert(list(range(1, 41)), vecs)
    writer.save(3)
    loaded, viewed = VectorIndex(path, 8, "sig", dtype), VectorIndex(path, 8, "sig", dtype)
    assert loaded.load(3) and viewed.load(3, view=True) and viewed.viewed and not loaded.viewed
    for q in vecs[:5]:
        a, b = loaded.search(q, 5), viewed.search(q, 5)
        assert list(a[0]) == list(b[0])
    np.testing.assert_allclose(viewed.similarities(vecs[0], [1, 2, 99]),
                               loaded.similarities(vecs[0], [1, 2, 99]))
    with pytest.raises(RuntimeError, match="read-only"):
        viewed.upsert([5], vecs[:1])
    with pytest.raises(RuntimeError, match="read-only"):
        viewed.remove([5])
    writer.upsert([41], unit(1, seed=9))
    writer.save(4)  # the writer replaces the file: the reader keeps the one it mapped
    assert len(viewed) == 40 and int(viewed.search(vecs[2], 1)[0][0]) == 3


def test_unreadable_file_is_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "v.usearch"
    idx = VectorIndex(path, 8, "sig")
    idx.upsert([1], unit(1))
    idx.save(1)
    path.write_bytes(b"\x00garbage" * 10)
    assert not VectorIndex(path, 8, "sig").load(1)


def test_rebuild_and_upsert_replace(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path / "v.usearch", 8, "sig")
    vecs = unit(10)
    idx.rebuild((i, vecs[i]) for i in range(10))
    assert len(idx) == 10
    idx.upsert([3], vecs[9:10])  # same key, new vector: replaced, not duplicated
    assert len(idx) == 10
    keys, _ = idx.search(vecs[9], 2)
    assert set(int(k) for k in keys) == {3, 9}


def test_removals_pile_up_then_compaction_is_due(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path / "v.usearch", 8, "sig")
    idx.upsert(list(range(4000)), unit(4000))
    idx.remove(range(500))
    assert len(idx) == 3500 and not idx.needs_compaction()
    idx.remove(range(500, 1500))
    assert idx.needs_compaction()


def test_bad_dtype() -> None:
    with pytest.raises(ValueError, match="f16, i8, f32"):
        VectorIndex(Path("x"), 8, "sig", "f64")


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_similarities_score_any_ids(tmp_path: Path, dtype: str) -> None:
    index = VectorIndex(tmp_path / "v.usearch", 8, "sig", dtype)
    vectors = unit(5, seed=3)
    index.upsert([10, 11, 12, 13, 14], vectors)
    query = unit(1, seed=4)[0]
    sims = index.similarities(query, [12, 99, 10])  # 99 has no vector: 0
    expected = [float(vectors[2] @ query), 0.0, float(vectors[0] @ query)]
    np.testing.assert_allclose(sims, expected, atol=2e-3 if dtype == "f16" else 1e-5)
    assert index.similarities(query, []).shape == (0,)
    assert not index.similarities(query, [98, 99]).any()
