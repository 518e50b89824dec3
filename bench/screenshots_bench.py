"""Screenshots at scale: N generated screenshots (bench/shots.py), each pasted into a note,
indexed cold by ``vaultlens serve``, against RapidOCR alone on the same images in the same run.

    .venv/bin/python bench/screenshots_bench.py --n 10000 [--seed 0] [--model e5-small] [--json]
    .venv/bin/python bench/screenshots_bench.py --n 1000     # the quick mode (any --n works)

Measures, in one run:
  - RapidOCR alone (the baseline): the images read by as many processes as the daemon has bulk
    OCR workers (one per core, one onnxruntime thread each), from pool start to the last image;
  - the daemon: launch until /api/status is idle after its first run (every screenshot
    searchable), throughput; its own per-stage timings (the run's summary);
  - RSS of the daemon and all its child processes: peak while indexing, and at rest after idle;
  - the index's size on disk per screenshot;
  - search latency while indexing (``--qps`` queries a second) and after;
  - words found: for a sample of screenshots, a search for the phrase drawn in it: the share
    that ranks that screenshot first, and in the top three.
A run that is not idle after ``--max-minutes`` is stopped and reports what it has.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from daemon_bench import Daemon, pct  # noqa: E402
from shots import UNCOMMON, Shot, generate  # noqa: E402
from tree_rss import breakdown, rss_mb, tree_pids  # noqa: E402

# --- RapidOCR alone -------------------------------------------------------------------------



def daemon_settings() -> dict[str, Any]:
    """RapidOCR's settings in the daemon's OCR workers, where they differ from its defaults."""
    from vaultlens.extract.ocr import DET_LIMIT_TYPE, REC_BATCH

    return {"rec_batch_num": REC_BATCH, "det_limit_type": DET_LIMIT_TYPE}


def rapidocr_alone(images: list[Path], procs: int, root: Path,
                   settings: dict[str, Any] | None = None
                   ) -> tuple[float, float, list[str]]:
    """Wall seconds from starting ``procs`` processes (models loaded in each) to the last
    image read, their CPU seconds, and the text of each image. ``settings``: RapidOCR's
    keyword arguments (None: its defaults)."""
    listfile = root / "images.txt"
    listfile.write_text("\n".join(str(p) for p in images), encoding="utf-8")
    extra = [json.dumps(settings)] if settings else []
    start = time.perf_counter()
    cpu = _children_cpu_s()
    children = [subprocess.Popen([sys.executable, str(HERE / "rapidocr_alone.py"), str(listfile),
                                  str(i), str(procs), *extra], stdout=subprocess.PIPE)
                for i in range(procs)]
    texts: dict[str, str] = {}
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"rapidocr_alone.py failed with {child.returncode}")
        texts.update(json.loads(out))
    took = time.perf_counter() - start
    return took, _children_cpu_s() - cpu, [texts[str(p)] for p in images]


def _children_cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- the daemon's process tree --------------------------------------------------------------


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) of ``pid``, its children that ended (they are reaped)
    and the ones that run: the tree's work, whatever else the machine ran meanwhile."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in set(tree_pids(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / tick


def ocr_workers_mb(pid: int) -> list[float]:
    """The RSS of each OCR worker of the tree."""
    return [mb for role, mb in breakdown(pid) if role == "ocr"]


class Watch(threading.Thread):
    """While the daemon indexes: the tree's RSS every half second (its peak), and ``qps``
    searches a second for made-up phrases (their latencies)."""

    def __init__(self, daemon: Daemon, qps: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.d, self.qps, self.rng = daemon, qps, random.Random(seed + 1)
        self.stop = threading.Event()
        self.peak_mb = 0.0
        self.peak_ocr_worker_mb = 0.0  # the largest any one OCR worker was
        self.search_ms: list[float] = []

    def run(self) -> None:
        next_search = time.monotonic()
        while not self.stop.is_set():
            each = breakdown(self.d.proc.pid)
            self.peak_mb = max(self.peak_mb, sum(mb for _, mb in each))
            self.peak_ocr_worker_mb = max([self.peak_ocr_worker_mb, *(
                mb for role, mb in each if role == "ocr")])
            if self.qps > 0 and time.monotonic() >= next_search:
                next_search = time.monotonic() + 1 / self.qps
                t = time.perf_counter()
                try:
                    self.d.search(" ".join(self.rng.sample(UNCOMMON, 3)), 10)
                    self.search_ms.append(1000 * (time.perf_counter() - t))
                except OSError:
                    pass  # not listening yet
            self.stop.wait(0.5 if self.qps <= 0 else min(0.5, 1 / self.qps))


def wait_idle(daemon: Daemon, deadline: float) -> dict[str, Any] | None:
    """The daemon's status once idle after its first run; None past the deadline."""
    last_log = time.monotonic()
    while time.monotonic() < deadline:
        try:
            s: dict[str, Any] = daemon.call("/api/status")
        except OSError:
            time.sleep(0.2)
            continue
        if not s["indexing"] and s["queue"] == 0 and s["runs"] > 0:
            return s
        if time.monotonic() - last_log > 30:
            last_log = time.monotonic()
            p = s["progress"]
            print(f"  … {p['done']}/{p['total']} files, {time.perf_counter() - daemon.started:.0f}"
                  " s", file=sys.stderr, flush=True)
        time.sleep(0.5)
    return None


def words_found(daemon: Daemon, sample: list[Shot]) -> tuple[float, float, list[float]]:
    """Top-1 and top-3 shares of the sample's phrases finding their screenshot; latencies."""
    top1 = top3 = 0
    took: list[float] = []
    for shot in sample:
        t = time.perf_counter()
        hits = daemon.search(shot.phrase, 3)
        took.append(1000 * (time.perf_counter() - t))
        paths = [h["path"] for h in hits]
        top1 += bool(paths) and paths[0].endswith(shot.image)
        top3 += any(p.endswith(shot.image) for p in paths)
    return top1 / len(sample), top3 / len(sample), took


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure_daemon(vault: Path, data: Path, shots: list[Shot], args: argparse.Namespace
                   ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    daemon = Daemon(vault, data, model=args.model, port=args.port)
    watch = Watch(daemon, args.qps, args.seed)
    watch.start()
    try:
        status = wait_idle(daemon, time.monotonic() + 60 * args.max_minutes)
        took = time.perf_counter() - daemon.started
        out["daemon_cpu_s"] = round(tree_cpu_s(daemon.proc.pid), 1)
        watch.stop.set()
        watch.join()
        out["peak_rss_mb"] = round(watch.peak_mb, 1)
        out["peak_ocr_worker_mb"] = round(watch.peak_ocr_worker_mb, 1)
        out["search_during_p50_ms"] = round(pct(watch.search_ms, 50), 1) if watch.search_ms \
            else None
        out["search_during_p95_ms"] = round(pct(watch.search_ms, 95), 1) if watch.search_ms \
            else None
        out["searches_during"] = len(watch.search_ms)
        if status is None:
            s = daemon.call("/api/status")
            out.update(finished=False, stopped_after_s=round(took, 1),
                       done_files=s["progress"]["done"], total_files=s["progress"]["total"])
            return out
        out.update(finished=True, searchable_s=round(took, 1),
                   shots_per_s=round(len(shots) / took, 2))
        run = status.get("last_run") or {}
        out["stage_s"] = run.get("timings", {})
        out["run_s"] = run.get("seconds")
        out["ocr_images"] = run.get("ocr_images")
        out["not_indexed"] = len(status.get("failures") or [])
        time.sleep(args.rest_s)
        out["rest_rss_mb"] = round(rss_mb(daemon.proc.pid), 1)
        out["rest_ocr_workers_mb"] = [round(mb, 1) for mb in ocr_workers_mb(daemon.proc.pid)]
        out["daemon_rest_rss_mb"] = round(daemon.rss_mb(), 1)
        sample = random.Random(args.seed + 2).sample(shots, min(args.sample, len(shots)))
        top1, top3, lat = words_found(daemon, sample)
        out.update(sample=len(sample), top1=round(top1, 3), top3=round(top3, 3),
                   search_after_p50_ms=round(pct(lat, 50), 1),
                   search_after_p95_ms=round(pct(lat, 95), 1))
    finally:
        watch.stop.set()
        daemon.stop()
        size = disk_bytes(data)
        out.update(index_mb=round(size / 2**20, 1),
                   index_kb_per_shot=round(size / 1024 / len(shots), 1))
    return out


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    vault, data = root / "vault", root / "data"
    vault.mkdir(parents=True)
    t = time.perf_counter()
    shots = generate(vault, args.n, args.seed)
    procs = os.cpu_count() or 1  # the daemon's bulk OCR workers: one per core
    res: dict[str, Any] = {
        "n": args.n, "seed": args.seed, "model": args.model, "cores": procs,
        "ocr_processes": procs, "generate_s": round(time.perf_counter() - t, 1),
        "cjk_shots": sum(s.cjk for s in shots)}
    if not args.skip_baseline:
        # a share of the images reads at the same rate as all of them (a shorter run)
        some = shots[:args.baseline_n or None]
        settings = daemon_settings() if args.baseline_settings == "daemon" else None
        res["rapidocr_settings"] = args.baseline_settings
        base_s, base_cpu, texts = rapidocr_alone([vault / s.image for s in some], procs, root,
                                                 settings)
        res["rapidocr_cpu_s_per_shot"] = round(base_cpu / len(some), 3)
        read = sum(all(w in text.lower() for w in s.phrase.split())
                   for s, text in zip(some, texts, strict=True))
        res.update(rapidocr_images=len(some), rapidocr_s=round(base_s, 1),
                   rapidocr_shots_per_s=round(len(some) / base_s, 2),
                   rapidocr_phrase_read=round(read / len(some), 3))
    res.update(measure_daemon(vault, data, shots, args))
    if res.get("shots_per_s") and res.get("rapidocr_shots_per_s"):
        res["throughput_ratio"] = round(res["shots_per_s"] / res["rapidocr_shots_per_s"], 2)
    if res.get("finished") and res.get("rapidocr_cpu_s_per_shot"):
        # CPU per screenshot, launch to searchable (notes, embedding and searches included):
        # the throughput ratio of a machine with nothing else on its cores
        res["daemon_cpu_s_per_shot"] = round(res["daemon_cpu_s"] / args.n, 3)
        res["cpu_ratio"] = round(res["rapidocr_cpu_s_per_shot"] / res["daemon_cpu_s_per_shot"], 2)
    return res


ROWS = (("screenshots", "n"), ("cores (= OCR processes)", "cores"),
        ("screenshots with CJK text", "cjk_shots"),
        ("RapidOCR alone: images read", "rapidocr_images"),
        ("RapidOCR alone: settings", "rapidocr_settings"),
        ("RapidOCR alone: seconds", "rapidocr_s"),
        ("RapidOCR alone: screenshots/s", "rapidocr_shots_per_s"),
        ("RapidOCR alone: phrase read whole", "rapidocr_phrase_read"),
        ("vaultlens: launch → all searchable, s", "searchable_s"),
        ("vaultlens: screenshots/s", "shots_per_s"),
        ("vaultlens / RapidOCR throughput", "throughput_ratio"),
        ("CPU s per screenshot: RapidOCR / vaultlens",
         ("rapidocr_cpu_s_per_shot", "daemon_cpu_s_per_shot")),
        ("vaultlens / RapidOCR, by CPU per screenshot", "cpu_ratio"),
        ("daemon's stage seconds (summed)", "stage_s"),
        ("peak RSS, daemon + children, MB", "peak_rss_mb"),
        ("peak RSS of one OCR worker, MB", "peak_ocr_worker_mb"),
        ("at-rest RSS, daemon + children, MB", "rest_rss_mb"),
        ("at-rest RSS of each OCR worker, MB", "rest_ocr_workers_mb"),
        ("at-rest RSS, daemon alone, MB", "daemon_rest_rss_mb"),
        ("index on disk, MB", "index_mb"), ("index per screenshot, KB", "index_kb_per_shot"),
        ("search p50 / p95 while indexing, ms", ("search_during_p50_ms", "search_during_p95_ms")),
        ("search p50 / p95 after, ms", ("search_after_p50_ms", "search_after_p95_ms")),
        ("phrase → its screenshot: sample", "sample"), ("  top-1", "top1"), ("  top-3", "top3"),
        ("not indexed (failures)", "not_indexed"),
        ("stopped unfinished after, s", "stopped_after_s"))


def table(res: dict[str, Any]) -> str:
    lines = []
    for label, key in ROWS:
        keys = key if isinstance(key, tuple) else (key,)
        if not any(k in res for k in keys):
            continue
        lines.append(f"{label:<40} {' / '.join(str(res.get(k)) for k in keys)}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="screenshots (10000: the full size)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="e5-small")
    ap.add_argument("--sample", type=int, default=200, help="phrases searched after indexing")
    ap.add_argument("--qps", type=float, default=2.0, help="searches a second while indexing")
    ap.add_argument("--rest-s", type=float, default=10.0,
                    help="seconds after idle before the at-rest RSS")
    ap.add_argument("--max-minutes", type=float, default=25.0)
    ap.add_argument("--port", type=int, default=None, help="the daemon's (default: a free one)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--baseline-n", type=int, default=0,
                    help="RapidOCR alone reads only the first this many images (0: all)")
    ap.add_argument("--baseline-settings", choices=("default", "daemon"), default="default",
                    help="RapidOCR alone with its own defaults (the baseline), or with the "
                         "settings of the daemon's OCR workers (its overhead alone)")
    ap.add_argument("--keep", type=Path, help="build the vault and index here and keep them")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.n < 1:
        sys.exit("--n must be at least 1")
    if args.keep:
        res = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="vl-shots-") as tmp:
            res = run(args, Path(tmp))
    print(json.dumps(res, indent=1) if args.json else table(res))


if __name__ == "__main__":
    main()
