"""Indexing with read-ahead: files read on worker threads, embedded in batches that span files,
written one transaction each; urgent files overtake the cold index; both MiniLMs (torch for
indexing, numpy for queries) give transformers' vectors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from indexing import VAULT, MakeVault, Run, screenshot
from vaultlens.config import Config
from vaultlens.embedders.base import Input, Role, Vectors
from vaultlens.embedders.minilm import MiniLM, length_batches
from vaultlens.embedders.minilm_numpy import NumpyMiniLM
from vaultlens.extract.ocr import OCR
from vaultlens.index.indexer import Indexer
from vaultlens.vault.notes import NoteParser
from vaultlens.workspace import open_workspace

TEXTS = ["how do I sync my vault", "Obsidian 同步 设置 在哪里", "", "x",
         "storm over the old pier " * 80,  # past the 256-token cut
         "The slide with the purple chart comparing Notion and Obsidian"]


def test_length_batches_cover_every_index_once_within_the_limits() -> None:
    lengths = [5, 300, 12, 12, 7, 64, 1, 90, 33]
    batches = length_batches(lengths, rows=3, tokens=100)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100


@pytest.mark.slow
def test_minilm_batched_by_length_equals_one_at_a_time() -> None:
    model = MiniLM(batch_size=4, batch_tokens=64)
    together = model.embed_texts(TEXTS, "document")
    alone = np.concatenate([model.embed_texts([t], "document") for t in TEXTS])
    assert together.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.slow
def test_minilm_documents_in_bfloat16_keep_their_direction() -> None:
    """bfloat16 is a rounding of the same model: every document's cosine to its float32
    vector is above 0.9999, and queries are float32 either way."""
    texts = [t for t in TEXTS if t] * 3
    half, full = MiniLM(bf16=True), MiniLM(bf16=False)
    a, b = half.embed_texts(texts, "document"), full.embed_texts(texts, "document")
    assert not np.array_equal(a, b)  # bfloat16 really ran
    assert float((a * b).sum(1).min()) > 0.9999
    np.testing.assert_array_equal(half.embed_texts(texts, "query"),
                                  full.embed_texts(texts, "query"))
    assert half.signature == full.signature


def reference_vectors(texts: list[str]) -> tuple[Vectors, Any]:
    """MiniLM as transformers runs it (BertModel, mean pooling): what both of ours must give."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = MiniLM().path
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    enc = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True), tokenizer


@pytest.mark.slow
def test_both_minilms_give_transformers_vectors_and_token_counts() -> None:
    expected, tokenizer = reference_vectors(TEXTS)
    numpy_model, torch_model = NumpyMiniLM(), MiniLM(bf16=False)
    assert numpy_model.signature == torch_model.signature  # one index serves both
    for model in (numpy_model, torch_model):
        np.testing.assert_allclose(model.embed_texts(TEXTS, "query"), expected, atol=1e-5)
        np.testing.assert_allclose(model.embed_texts(TEXTS, "document"), expected, atol=1e-5)
    long = "word " * 700 + "同步 " * 40
    count = len(tokenizer(long, add_special_tokens=False, truncation=False)["input_ids"])
    assert numpy_model.count_tokens(long) == torch_model.count_tokens(long) == count > 256


def imports(module: str, model: str, role: str) -> tuple[bool, bool]:
    """Whether embedding one text with ``model`` in a fresh process imports torch, and
    transformers."""
    code = (f"import sys; from vaultlens.embedders.{module} import {model}; "
            f"v = {model}().embed_texts(['sync'], '{role}'); assert v.shape == (1, 384); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", out[1] == "True"


def test_the_indexers_minilm_needs_no_transformers() -> None:
    """transformers' import and model building took three seconds before the first batch,
    holding the GIL in the daemon while a paste waited."""
    assert imports("minilm", "MiniLM", "document") == (True, False)


@pytest.mark.slow
def test_numpy_minilm_is_safe_in_many_threads() -> None:
    model = NumpyMiniLM()
    expected = model.embed_texts(TEXTS, "query")
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: model.embed_texts([TEXTS[i % len(TEXTS)]], "query")[0],
                            range(48)))
    for i, row in enumerate(got):
        np.testing.assert_allclose(row, expected[i % len(TEXTS)], atol=1e-6)


def test_numpy_minilm_needs_no_torch() -> None:
    assert imports("minilm_numpy", "NumpyMiniLM", "query") == (False, False)


def test_embeddings_are_batched_across_files(make_vault: MakeVault, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    files: dict[str, str | bytes] = {
        f"Notes/Note {i}.md": f"# Note {i}\n\nParagraph about topic {i} and harbour {i}.\n"
        for i in range(40)}
    calls: list[int] = []
    real = MiniLM.embed

    def counting(self: MiniLM, inputs: Sequence[Input], role: Role) -> Vectors:
        if role == "document":
            calls.append(len(inputs))
        return real(self, inputs, role)

    monkeypatch.setattr(MiniLM, "embed", counting)
    summary = Run(make_vault(files), tmp_path / "data").index(ocr=False)
    assert summary.indexed == 40 and summary.embedded == sum(calls) == 40
    assert len(calls) < 40 / 2, calls  # many notes to a call, not one call per note


@pytest.mark.slow
def test_files_read_while_the_model_loads_are_written_batch_by_batch(
        make_vault: MakeVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the daemon the indexer's model loads beside the loop, and the notes read meanwhile
    wait for it: they are then embedded and written a batch at a time, not all in one go (a
    whole vault, with no progress and everything in flight until it is done)."""
    files: dict[str, str | bytes] = {
        f"Notes/Note {i}.md": f"# Note {i}\n\nParagraph about topic {i}.\n" for i in range(40)}
    vault = make_vault(files)
    real_load = MiniLM._load

    def slow_load(self: MiniLM) -> Any:
        time.sleep(1.5)  # every note is read by now
        return real_load(self)

    monkeypatch.setattr(MiniLM, "_load", slow_load)
    ws = open_workspace(Config(vault=vault, data_dir=tmp_path / "data", model="minilm",
                               ocr=False), True)
    indexer = ws.indexer(urgent_embedder=NumpyMiniLM())
    indexer.options = replace(indexer.options, batch_inputs=8)
    batches: list[int] = []
    real_flush = Indexer._flush

    def recording(self: Indexer, st: Any, batch: list[Any], *args: Any, **kw: Any) -> None:
        batches.append(len(batch))
        real_flush(self, st, batch, *args, **kw)

    monkeypatch.setattr(Indexer, "_flush", recording)
    try:
        summary = indexer.run()
    finally:
        indexer.close()
        ws.close()
    assert summary.indexed == 40 and sum(batches) == 40
    assert len(batches) >= 5 and max(batches) <= 8, batches


@pytest.mark.slow
def test_an_image_written_before_its_note_gets_the_notes_words(
        make_vault: MakeVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are written as their reads finish, so an image may be written before the note
    that embeds it: the end of the run describes it again by that note. The note is made
    slow to read, so the image is surely written first."""
    real = NoteParser.parse_bytes

    def slow(self: NoteParser, data: bytes, path: str) -> Any:
        time.sleep(2.0 if path == "Trips/Pier.md" else 0)
        return real(self, data, path)

    monkeypatch.setattr(NoteParser, "parse_bytes", slow)
    run = Run(make_vault(VAULT), tmp_path / "data")
    run.index(ocr=False)  # no OCR: the image is read at once
    with sqlite3.connect(tmp_path / "data" / "catalog.sqlite") as conn:
        order = [r[0] for r in conn.execute("SELECT path FROM files ORDER BY id")]
    assert order.index("Attachments/board.png") < order.index("Trips/Pier.md")
    with sqlite3.connect(tmp_path / "data" / "catalog.sqlite") as conn:
        context = conn.execute(
            "SELECT items_fts.context FROM items_fts JOIN items ON items.id = items_fts.rowid"
            " JOIN files ON files.id = items.file_id WHERE files.path = ?",
            ("Attachments/board.png",)).fetchone()[0]
    assert "harbour office" in context


@pytest.mark.slow
def test_an_urgent_file_overtakes_a_cold_index(make_vault: MakeVault, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every OCR worker of the cold index is stuck on a slow image; a paste is still read
    (on the urgent lane, by its own OCR worker), embedded and written."""
    slow = {f"Slow/slow {i}.png": screenshot(f"SLOW PICTURE {i}") for i in range(4)}
    vault = make_vault({**slow, "Home.md": "# Home\n\nStart.\n"})
    release = threading.Event()
    real = OCR.read

    def read(self: OCR, image: Image.Image) -> str:
        if image.getpixel((0, 0)) == (255, 255, 255) and image.size == (700, 140) \
                and not release.is_set() and self is not urgent_worker[0]:
            release.wait(60)  # the cold index's workers wait here
        return real(self, image)

    urgent_worker: list[OCR | None] = [None]
    monkeypatch.setattr(OCR, "read", read)
    ws = open_workspace(Run(vault, tmp_path / "data").config, writer=True)
    indexer = ws.indexer()
    assert indexer.ocr is not None
    urgent_worker[0] = indexer.ocr._all[-1]
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(indexer.run()))
    try:
        worker.start()
        time.sleep(1.0)  # the heavy lane is reading (and stuck on) the slow images
        (vault / "Paste.png").write_bytes(screenshot("URGENT GIRAFFE CHART"))
        indexer.request_urgent(["Paste.png"])
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != "indexed":
            with sqlite3.connect(tmp_path / "data" / "catalog.sqlite") as conn:
                row = conn.execute("SELECT status FROM files WHERE path = 'Paste.png'"
                                   ).fetchone()
            status = row[0] if row else None
            time.sleep(0.1)
        assert status == "indexed"  # written while the cold index is stuck
        with sqlite3.connect(tmp_path / "data" / "catalog.sqlite") as conn:
            stuck = conn.execute("SELECT count(*) FROM files WHERE path LIKE 'Slow/%'"
                                 ).fetchone()[0]
        assert stuck == 0
    finally:
        release.set()
        worker.join(120)
        indexer.save_vectors()
        indexer.close()
        ws.close()
    assert done and done[0].indexed == 6
    assert Run(vault, tmp_path / "data").search("giraffe chart")[0][1] == "Paste.png"


def test_an_urgent_model_must_give_the_same_vectors(make_vault: MakeVault, tmp_path: Path
                                                    ) -> None:
    ws = open_workspace(Run(make_vault(VAULT), tmp_path / "data").config, writer=True)
    try:
        other = MiniLM()
        other.signature = "minilm:something-else"
        with pytest.raises(ValueError, match="would not match"):
            ws.indexer(urgent_embedder=other)
        indexer = ws.indexer(urgent_embedder=NumpyMiniLM())
        assert indexer.urgent_vectorizer.embedder.signature == ws.embedder.signature
        indexer.close()
    finally:
        ws.close()
