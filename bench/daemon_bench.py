"""The daemon's latencies: paste → searchable, query latency by index size, start-up.

    .venv/bin/python bench/daemon_bench.py [--sizes 1000,10000,100000] [--pastes 20]

- Paste → searchable: a served vault; each paste writes a screenshot (a made-up word rendered
  into it) and a note that embeds it; time until a search for the word returns the screenshot.
  Baseline in the same run: the floor, OCR of one such screenshot plus one MiniLM embedding.
- Query latency over HTTP at each size, concurrency 1 and 8, against numpy brute force over the
  same vectors in the same run. The synthetic index is built in-process with a random-vector
  embedder that carries MiniLM's signature (MiniLM itself would take minutes per 10k items);
  the daemon then serves it with the real MiniLM for queries.
- Start-up: launch to first answered search with the largest index on disk, and RSS at rest.
- ``--baseline REF``: the latency and start-up parts again with the daemon of that commit (a
  git worktree of it), on the same indexes, in the same run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vaultlens.config import Config
from vaultlens.embedders.base import Embedder, Input, Role, Vectors
from vaultlens.embedders.minilm import MiniLM
from vaultlens.workspace import open_workspace

WORDS = ("vault note screenshot chart friction cost sync plugin graph canvas storm pier coffee "
         "export import template daily meeting roadmap budget design review latency").split()


def vocabulary(size: int = 5000) -> tuple[list[str], list[float]]:
    """Words with Zipf weights, as in real prose; `--flat` uses the 24 WORDS alone, where every
    item matches every query (the keyword index's worst case)."""
    rng = random.Random(7)
    words = WORDS + [made_up_word(rng) + made_up_word(rng)[:rng.randint(0, 4)]
                     for _ in range(size - len(WORDS))]
    return words, [1.0 / (rank + 1) for rank in range(len(words))]


class RandomVectors(Embedder):
    """Builds big synthetic indexes fast; signed as the model named (MiniLM or E5, both 384
    dimensions) so that a daemon of that model uses them as its own."""

    dimension = 384

    def __init__(self, model: str = "minilm") -> None:
        from vaultlens.embedders.e5 import E5

        self.name = model
        self.signature = E5().signature if model == E5.name else MiniLM().signature
        self.rng = np.random.default_rng(0)

    def embed(self, inputs: Sequence[Input], role: Role) -> Vectors:
        v = self.rng.normal(size=(len(inputs), self.dimension)).astype(np.float32)
        out: Vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class Daemon:
    """``code``: a checkout whose server/ is run instead of this one (a baseline commit)."""

    def __init__(self, vault: Path, data: Path, code: Path | None = None,
                 model: str = "minilm", port: int | None = None) -> None:
        self.port = port or free_port()
        self.started = time.perf_counter()
        env = dict(os.environ)
        if code is not None:
            env["PYTHONPATH"] = str(code / "server")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vaultlens", "serve", "--vault", str(vault), "--data-dir",
             str(data), "--model", model, "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.token = subprocess.run(
            [sys.executable, "-m", "vaultlens", "token", "--vault", str(vault), "--data-dir",
             str(data)], capture_output=True, text=True, check=True).stdout.strip()

    def call(self, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self.call("/api/search", {"query": query, "k": k})[
            "results"]
        return results

    def wait_ready(self) -> tuple[float, float]:
        """Seconds from launch until a search is answered (keyword-only while the model
        loads), and until one is answered with vectors too."""
        first = None
        while True:
            try:
                partial = self.call("/api/search", {"query": "anything", "k": 1})["partial"]
            except OSError:
                time.sleep(0.05)
                continue
            now = time.perf_counter() - self.started
            first = first if first is not None else now
            if not partial:
                return first, now
            time.sleep(0.05)

    def wait_idle(self) -> None:
        while True:
            s = self.call("/api/status")
            if not s["indexing"] and s["queue"] == 0 and s["runs"] > 0:
                return
            time.sleep(0.2)

    def rss_mb(self, workers: bool = False) -> float:
        """The daemon's resident memory; ``workers``: with its worker processes' (the query
        model's, the urgent OCR reader's)."""
        pids = [self.proc.pid]
        if workers:
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                pids += [int(p) for p in (task / "children").read_text().split()]
        total = 0.0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        return total

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def screenshot(word: str) -> bytes:
    im = Image.new("RGB", (900, 200), (30, 30, 40))
    ImageDraw.Draw(im).text((30, 70), f"Quarterly {word} report", fill="white", font_size=40)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def made_up_word(rng: random.Random) -> str:
    return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(4))


def paste_bench(root: Path, pastes: int) -> None:
    vault, data = root / "paste-vault", root / "paste-data"
    (vault / "Attachments").mkdir(parents=True)
    (vault / "Home.md").write_text("# Home\n\nA start.\n")
    rng = random.Random(1)
    # the floor, in this process: OCR of one screenshot and one MiniLM embedding
    from vaultlens.extract.ocr import OCR

    ocr, model = OCR(), MiniLM()
    model.embed_texts(["warm"], "document")
    ocr.read(Image.open(io.BytesIO(screenshot("warm"))))
    floors = []
    for _ in range(5):
        t = time.perf_counter()
        text = ocr.read(Image.open(io.BytesIO(screenshot(made_up_word(rng)))))
        model.embed_texts([text], "document")
        floors.append(time.perf_counter() - t)
    ocr.close()
    daemon = Daemon(vault, data)
    try:
        daemon.wait_ready()
        daemon.wait_idle()
        took = []
        for i in range(pastes):
            word = made_up_word(rng)
            name = f"Pasted image 2024010112{i:04d}.png"
            start = time.perf_counter()
            (vault / "Attachments" / name).write_bytes(screenshot(word))
            (vault / f"Paste {i}.md").write_text(f"# Paste {i}\n\nSee below.\n\n![[{name}]]\n")
            while not any(r["path"].endswith(name) for r in daemon.search(word)):
                time.sleep(0.02)
            took.append(time.perf_counter() - start)
    finally:
        daemon.stop()
    floor = float(np.median(floors))
    print(f"paste → searchable over {pastes} pastes: p50 {pct(took, 50):.2f} s, "
          f"p95 {pct(took, 95):.2f} s; floor (OCR + embed, same run) {floor:.2f} s → "
          f"p50 {pct(took, 50) / floor:.1f}x, p95 {pct(took, 95) / floor:.1f}x the floor")


def build_index(root: Path, items: int, words: list[str], weights: list[float],
                model: str = "minilm") -> tuple[Path, Path]:
    """A vault of notes with 10 paragraphs each (one note in 49 tagged #tagged: 2% of items,
    across the folders), indexed with random vectors signed as ``model``'s."""
    vault, data = root / f"vault-{items}", root / f"data-{items}-{model}"
    rng = random.Random(items)
    for n in range(items // 10 if not vault.exists() else 0):
        folder = vault / f"Area {n % 50}"
        folder.mkdir(parents=True, exist_ok=True)
        paras = [" ".join(rng.choices(words, weights, k=12)) + f" n{n}p{p}."
                 for p in range(10)]
        front = "---\ntags: [tagged]\n---\n" if n % 49 == 3 else ""
        (folder / f"Note {n}.md").write_text(front + "\n\n".join(paras) + "\n")
    # opened with the random embedder: an index built before (``--root``) is opened under its
    # own signature, its saved vectors kept
    ws = open_workspace(Config(vault=vault, data_dir=data, model="minilm", ocr=False),
                        writer=True, embedder=RandomVectors(model))
    indexer = ws.indexer()
    indexer.run()
    indexer.save_vectors()
    indexer.close()
    ws.close()
    return vault, data


def build_with(code: Path, root: Path, items: int, flat: bool, model: str
               ) -> tuple[Path, Path]:
    """The same synthetic index built by the baseline's own code (its bench's build_index, its
    catalog schema), signed as ``model``'s (the model its daemon serves with: another
    signature would have it index everything again while it is measured), in a process of
    its own."""
    script = (
        "import sys, json; from pathlib import Path; "
        f"sys.path[:0] = [{str(code / 'bench')!r}, {str(code / 'server')!r}]; "
        "from daemon_bench import build_index, vocabulary, WORDS; "
        f"words, weights = (WORDS, [1.0] * len(WORDS)) if {flat} else vocabulary(); "
        f"print(json.dumps([str(p) for p in build_index(Path({str(root)!r}), {items}, "
        f"words, weights, {model!r})]))")
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True, cwd=root).stdout
    vault, data = json.loads(out.strip().splitlines()[-1])
    return Path(vault), Path(data)


def brute_force_ms(data: Path, queries: Vectors) -> float:
    import sqlite3

    conn = sqlite3.connect(data / "catalog.sqlite")
    matrix = np.stack([np.frombuffer(b, dtype=np.float32) for (b,) in conn.execute(
        "SELECT vector FROM embeddings")])
    conn.close()
    start = time.perf_counter()
    for q in queries:
        scores = matrix @ q
        np.argpartition(-scores, 50)[:50]
    return 1000 * (time.perf_counter() - start) / len(queries)


def latency_bench(root: Path, sizes: list[int], flat: bool, baseline: Path | None = None,
                  models: tuple[str, str] = ("minilm", "minilm"), startup: bool = True) -> None:
    """``models``: this code's text model and the baseline's."""
    model = MiniLM()
    words, weights = (WORDS, [1.0] * len(WORDS)) if flat else vocabulary()
    # every query once: the daemon caches query vectors, and a repeated query would measure
    # the cache (disjoint slices below: warm-up, concurrency 1, concurrency 8, filters)
    queries = list(dict.fromkeys(" ".join(random.Random(i).choices(words, weights, k=3))
                                 for i in range(6000)))[:600]
    qvec = model.embed_texts(queries[:40], "query")
    largest: tuple[Path, Path] | None = None
    runs = (("this code", None, models[0]), ("baseline", baseline, models[1]))
    for size in sizes:
        for label, code, model_name in runs:
            if label == "baseline" and code is None:
                continue
            vault, data = (build_index(root, size, words, weights, model_name) if code is None
                           else build_with(code, root, size, flat, model_name))
            largest = (vault, data)
            print(f"{label} ({model_name}):")
            serve_and_measure(vault, data, code, size, queries, model_name)
        print(f"{size:>7} items: numpy brute force (vector part only) "
              f"{brute_force_ms(data, qvec):6.2f} ms per query, same run")
    if largest and startup:
        for label, code, model_name in runs:
            if label == "baseline" and code is None:
                continue
            vault, data = (build_index(root, sizes[-1], words, weights, model_name)
                           if code is None else build_with(code, root, sizes[-1], flat, model_name))
            daemon = Daemon(vault, data, code, model_name)
            try:
                first, full = daemon.wait_ready()
                daemon.wait_idle()
                time.sleep(1)
                print(f"{label}: start-up with {sizes[-1]} items on disk: {first:.2f} s to the "
                      f"first answered search (keyword-only while the model loads), {full:.2f} s"
                      f" to the first with vectors; RSS at rest {daemon.rss_mb():.0f} MB, "
                      f"{daemon.rss_mb(workers=True):.0f} MB with its worker processes")
            finally:
                daemon.stop()


def serve_and_measure(vault: Path, data: Path, code: Path | None, size: int,
                      queries: list[str], model: str = "minilm") -> None:
    daemon = Daemon(vault, data, code, model)
    try:
        daemon.wait_ready()
        daemon.wait_idle()
        for q in queries[:5]:
            daemon.search(q)
        for conc, asked in ((1, queries[5:85]), (8, queries[85:245])):
            def one(q: str, daemon: Daemon = daemon) -> float:
                t = time.perf_counter()
                daemon.search(q, 10)
                return 1000 * (time.perf_counter() - t)

            with ThreadPoolExecutor(conc) as pool:
                lat = list(pool.map(one, asked))
            print(f"{size:>7} items, concurrency {conc}: p50 {pct(lat, 50):6.1f} ms, "
                  f"p95 {pct(lat, 95):6.1f} ms over HTTP")
        # a path, kind or tag filter ranks among the items it admits (index/lookups.py); the
        # cases take turns, a plain search among them, so that a change in the machine's
        # load between them does not show as a difference
        cases = (("no filter (plain, in turn with these)", ""),
                 ("a folder, 2% of items", 'path:"Area 7"'),
                 ("one note, 10 items", 'path:"Area 7/Note 7.md"'),
                 ("a kind, all items", "kind:note"),
                 ("a tag, 2% of items", "tag:tagged"))
        took: dict[str, list[float]] = {label: [] for label, _ in cases}
        for i in range(60):
            for n, (label, where) in enumerate(cases):
                q = queries[245 + 60 * n + i]
                t = time.perf_counter()
                daemon.search(f"{q} {where}", 10)
                took[label].append(1000 * (time.perf_counter() - t))
        for label, lat in took.items():
            print(f"{size:>7} items, filter to {label}: p50 {pct(lat, 50):6.1f} ms, "
                  f"p95 {pct(lat, 95):6.1f} ms")
    finally:
        daemon.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--pastes", type=int, default=20)
    ap.add_argument("--flat", action="store_true",
                    help="24-word vocabulary: every item matches every query")
    ap.add_argument("--baseline", help="a commit whose daemon is measured too, on the same "
                    "indexes, from a git worktree of it (query latency and start-up)")
    ap.add_argument("--model", default="e5-small", help="this code's text model")
    ap.add_argument("--baseline-model", default="minilm", help="the baseline's text model")
    ap.add_argument("--root", help="a folder kept between runs: the synthetic vaults and their"
                    " indexes are built there once and reused (100,000 items take a while)")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up part")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        if args.pastes:
            paste_bench(root, args.pastes)
        base = None
        if args.baseline:
            base = root / "baseline"
            subprocess.run(["git", "-C", str(Path(__file__).resolve().parent.parent),
                            "worktree", "add", "--detach", str(base), args.baseline],
                           check=True, capture_output=True)
        try:
            latency_bench(root, [int(s) for s in args.sizes.split(",")], args.flat, base,
                          (args.model, args.baseline_model), not args.no_startup)
        finally:
            if base is not None:
                subprocess.run(["git", "-C", str(Path(__file__).resolve().parent.parent),
                                "worktree", "remove", "--force", str(base)], check=False,
                               capture_output=True)


if __name__ == "__main__":
    main()
