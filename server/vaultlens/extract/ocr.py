"""Text inside images: RapidOCR with its bundled PP-OCR models (English and Chinese), offline.

OCR runs in a worker process. onnxruntime crashes the process when it is imported after usearch
(seen with onnxruntime 1.32 and usearch 2.26); in its own process it cannot, a hostile image that
crashes the OCR engine costs only the worker, and OCR can run beside the embedder on another core.
The worker is a child of ``vaultlens.workers``: its hello is its threads and niceness, each
request a picture's width, height and raw RGB bytes, each answer the picture's text.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from importlib.metadata import version
from typing import Any

from PIL import Image

from vaultlens.children import Spawner
from vaultlens.errors import VaultlensError
from vaultlens.heap import give_back
from vaultlens.workers import (
    BadFrame,
    CpuClock,
    Declined,
    Handler,
    Recipe,
    Worker,
    WorkerDied,
    WorkerTimeout,
    serve,
)

log = logging.getLogger(__name__)
MIN_CONFIDENCE = 0.5
_LONG_WORD = re.compile(r"[A-Za-z]{7,}")


SHORT_WORDS = frozenset(
    "a an as at be by do go if in is it me my no of on or so to up us we".split())
SPLIT_RULES = "v2"  # part of the OCR signature: changing the rules reads images again
# text boxes recognised per model call. RapidOCR's default (6) pads every box of a batch to
# the widest one's width, and a screenshot's lines differ widely in width: one box a call
# does no padding, and reads the spaces between words better (decisions/0009-ocr-settings.md)
REC_BATCH = 1
# detection at the picture's own size: RapidOCR's default ("min", 736) enlarges any picture
# less than 736 px on its short side, so a 1280 x 480 screenshot was searched for text at
# 1963 x 736, 2.4 times the pixels, for the same boxes. "max" never enlarges (and shrinks
# only past 2000 px, which WORK_SIDE and RapidOCR's own max_side_len already bound)
DET_LIMIT_TYPE = "max"
# ... and never on more than this many pixels on the longer side ("max" would take 2000 for
# a picture past 1500): a 3000-pixel retina screenshot is detected on 1500 x 900, where its
# lines are still found, and the detector's buffers stay a quarter the size. Recognition
# still reads each line from the picture at its full working size
DET_MAX_SIDE = 1500
# (the three settings above are not part of the OCR signature: they change word breaks and
# speed, not what a picture says, which is not worth reading every cached picture again)

# a worker holding more than this after an image hands its free heap back to the kernel;
# below it, the buffers stay for the next image (faulting them in again cost a third of
# OCR's time). Above a screenshot's own working set (models plus a 1280 x 720 picture's
# buffers: 260-390 MB after each), so a worker reading screenshots trims about once in ten
TRIM_ABOVE_MB = 400


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


class OCRError(VaultlensError, RuntimeError):
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


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise BadFrame(f"not text: {type(value).__name__}")
    return value


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
        self.threads = threads  # onnxruntime's threads in the worker (None: its default)
        self.nice = nice  # the worker's niceness: background OCR yields to everything else
        self.signature = (f"rapidocr-onnxruntime:{version('rapidocr-onnxruntime')}"
                          f"+wordninja:{version('wordninja')}:{SPLIT_RULES}")
        # glibc hands each large buffer (a screenshot's detection maps, tens of MB) back to
        # the kernel when freed and faults it in again for the next image: a third of OCR's
        # time went to page faults. In the worker alone, keep buffers up to 256 MB in the
        # heap; the worker trims it when an image leaves it above TRIM_ABOVE_MB, and the
        # pool stops its bulk workers when idle (BULK_IDLE_S) and after each run.
        tunables = ("glibc.malloc.mmap_threshold=268435456"
                    ":glibc.malloc.trim_threshold=536870912")
        env = {"GLIBC_TUNABLES": ":".join(
            x for x in (os.environ.get("GLIBC_TUNABLES"), tunables) if x)}
        # it dies with the daemon: one the daemon stopped (SIGSTOP, while an urgent image is
        # read) never reads the end of its requests; ``spawner`` (None: the calling thread)
        # starts it from a thread that lives as long as the pool
        self.child = Worker(Recipe("vaultlens.extract.ocr", hello=(threads or 0, nice),
                                   env=env, die_with_parent=True), spawner)

    @property
    def cpu_budget(self) -> float:
        """CPU seconds an image may take: the timeout on each of the worker's threads."""
        return self.timeout * (self.threads or os.cpu_count() or 1)

    def start(self) -> None:
        self.child.start()

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self.child.pid

    def read(self, image: Image.Image) -> str:
        """The image's text. The worker has its CPU budget for it (wall time where CPU time
        cannot be read), and at most ``wall_factor`` times the timeout whatever it spent."""
        rgb = image.convert("RGB")
        clock = CpuClock(self.cpu_budget, self.wall_factor * self.timeout, self.timeout)
        try:
            text = self.child.request((rgb.width, rgb.height, rgb.tobytes()), clock, _text)
        except Declined as exc:
            raise OCRError(str(exc)) from exc
        except WorkerTimeout as exc:
            raise OCRError(f"OCR took longer than {self.timeout:.0f} s of its own work") from exc
        except BadFrame as exc:
            log.warning("the OCR worker answered out of step (%s)", exc)
            raise OCRError(f"the OCR worker answered out of step ({exc}); it is restarted"
                           ) from exc
        except WorkerDied as exc:
            why = f": {exc.last_words}" if exc.last_words else ""
            log.warning("the OCR worker died%s", why)
            raise OCRError(f"the OCR worker died{why}") from exc
        return split_run_together(text)

    def close(self) -> None:
        """Stop the worker now (a read in progress fails)."""
        self.child.kill()


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
    # seconds without a bulk image before the bulk workers stop: each holds a few hundred MB
    # (its models and the buffers of the largest picture it read) that a run reading notes,
    # or a daemon at rest, does not need; a new one loads its models in a second or two, which
    # a pause this long between images (a dozen screenshots' reading) makes small
    BULK_IDLE_S = 15.0

    def __init__(self, size: int, timeout: float = 30.0, idle_s: float | None = None) -> None:
        self.size = max(1, size)
        self.idle_s = self.BULK_IDLE_S if idle_s is None else idle_s
        # reads in progress on the bulk workers, and the idle timer: the bulk workers are
        # stopped only while no read holds one (a stop mid-read would fail that image)
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._idle_timer: threading.Timer | None = None
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
        with self._busy_lock:
            self._busy += 1
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        worker = self._free.get()
        try:
            return worker.read(image)
        finally:
            self._free.put(worker)
            with self._busy_lock:
                self._busy -= 1
                if self._busy == 0:
                    self._idle_timer = threading.Timer(self.idle_s, self._stop_idle_bulk)
                    self._idle_timer.daemon = True
                    self._idle_timer.start()

    def _stop_idle_bulk(self) -> None:
        """The timer's end: the bulk workers stop if no read took one since it was set."""
        with self._busy_lock:
            if self._busy == 0 and self._idle_timer is not None:
                self._idle_timer = None
                for w in self._all[:-1]:
                    w.close()

    def bulk_pids(self) -> list[int]:
        """The running bulk workers' process ids (none at rest)."""
        return [pid for w in self._all[:-1] if (pid := w.pid) is not None]

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
        with self._busy_lock:
            for w in self._all[:-1]:
                w.close()

    def close(self) -> None:
        with self._busy_lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        for w in self._all:
            w.close()
        self._spawner.close()


def _rss_mb() -> float:
    """This process's resident memory (0 where /proc cannot say)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _heap_trimmer() -> Callable[[], None]:
    """What the worker calls after each image: the heap's free memory goes back to the kernel
    when the worker holds more than TRIM_ABOVE_MB. The heap keeps large buffers (see OCR's
    malloc tunables), so a worker would otherwise stay as large as the largest picture it
    ever read made it (1.4 GB after the help vault's 3000-pixel screenshots). A no-op where
    glibc's malloc_trim is missing (heap.py)."""

    def trim() -> None:
        if _rss_mb() > TRIM_ABOVE_MB:
            give_back()

    return trim


def _cap_detection(engine: Any, side: int) -> None:
    """Detection at most ``side`` pixels on its longer side, never enlarged. RapidOCR picks the
    size by the picture's class (960, 1500, 2000) and takes no setting for it, so its
    detector's chooser is replaced; a RapidOCR without that chooser keeps its own sizes."""
    try:
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess
    except ImportError:
        return
    det = getattr(engine, "text_det", None)
    if det is None or not hasattr(det, "get_preprocess"):
        return
    det.get_preprocess = lambda _longer: DetPreProcess(side, "max", det.mean, det.std)


def setup(hello: tuple[int, int]) -> Handler:
    """The worker's side: at its niceness, RapidOCR's models loaded; each request is a
    picture's width, height and RGB bytes, and its answer the picture's lines of text."""
    threads, nice = hello
    if nice and hasattr(os, "nice"):
        os.nice(nice)  # this process only, and before its imports: a second of CPU at start
    import numpy as np
    from rapidocr_onnxruntime import RapidOCR

    for name in ("RapidOCR", "rapidocr_onnxruntime", "onnxruntime"):
        logging.getLogger(name).setLevel(logging.WARNING)  # it logs every call at INFO
    settings: dict[str, Any] = {"rec_batch_num": REC_BATCH, "det_limit_type": DET_LIMIT_TYPE}
    if threads > 0:
        settings["intra_op_num_threads"] = threads
    engine = RapidOCR(**settings)
    _cap_detection(engine, DET_MAX_SIDE)
    trim = _heap_trimmer()

    def read(request: tuple[int, int, bytes]) -> str:
        width, height, data = request
        try:
            rgb = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
            result, _ = engine(np.ascontiguousarray(rgb[:, :, ::-1]))  # it expects BGR
        except Exception as exc:
            raise Declined(f"OCR failed: {type(exc).__name__}: {exc}") from exc
        finally:
            del request, data
            trim()
        return _lines(result)

    return read


if __name__ == "__main__":
    serve(setup)
