"""The whole index pipeline on generated vaults, with real models (MiniLM, tiny Qwen3-VL)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from indexing import VAULT, MakeVault, Run, screenshot
from vaultlens.index.datadir import DataDirError
from vaultlens.index.vectors import VectorIndex
from vaultlens.workspace import WorkspaceError, open_workspace


@pytest.fixture
def run(make_vault: MakeVault, tmp_path: Path) -> Iterator[Run]:
    yield Run(make_vault(VAULT), tmp_path / "data")


@pytest.mark.slow
def test_pipeline_minilm(run: Run) -> None:
    first = run.index()
    assert (first.files, first.indexed, first.skipped, first.retry) == (3, 3, [], [])
    assert first.embedded == first.items > 0 and not first.visual
    # a word found only inside the screenshot finds the screenshot, with the note around it
    ws = run.reader()
    hits = ws.searcher().search("zebra metrics", 3)
    ws.close()
    assert (hits[0].kind, hits[0].path) == ("image", "Attachments/board.png")
    assert hits[0].links[0]["note"] == "Trips/Pier.md" and hits[0].links[0]["line"] == 5
    # a paraphrase of a paragraph finds its note at that paragraph
    assert run.search("keep sync away from one directory")[0] == ("note", "Sync.md", 3)
    again = run.index()
    assert (again.indexed, again.embedded, again.unchanged) == (0, 0, 3)
    thumbs = list((run.config.data_dir or Path()).glob("thumbs/*/*.webp"))
    assert len(thumbs) == 1
    with Image.open(thumbs[0]) as thumb:
        assert max(thumb.size) <= 320


@pytest.mark.slow
def test_changed_note_embeds_only_changed_sections(run: Run) -> None:
    run.index()
    note = run.config.vault / "Sync.md"
    note.write_text(note.read_text().replace("dots", "small circles"))
    s = run.index()
    assert (s.indexed, s.embedded) == (1, 1)
    assert s.reused >= 1


def test_rename_and_move_embed_nothing(run: Run) -> None:
    run.index()
    vault = run.config.vault
    (vault / "Archive").mkdir()
    shutil.move(vault / "Sync.md", vault / "Archive" / "Sync renamed.md")
    shutil.move(vault / "Attachments" / "board.png", vault / "Archive" / "board.png")
    s = run.index()
    assert (s.removed, s.renamed, s.embedded) == (2, 2, 0)
    assert run.search("keep sync away from one directory")[0][1] == "Archive/Sync renamed.md"


def test_deleted_files_leave_the_index(run: Run) -> None:
    run.index()
    (run.config.vault / "Sync.md").unlink()
    s = run.index()
    assert s.removed == 1
    assert all(path != "Sync.md" for _, path, _ in run.search("selective sync settings"))


@pytest.mark.slow
def test_new_note_around_an_old_image_updates_it(run: Run) -> None:
    run.index()
    (run.config.vault / "Offsite.md").write_text(
        "# Offsite\n\nThe llama diagram from the offsite planning day.\n\n![[board.png]]\n")
    run.index()
    assert ("image", "Attachments/board.png", None) in run.search("llama offsite planning")[:2]


@pytest.mark.slow
def test_truncated_image_is_retried_then_skipped(run: Run) -> None:
    data = screenshot("half")
    (run.config.vault / "half.png").write_bytes(data[: len(data) // 2])
    first = run.index()
    assert [r["path"] for r in first.retry] == ["half.png"]
    second = run.index()
    assert [r["path"] for r in second.retry] == ["half.png"]
    third = run.index()
    (skip,) = [x for x in third.skipped if x["path"] == "half.png"]
    assert "gave up after 3 tries" in skip["reason"]
    (run.config.vault / "half.png").write_bytes(data)  # finished writing: indexed at last
    fourth = run.index()
    assert fourth.indexed == 1 and not fourth.retry


@pytest.mark.slow
def test_vectors_are_rebuilt_from_cache_not_re_embedded(run: Run) -> None:
    first = run.index()
    data = run.config.data_dir
    assert data is not None
    (data / "vectors.usearch").unlink()
    ws = run.reader()
    assert len(ws.vectors) == first.items
    ws.close()
    (data / "vectors.usearch").write_bytes(b"garbage")
    s = run.index()
    assert s.embedded == 0 and run.search("zebra metrics")[0][0] == "image"


@pytest.mark.slow
def test_tiny_qwen_pipeline_and_model_switch(run: Run, tiny_qwen_path: Path) -> None:
    qwen = str(tiny_qwen_path)
    minilm = run.index()
    visual = run.index(model=qwen)
    assert visual.visual and visual.indexed == 3 and visual.embedded == visual.items
    ws = run.reader(model=qwen)
    try:
        assert len(ws.vectors) == visual.items and ws.vectors.dimension == 64
        hits = ws.searcher().search("zebra metrics", 3)
        assert hits and hits[0].path == "Attachments/board.png"  # through its OCR words
        # query by image, and by image and words together (Qwen3-VL takes mixed input)
        board = Image.open(run.config.vault / "Attachments/board.png")
        by_image = ws.searcher().search("", 5, image=board)
        mixed = ws.searcher().search("zebra metrics", 5, image=board)
        assert "Attachments/board.png" in {h.path for h in by_image}
        assert [h.score for h in by_image] != [h.score for h in mixed]
    finally:
        ws.close()
    back = run.index()  # every minilm vector is still cached
    assert back.indexed == 3 and back.embedded == 0 and back.items == minilm.items
    with pytest.raises(WorkspaceError, match="was built with minilm"):
        run.reader(model=qwen)


def test_tombstones_are_compacted(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run.index()
    rebuilds: list[int] = []
    real_rebuild = VectorIndex.rebuild

    def spy(self: VectorIndex, vectors: Any) -> None:
        real_rebuild(self, vectors)
        rebuilds.append(len(self))

    monkeypatch.setattr(VectorIndex, "rebuild", spy)
    monkeypatch.setattr(VectorIndex, "needs_compaction", lambda self: self.removed > 0)
    (run.config.vault / "Sync.md").unlink()
    s = run.index()
    assert rebuilds == [first.items - 2] == [s.items]  # rebuilt once, after the removal


def test_data_dir_inside_the_vault_is_refused(run: Run) -> None:
    with pytest.raises(DataDirError, match="outside the vault"):
        run.index(data_dir=run.config.vault / ".vaultlens")


def test_one_writer_at_a_time(run: Run) -> None:
    ws = open_workspace(run.config, writer=True)
    try:
        with pytest.raises(DataDirError, match="already being written"):
            open_workspace(run.config, writer=True)
    finally:
        ws.close()


def test_search_before_indexing_says_what_to_do(run: Run) -> None:
    with pytest.raises(WorkspaceError, match="or `vaultlens index` first"):
        run.reader()


@pytest.mark.slow
def test_switching_between_the_bundled_text_models_reuses_the_cache(run: Run) -> None:
    """minilm → use-multilingual re-embeds everything; going back embeds nothing, and each
    model's reader only opens the index built with it."""
    first = run.index()
    use = run.index(model="use-multilingual")
    assert use.embedded == use.items == first.items and use.reused == 0
    assert run.search("keep sync away from one directory", model="use-multilingual")[0] == (
        "note", "Sync.md", 3)
    with pytest.raises(WorkspaceError, match="built with use:multilingual-v3"):
        run.reader()  # the minilm reader refuses vectors of another model
    back = run.index()
    assert (back.embedded, back.reused) == (0, back.items)
    assert run.search("keep sync away from one directory")[0] == ("note", "Sync.md", 3)


@pytest.mark.slow
@pytest.mark.parametrize("batch", [4, 16])
def test_pictures_go_to_the_model_a_batch_at_a_time(make_vault: MakeVault, tmp_path: Path,
                                                    tiny_qwen_path: Path, batch: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A model call holds as many pictures as the model's batch (4 on a CPU, 16 beside a
    GPU), not a fixed quarter of a call: a GPU was fed four at a time."""
    import vaultlens.embedders.qwen3_vl as qwen3_vl

    monkeypatch.setattr(qwen3_vl, "CPU_BATCH", batch)  # this machine's default batch
    files: dict[str, str | bytes] = {f"Shots/{n}.png": screenshot(f"SHOT {n}") for n in range(32)}
    calls: list[int] = []
    real = qwen3_vl.Qwen3VL.embed

    def counting(self: Any, inputs: Any, role: Any) -> Any:
        if role == "document":
            calls.append(sum(1 for x in inputs if x.image is not None))
        return real(self, inputs, role)

    monkeypatch.setattr(qwen3_vl.Qwen3VL, "embed", counting)
    summary = Run(make_vault(files), tmp_path / "data", model=str(tiny_qwen_path)).index(
        ocr=False)
    assert summary.indexed == 32 and sum(calls) == 32
    # full calls of the model's batch; a busy machine may send a smaller one early (the plan
    # embeds what it holds when no read finishes in time), never a larger one
    assert max(calls) == batch and all(c <= batch for c in calls), calls


def test_a_chinese_word_written_another_way_is_found_by_its_characters(
        make_vault: MakeVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """删掉 shares no bigram with 删除 but shares 删: an index written by a catalog before
    single characters (schema 5, bigrams only) is read again once, and then finds it."""
    import vaultlens.index.catalog as catalog_module
    from vaultlens.text import CJK_RUN

    others = {f"其他{n}.md": f"# 其他\n\n第{n}个视图显示链接和标签。\n" for n in range(6)}
    vault = make_vault({"回收.md": "# 回收站\n\n删除的笔记会先放进回收站。\n", **others})
    run = Run(vault, tmp_path / "data", model="minilm")
    monkeypatch.setattr(catalog_module, "MIGRATIONS", catalog_module.MIGRATIONS[:5])
    monkeypatch.setattr(catalog_module, "SCHEMA_VERSION", 5)
    monkeypatch.setattr(catalog_module, "cjk_grams", lambda text: CJK_RUN.sub(
        lambda m: " " + " ".join(m.group(0)[i : i + 2] for i in range(len(m.group(0)) - 1))
        + " ", text))  # what that version wrote: bigrams only
    run.index(ocr=False)
    assert run.search("删掉") == []
    monkeypatch.undo()
    second = run.index(ocr=False)
    assert second.indexed == 7 and second.embedded == 0  # read again; vectors from the cache
    assert [p for _, p, _ in run.search("删掉")] == ["回收.md"]


@pytest.mark.slow
def test_a_file_whose_reading_fails_unforeseen_fails_alone(run: Run,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug meeting odd input in one file's reading is that file's failure, with a reason and
    another try next run; the files after it are indexed all the same."""
    from vaultlens.vault.notes import NoteParser

    parse = NoteParser.parse_bytes

    def odd(self: NoteParser, data: bytes, path: str) -> Any:
        if path == "Sync.md":
            raise TypeError("unhashable type: 'list'")
        return parse(self, data, path)

    monkeypatch.setattr(NoteParser, "parse_bytes", odd)
    summary = run.index()
    assert [x["path"] for x in summary.retry] == ["Sync.md"]
    assert "TypeError: unhashable type" in summary.retry[0]["reason"]
    assert summary.indexed == 2 and summary.items > 0
    monkeypatch.setattr(NoteParser, "parse_bytes", parse)
    assert run.index().indexed == 1  # tried again, and read once the reading works
