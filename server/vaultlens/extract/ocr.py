"""Text inside images: RapidOCR with its bundled PP-OCR models (English and Chinese), offline.

OCR runs in a worker process. onnxruntime crashes the process when it is imported after usearch
(seen with onnxruntime 1.32 and usearch 2.26); in its own process it cannot, a hostile image that
crashes the OCR engine costs only the worker, and OCR can run beside the embedder on another core.
Protocol on the worker's stdin/stdout (private to it: children.private_streams): a header line
"width height\\n" then raw RGB bytes; the answer is one JSON line {"text": ...} or {"error": ...}.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from importlib.metadata import version
from typing import IO, Any

from PIL import Image

from vaultlens.children import child_command, private_streams

log = logging.getLogger(__name__)
MIN_CONFIDENCE = 0.5
_LONG_WORD = re.compile(r"[A-Za-z]{7,}")


SHORT_WORDS = frozenset(
    "a an as at be by do go if in is it me my no of on or so to up us we".split())
SPLIT_RULES = "v2"  # part of the OCR signature: changing the rules reads images again


def split_run_together(text: str) -> str:
    """OCR often drops the spaces in UI text ("Togglestackedtabs", "ExporttoPDF"): split such
    runs into dictionary words, keeping their case. Real long words stay whole, and so do
    names the dictionary does not know ("Vonugige" would become "Von ug ige"): a split is
    kept only when each part is 3+ letters or a common short word."""
    import wordninja

    def split(m: re.Match[str]) -> str:
        parts = wordninja.split(m.group(0))
        if len(parts) < 2 or any(len(p) < 3 and p.lower() not in SHORT_WORDS for p in parts):
            return m.group(0)
        return " ".join(parts)

    return _LONG_WORD.sub(split, text)


class OCRError(RuntimeError):
    pass


def _lines(result: Any) -> str:
    """RapidOCR's boxes → the lines of text, top to bottom, left to right."""
    if not result:
        return ""
    lines = []
    for box, text, score in result:
        if float(score) >= MIN_CONFIDENCE and str(text).strip():
            top = min(p[1] for p in box)
            left = min(p[0] for p in box)
            lines.append((round(top / 10), left, str(text).strip()))
    return "\n".join(t for _, _, t in sorted(lines))


class Spawner:
    """Starts worker processes from one thread that lives as long as the pool.

    A worker asks the kernel to kill it when its parent dies (PR_SET_PDEATHSIG), so that one
    the daemon stopped (SIGSTOP, while an urgent image is read) cannot outlive a SIGKILLed
    daemon: a stopped process never reads the end of its stdin. But Linux sends that signal
    when the *thread* that forked the worker ends, and the reading threads end with each run.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue())
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._run, name="vaultlens-spawner", daemon=True).start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            make, done = job
            try:
                done.set_result(make())
            except BaseException as exc:  # the caller hears of it
                done.set_exception(exc)

    def popen(self, make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._closed:  # the pool is closing: start it here (tied to this thread)
                return make()
            done: Future[subprocess.Popen[bytes]] = Future()
            self._jobs.put((make, done))
        return done.result()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._jobs.put(None)


def _cpu_seconds(pid: int) -> float | None:
    """CPU time a process has used, all its threads (Linux); None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class OCR:
    """The parent side: sends pictures to the worker, restarting it if it dies."""

    # a worker getting no CPU at all (stuck) is given up on after this many timeouts of wall
    # time: ten for one at low priority, which a busy machine may starve for long; two for one
    # at normal priority (the urgent worker: a paste must not wait minutes on a stuck read)
    WALL_FACTOR = 10.0
    WALL_FACTOR_NOT_NICE = 2.0

    def __init__(self, timeout: float = 30.0, threads: int | None = None, nice: int = 0,
                 spawner: Spawner | None = None) -> None:
        # an image may take ``timeout`` seconds of the worker's threads at full speed. It is
        # counted in CPU time: a bulk worker at low priority on a machine busy embedding got
        # a tenth of a core, and a 3-second screenshot ran past 30 s of wall time
        self.timeout = timeout
        self.wall_factor = self.WALL_FACTOR if nice > 0 else self.WALL_FACTOR_NOT_NICE
        self.spawner = spawner  # None: started from the calling thread
        self.threads = threads  # onnxruntime's threads in the worker (None: its default)
        self.nice = nice  # the worker's niceness: background OCR yields to everything else
        self.signature = (f"rapidocr-onnxruntime:{version('rapidocr-onnxruntime')}"
                          f"+wordninja:{version('wordninja')}:{SPLIT_RULES}")
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._why_after_close = ""
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            # the worker's stderr goes to a file, not a pipe nobody reads (it would fill and
            # block) and not to nowhere: a broken onnxruntime must say why, not erase all OCR
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives with the worker
            # glibc hands each large buffer (a screenshot's detection maps, tens of MB) back
            # to the kernel when freed and faults it in again for the next image: a third of
            # OCR's time went to page faults. In the worker alone, keep buffers up to 256 MB
            # in the heap; the pool closes its bulk workers after each run, which frees it.
            tunables = ("glibc.malloc.mmap_threshold=268435456"
                        ":glibc.malloc.trim_threshold=536870912")
            env = dict(os.environ)
            env["GLIBC_TUNABLES"] = ":".join(x for x in (env.get("GLIBC_TUNABLES"), tunables) if x)
            command = child_command("vaultlens.extract.ocr", str(self.threads or 0),
                                    str(self.nice), str(os.getpid()))
            stderr = self._stderr

            def make() -> subprocess.Popen[bytes]:
                return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=stderr, env=env)

            self._proc = self.spawner.popen(make) if self.spawner else make()
        return self._proc

    @property
    def cpu_budget(self) -> float:
        """CPU seconds an image may take: the timeout on each of the worker's threads."""
        return self.timeout * (self.threads or os.cpu_count() or 1)

    def start(self) -> None:
        with self._lock:
            self._start()

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _why(self) -> str:
        """The last line the worker wrote to stderr: usually the reason it died."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0, 2)
        self._stderr.seek(max(0, self._stderr.tell() - 4096))
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return f": {lines[-1].strip()}" if lines else ""

    def read(self, image: Image.Image) -> str:
        rgb = image.convert("RGB")
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(f"{rgb.width} {rgb.height}\n".encode() + rgb.tobytes())
                proc.stdin.flush()
            except BrokenPipeError as exc:
                self.close()
                why = self._why_after_close
                log.warning("the OCR worker died%s", why)
                raise OCRError(f"the OCR worker died{why}") from exc
            line = self._readline(proc.stdout, proc.pid)
        if not line:  # b"": the worker's stdout closed, so it died; None: it took too long
            self.close()
            why = self._why_after_close
            if line is not None:
                log.warning("the OCR worker died%s", why)
                raise OCRError(f"the OCR worker died{why}")
            raise OCRError(f"OCR took longer than {self.timeout:.0f} s of its own work")
        answer = json.loads(line)
        if "error" in answer:
            raise OCRError(answer["error"])
        return split_run_together(str(answer["text"]))

    def _readline(self, stream: IO[bytes], pid: int) -> bytes | None:
        """The worker's answer; b"" when its stdout closed; None once the worker has spent its
        CPU budget on this image (wall time where CPU time cannot be read), or after
        ``wall_factor`` times the timeout whatever it spent."""
        box: list[bytes] = []
        reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
        reader.start()
        start, cpu_start = time.monotonic(), _cpu_seconds(pid)
        while reader.is_alive():
            reader.join(0.25)
            wall = time.monotonic() - start
            cpu = _cpu_seconds(pid)
            if cpu is None or cpu_start is None:
                if wall > self.timeout:
                    break
            elif cpu - cpu_start > self.cpu_budget or wall > self.wall_factor * self.timeout:
                break
        return box[0] if box else None

    def close(self) -> None:
        """Stop the worker; what it last said on stderr stays in ``_why_after_close``."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        self._why_after_close = self._why()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class OCRPool:
    """Several OCR workers, so that several images are read at once (one per core: two
    one-thread workers read 1.3x the images of one two-thread worker on 2 cores), and one
    more kept for urgent images (a paste), which never wait behind the cold index's.

    The bulk workers run at a lower priority (nice 10): a search, the indexer's embedding
    batch and an urgent image go first, and the bulk OCR takes the rest of the CPU. Without
    it, on a busy machine the embedding model's threads were descheduled in the middle of
    their parallel sections and a batch took several times as long; and a paste waited."""

    BULK_NICE = 10
    PAUSE_MAX = 5.0  # seconds the bulk workers may be stopped for one urgent image

    def __init__(self, size: int, timeout: float = 30.0) -> None:
        self.size = max(1, size)
        self._spawner = Spawner()
        workers = [OCR(timeout, threads=1, nice=self.BULK_NICE, spawner=self._spawner)
                   for _ in range(self.size)]
        self.signature = workers[0].signature
        # the urgent worker reads one image at a time, as fast as it can: all cores
        self._all = [*workers, OCR(timeout, spawner=self._spawner)]
        self._free: queue.SimpleQueue[OCR] = queue.SimpleQueue()
        for w in workers:
            self._free.put(w)

    def start_urgent(self) -> None:
        """Start the urgent worker now (its models take a second or two to load), so that
        the first paste does not wait for it. The daemon calls this; a CLI run never needs
        the urgent worker."""
        self._all[-1].start()

    def read(self, image: Image.Image, urgent: bool = False) -> str:
        if urgent:
            with self._bulk_paused():
                return self._all[-1].read(image)  # its own lock: one urgent image at a time
        worker = self._free.get()
        try:
            return worker.read(image)
        finally:
            self._free.put(worker)

    @contextmanager
    def _bulk_paused(self) -> Iterator[None]:
        """The bulk workers stopped (SIGSTOP) while an urgent image is read, for at most
        PAUSE_MAX seconds: nice alone left them a fifth of the CPU, and a paste's OCR took
        1.5x as long as on an idle machine. Their reads in progress just take longer."""
        if not hasattr(signal, "SIGSTOP"):  # Windows: nice is all there is
            yield
            return
        pids = [w.pid for w in self._all[:-1] if w.pid is not None]

        def resume() -> None:
            for pid in pids:
                with suppress(OSError):
                    os.kill(pid, signal.SIGCONT)

        timer = threading.Timer(self.PAUSE_MAX, resume)  # a slow urgent image still ends it
        timer.daemon = True
        for pid in pids:
            with suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            resume()

    def rest(self) -> None:
        """Stop the bulk workers until the next image (the end of a run): their memory goes
        back; the urgent worker stays, ready for the next paste."""
        for w in self._all[:-1]:
            w.close()

    def close(self) -> None:
        for w in self._all:
            w.close()
        self._spawner.close()


def _die_with(parent: int) -> None:
    """SIGKILL this worker when its parent dies, stopped or not (Linux; elsewhere the end of
    stdin does it for a running worker); and end now if the parent is already gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if parent and os.getppid() != parent:
        os._exit(0)


def _worker(threads: int, nice: int, parent: int = 0) -> None:
    stdin, stdout = private_streams()  # before any import that might print
    _die_with(parent)
    if nice and hasattr(os, "nice"):
        os.nice(nice)  # this process only, and before its imports: a second of CPU at start
    import numpy as np
    from rapidocr_onnxruntime import RapidOCR

    for name in ("RapidOCR", "rapidocr_onnxruntime", "onnxruntime"):
        logging.getLogger(name).setLevel(logging.WARNING)  # it logs every call at INFO
    engine = RapidOCR(intra_op_num_threads=threads) if threads > 0 else RapidOCR()
    while header := stdin.readline():
        width, height = (int(x) for x in header.split())
        data = stdin.read(width * height * 3)
        try:
            rgb = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
            result, _ = engine(np.ascontiguousarray(rgb[:, :, ::-1]))  # it expects BGR
            answer: dict[str, str] = {"text": _lines(result)}
        except Exception as exc:
            answer = {"error": f"OCR failed: {type(exc).__name__}: {exc}"}
        stdout.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    threads, nice, parent = (int(a) for a in [*sys.argv[1:], "0", "0", "0"][:3])
    _worker(threads, nice, parent)
