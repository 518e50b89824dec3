"""The real loading code on a tiny random Qwen3-VL model, and the bundled MiniLM."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from documents import picture
from vaultlens.embedders.base import Input, ModelError
from vaultlens.embedders.minilm import MiniLM
from vaultlens.embedders.qwen3_vl import QUERY_INSTRUCTION, Qwen3VL
from vaultlens.embedders.registry import load
from vaultlens.embedders.use import MultilingualUSE


@pytest.fixture(scope="module")
def qwen(tiny_qwen_path: Path) -> Qwen3VL:
    return Qwen3VL(str(tiny_qwen_path), dtype=torch.float32, batch_size=3)


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    return MiniLM()


def test_shape_norm_and_determinism(qwen: Qwen3VL) -> None:
    texts = ["the storm over the pier", "a purple chart", ""]
    a = qwen.embed_texts(texts, "document")
    b = qwen.embed_texts(texts, "document")
    assert a.shape == (3, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])


def test_batch_equals_one_by_one(qwen: Qwen3VL) -> None:
    """Padding bugs show up as a vector that depends on its neighbours in the batch."""
    inputs = [
        Input(text="short"),
        Input(image=picture("purple", (200, 90))),
        Input(text="a much longer piece of text about the storm over the pier at night"),
        Input(image=picture("teal", (64, 64)), text="a chart"),
        Input(image=picture("orange", (90, 180))),
    ]
    together = qwen.embed(inputs, "document")  # batch_size=3: two batches, mixed lengths
    alone = np.concatenate([qwen.embed([x], "document") for x in inputs])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_roles_use_different_instructions(qwen: Qwen3VL) -> None:
    q = qwen.embed_texts(["storm"], "query")
    d = qwen.embed_texts(["storm"], "document")
    assert not np.allclose(q, d)


def test_matryoshka_truncation(tiny_qwen_path: Path, qwen: Qwen3VL) -> None:
    small = Qwen3VL(str(tiny_qwen_path), dims=16, dtype=torch.float32)
    full = qwen.embed_texts(["coffee"], "document")
    cut = small.embed_texts(["coffee"], "document")
    assert cut.shape == (1, 16) and small.dimension == 16
    np.testing.assert_allclose(np.linalg.norm(cut), 1.0, atol=1e-5)
    expected = full[0, :16] / np.linalg.norm(full[0, :16])
    np.testing.assert_allclose(cut[0], expected, atol=1e-5)
    assert small.signature != qwen.signature
    with pytest.raises(ModelError, match="--dims 999"):
        Qwen3VL(str(tiny_qwen_path), dims=999)


def test_text_and_images_share_the_space(qwen: Qwen3VL) -> None:
    text = qwen.embed_texts(["a purple chart"], "query")
    images = qwen.embed_images([picture("purple"), picture("green", text="chart")], "document")
    assert text.shape[1] == images.shape[1] == qwen.dimension
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(images[0], images[1])  # the picture changes the vector
    scores = images @ text[0]
    assert np.all(np.abs(scores) <= 1.0 + 1e-5)
    mixed = qwen.embed([Input(text="a purple chart", image=picture("purple"))], "document")
    assert not np.allclose(mixed, images[0]) and not np.allclose(mixed, text)


def test_image_token_budget_changes_the_signature(tiny_qwen_path: Path) -> None:
    a = Qwen3VL(str(tiny_qwen_path), max_image_tokens=16, dtype=torch.float32)
    b = Qwen3VL(str(tiny_qwen_path), max_image_tokens=64, dtype=torch.float32)
    assert a.signature != b.signature
    # none asked for: by device, and in the signature either way
    cpu = Qwen3VL(str(tiny_qwen_path), device="cpu")
    gpu = Qwen3VL(str(tiny_qwen_path), device="cuda")  # weights load lazily: no GPU needed
    assert (cpu.max_image_tokens, gpu.max_image_tokens) == (256, 1800)
    assert (cpu.batch_size, gpu.batch_size) == (4, 16)  # and a batch by device too
    assert ":img256:" in cpu.signature and ":img1800:" in gpu.signature
    big = picture("purple", (800, 600))
    assert a.embed_images([big], "document").shape == (1, 64)


def test_bad_model_paths_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a model folder"):
        Qwen3VL(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="cannot load a Qwen3-VL model"):
        Qwen3VL(str(tmp_path))
    with pytest.raises(ModelError, match="vaultlens model pull qwen3-vl-2b"):
        load("qwen3-vl-2b")
    with pytest.raises(ModelError, match="unknown model 'gpt'"):
        load("gpt")


def test_auto_without_weights_falls_back_loudly(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache: no Qwen3-VL here
    embedder, notice = load("auto")
    assert embedder.name == "e5-small" and not embedder.supports_images and embedder.multilingual
    assert notice is not None and "Visual search is OFF" in notice


def test_minilm_ranks_a_paraphrase_first(minilm: MiniLM) -> None:
    docs = minilm.embed_texts([
        "To stop Obsidian Sync from touching a folder, exclude it in selective sync settings.",
        "The graph view shows notes as circles and links as lines between them.",
        "Templates insert predefined text into the current note.",
    ], "document")
    query = minilm.embed_texts(["how do I keep sync away from one folder"], "query")
    assert int(np.argmax(docs @ query[0])) == 0
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ModelError, match="visual search is off"):
        minilm.embed_images([picture("red")], "document")


@pytest.fixture(scope="module")
def use() -> MultilingualUSE:
    return MultilingualUSE()


def test_use_is_multilingual_normalised_and_deterministic(use: MultilingualUSE) -> None:
    texts = ["如何让同步不碰某个文件夹", "在设置里打开选择性同步 把这个文件夹排除在外",
             "今天中午吃了牛肉面", "Turn on selective sync in settings and exclude the folder.",
             ""]
    a = use.embed_texts(texts, "document")
    assert a.shape == (5, 512) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a[:4], axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, use.embed_texts(texts, "document"))
    # a Chinese question lands nearer its Chinese answer, and its English one, than a lunch note
    assert a[0] @ a[1] > a[0] @ a[2] + 0.2
    assert a[0] @ a[3] > a[0] @ a[2]
    assert use.multilingual and not MiniLM.multilingual


def test_use_refuses_images_and_names_itself_in_its_signature(use: MultilingualUSE) -> None:
    with pytest.raises(ModelError, match="text only"):
        use.embed([Input(image=picture("purple"))], "document")
    assert use.signature.startswith("use:multilingual-v3:")
    assert use.signature != MiniLM().signature
    model, notice = load("use-multilingual")
    assert isinstance(model, MultilingualUSE) and notice and "visual search is off" in notice


def test_control_token_strings_in_a_note_are_text(qwen: Qwen3VL) -> None:
    """A note may hold "<|image_pad|>" or "<|im_end|>": it is embedded as those characters,
    in a batch with an image too (it used to raise StopIteration and fail the batch)."""
    qwen._load()
    tokenizer = qwen._tokenizer
    for text in ("see <|image_pad|> here", "done<|im_end|>\n<|im_start|>assistant\n"):
        vectors = qwen.embed([Input(text=text), Input(image=picture("red"), text="red")],
                             "document")
        assert vectors.shape == (2, qwen.dimension) and np.isfinite(vectors).all()
        ids = qwen._ids(qwen._prompt(Input(text=text), "document"))
        plain = qwen._ids(qwen._prompt(Input(text="x"), "document"))
        for token in ("<|image_pad|>", "<|im_end|>", "<|im_start|>"):
            special = tokenizer.convert_tokens_to_ids(token)
            assert ids.count(special) == plain.count(special), (text, token)
    # ordinary text tokenises exactly as the whole rendered prompt does
    messages = [{"role": "system", "content": [{"type": "text", "text": "Represent the "
                                                "user's input."}]},
                {"role": "user", "content": [{"type": "text", "text": "storm over the pier"}]}]
    whole = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert qwen._ids(qwen._prompt(Input(text="storm over the pier"), "document")) == tokenizer(
        whole)["input_ids"]


def test_a_prompt_in_pieces_gets_the_tokens_a_whole_one_would(tiny_qwen_path: Path,
                                                             tmp_path: Path) -> None:
    """A tokenizer that appends an end-of-text token to every text (as some checkpoints' do)
    appends it once to a prompt tokenised in pieces too, at the end."""
    from tokenizers import Tokenizer, processors

    folder = tmp_path / "model"
    shutil.copytree(tiny_qwen_path, folder)
    backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
    eos = backend.token_to_id("<|endoftext|>")
    backend.post_processor = processors.TemplateProcessing(
        single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", eos)])
    backend.save(str(folder / "tokenizer.json"))
    qwen = Qwen3VL(str(folder), dtype=torch.float32)
    qwen._load()
    ids = qwen._ids(qwen._prompt(Input(text="storm over the pier"), "query"))
    messages = [{"role": "system", "content": [{"type": "text", "text": QUERY_INSTRUCTION}]},
                {"role": "user", "content": [{"type": "text", "text": "storm over the pier"}]}]
    whole = qwen._tokenizer.apply_chat_template(messages, tokenize=False,
                                                add_generation_prompt=True)
    assert ids == qwen._tokenizer(whole)["input_ids"] and ids[-1] == eos
    assert ids.count(eos) == 1


def test_a_chat_template_only_in_chat_template_json_is_read(tiny_qwen_path: Path,
                                                           tmp_path: Path) -> None:
    """Some checkpoints ship the template only as chat_template.json, where tokenizers do not
    look; without one anywhere the error names the files."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_qwen_path, folder)
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").unlink()
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    moved = Qwen3VL(str(folder), dtype=torch.float32)
    original = Qwen3VL(str(tiny_qwen_path), dtype=torch.float32)
    np.testing.assert_allclose(moved.embed_texts(["storm over the pier"], "query"),
                               original.embed_texts(["storm over the pier"], "query"),
                               atol=1e-6)
    (folder / "chat_template.json").unlink()
    with pytest.raises(ModelError, match="no chat template"):
        Qwen3VL(str(folder), dtype=torch.float32).embed_texts(["x"], "query")


def test_two_threads_never_run_the_shared_model_at_once(qwen: Qwen3VL) -> None:
    """The daemon's search and indexing threads share one Qwen3-VL; each batch holds it."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    inside, most = 0, 0
    guard = threading.Lock()
    real = qwen._batch

    def watched(items: Any, role: Any) -> Any:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)  # widen the window a race would need
        try:
            return real(items, role)
        finally:
            with guard:
                inside -= 1

    qwen._batch = watched  # type: ignore[method-assign]
    expected = qwen.embed_texts(["storm over the pier"], "query")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: qwen.embed_texts(["storm over the pier"] * 4,
                                                           "query"), range(8)))
    assert most == 1
    for r in results:
        np.testing.assert_allclose(r, np.repeat(expected, 4, axis=0), atol=1e-5)
    assert qwen.count_tokens("storm over the pier") == qwen.count_tokens("storm over the pier")
