"""What an indexing run reports: live progress, and the summary at the end; and what the
daemon says of a run while it goes (``Pace``: its pace and an honest ETA; ``RunLog``: one line
when a run starts, one every few seconds while it runs, one when the daemon becomes idle).

The ETA is the remaining work at the recent pace. "Work" weighs each file by its kind and
size (``file_work``): a run's first files wait for the model to load, and notes, screenshots
and PDFs cost different amounts, so neither the run's average nor a count of files would do.
Until the pace has been seen for a while it says "estimating" (``eta_s`` None) rather than a
number it cannot stand behind.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from vaultlens.vault.vault import FileKind, VaultFile, is_vector

log = logging.getLogger("vaultlens.serve.indexing")  # the daemon's indexing, in its log

# What a file weighs in a run's work, for its ETA: a note costs about its size (the model reads
# its text); a picture costs its OCR and its description whatever its size, about as much as
# this many bytes of notes; a PDF, its pages, about one picture per 100 kB. Measured on the
# help vault with e5-small and OCR (2 cores): notes embedded alone went at 7 kB/s, a picture's
# OCR took 3.2 s and its description 1.6 s. Most of a picture's cost is its reading (OCR), done
# ahead while notes are embedded: that part counts as done when it is read. The ETA's pace is
# measured in this unit, so only the ratio between kinds matters.
PICTURE_WORK = 32_000.0
PDF_WORK_PER_BYTE = PICTURE_WORK / 100_000
READ_SHARE = 0.65  # of a picture's or PDF's work, done when it is read


@dataclass(frozen=True)
class Progress:
    """A run's files done of ``total`` (the file last taken in ``path``), and the same as
    work (``file_work``: files weighed by kind and size), which is what an ETA can trust."""

    done: int
    total: int
    path: str
    work_done: float = 0.0
    work_total: float = 0.0


def read_work(f: VaultFile) -> float:
    """The part of a file's work done once it is read (its OCR, its PDF pages), before it is
    embedded."""
    return READ_SHARE * file_work(f) if f.kind in (FileKind.IMAGE, FileKind.PDF) else 0.0


def file_work(f: VaultFile) -> float:
    """A file's weight in a run's work (see PICTURE_WORK)."""
    if f.kind == FileKind.NOTE:
        return float(max(f.size, 200))
    if f.kind == FileKind.IMAGE:
        # an SVG's words are read from its XML: an icon costs next to nothing, a drawing
        # about its size as text, at most a picture
        return min(max(float(f.size), 200.0), PICTURE_WORK) if is_vector(f.path) \
            else PICTURE_WORK
    if f.kind == FileKind.PDF:
        return max(PICTURE_WORK, f.size * PDF_WORK_PER_BYTE)
    return float(max(f.size, 200))  # another kind that is read: by its size, as text


@dataclass
class Summary:
    model: str
    visual: bool
    files: int = 0
    items: int = 0
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    renamed: int = 0
    embedded: int = 0
    reused: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    retry: list[dict[str, str]] = field(default_factory=list)
    partial: list[dict[str, str]] = field(default_factory=list)  # indexed in part; retried
    ignored: dict[str, int] = field(default_factory=dict)  # never read, by extension: css: 3
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage: ocr, embed, pdf
    ocr_images: int = 0  # pictures read by OCR this run (cache misses)
    stopped: bool = False  # asked to stop before the work was done

    def timed(self, stage: str, since: float) -> None:
        self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - since, 3)

    def merge(self, timings: dict[str, float], ocr_images: int) -> None:
        """One file's reading: seconds per stage, and pictures read by OCR."""
        for stage, seconds in timings.items():
            self.timings[stage] = round(self.timings.get(stage, 0.0) + seconds, 3)
        self.ocr_images += ocr_images

    def add_not_indexed(self, files: Iterable[NotIndexed]) -> None:
        """The files the catalog holds and does not (fully) index, each in its list."""
        lists = {"skipped": self.skipped, "retry": self.retry, "partial": self.partial}
        for x in files:
            if x.status in lists:
                lists[x.status].append({"path": x.path, "reason": str(x.reason)})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NotIndexed:
    """A file the catalog holds and does not (fully) index, and why: a failure nobody can
    see is never fixed. ``status``: skipped, retry or partial."""

    path: str
    status: str
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "reason": self.reason}


WINDOW_S = 120.0  # the recent pace: work done over the last two minutes
MIN_SECONDS = 10.0  # of pace seen after the first file was done, before an ETA is given
MIN_SHARE = 0.05  # of the run's work done, before an ETA is given
MIN_SAMPLES = 3  # files (or batches of them) done, before an ETA is given
SMALL_RUN = 5  # files: a run this small (a paste, a save) logs one line, at its end
LOG_EVERY_S = 5.0


@dataclass(frozen=True)
class Estimate:
    files_per_s: float | None  # the recent pace; None before a file is done
    eta_s: float | None  # None while estimating (or when nothing runs)


class Pace:
    """One run's pace, from the progress it reports (any thread reads ``estimate``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._samples: deque[tuple[float, int, float]] = deque()  # (t, files, work) done
        self._first: float | None = None  # when the first file was done

    def begin(self) -> None:
        self._samples = deque()
        self._first = None

    def add(self, p: Progress) -> None:
        now = self.clock()
        if p.done == 0 and p.work_done == 0:
            return
        if self._first is None:
            # what comes before the first file done is the model's loading and the first
            # reads: the pace is measured from here
            self._first = now
            self._samples.append((now, p.done, p.work_done))
            return
        if self._samples and (p.done, p.work_done) == self._samples[-1][1:]:
            return
        self._samples.append((now, p.done, p.work_done))
        # keep one sample at or before the window's start, so the window is always full
        while len(self._samples) > 2 and self._samples[1][0] <= now - WINDOW_S:
            self._samples.popleft()

    def estimate(self, p: Progress) -> Estimate:
        samples = list(self._samples)
        if self._first is None or len(samples) < 2:
            return Estimate(None, None)
        now = self.clock()
        t0, files0, work0 = samples[0]
        t1, files1, work1 = samples[-1]
        # files come in batches: the next is due about one usual gap after the last; only
        # the time past that counts as a slower pace (a batch overdue, a machine gone busy)
        gap = (t1 - t0) / (len(samples) - 1)
        overdue = max(now - t1 - gap, 0.0)
        span = max(t1 - t0 + overdue, 1e-3)
        files_per_s = round((files1 - files0) / span, 2)
        work_rate = (work1 - work0) / span
        honest = (len(samples) >= MIN_SAMPLES and now - self._first >= MIN_SECONDS
                  and p.work_total > 0 and p.work_done >= MIN_SHARE * p.work_total
                  and work_rate > 0)
        if not honest:
            return Estimate(files_per_s, None)
        left = max(p.work_total - p.work_done, 0.0) / work_rate
        # counted from the last batch done: within a usual gap the ETA counts down
        return Estimate(files_per_s, round(max(left - min(now - t1, gap), 0.0), 1))


def duration(seconds: float) -> str:
    """42 s, 3 min 05 s, 1 h 02 min."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def shorten(path: str, width: int = 60) -> str:
    """A vault path cut in the middle to ``width`` characters: its folder and its name."""
    if len(path) <= width:
        return path
    keep = width - 1
    return path[: keep // 3] + "…" + path[-(keep - keep // 3):]


def progress_line(p: Progress, e: Estimate) -> str:
    share = f" ({100 * p.done / p.total:.0f}%)" if p.total else ""
    pace = f", {e.files_per_s:.1f} files/s" if e.files_per_s is not None else ""
    eta = f", about {duration(e.eta_s)} left" if e.eta_s is not None else ", ETA estimating"
    now = f"; now {shorten(p.path)}" if p.path else ""
    return f"indexing: {p.done}/{p.total} files{share}{pace}{eta}{now}"


def reasons(summary: Summary, top: int = 3) -> str:
    """The most common reasons files were not (fully) indexed, with their counts."""
    counts: dict[str, int] = {}
    for x in (*summary.skipped, *summary.retry, *summary.partial):
        reason = " ".join(str(x["reason"]).split())
        reason = reason if len(reason) <= 80 else reason[:79] + "…"
        counts[reason] = counts.get(reason, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    shown = "; ".join(f"{n}: {r}" for r, n in ranked[:top])
    more = f"; {len(ranked) - top} other reason(s)" if len(ranked) > top else ""
    return shown + more


def ignored_line(ignored: dict[str, int]) -> str:
    """'86 ignored (a kind nobody searches: svg 81, css 1, ...)', or ''."""
    if not ignored:
        return ""
    kinds = ", ".join(f"{ext or 'no extension'} {n}" for ext, n in ignored.items())
    return f"{sum(ignored.values())} ignored (a kind nobody searches: {kinds})"


def idle_line(summary: Summary, read: int, seconds: float) -> str:
    """The one line a run (or runs back to back) ends with when the daemon becomes idle."""
    problems = len(summary.skipped) + len(summary.retry) + len(summary.partial)
    parts = [f"{summary.files} files, {summary.items} items",
             f"{read} file(s) read in {duration(seconds)}"]
    if summary.removed:
        parts.append(f"{summary.removed} removed")
    if problems:
        parts.append(f"{problems} not (fully) indexed ({reasons(summary)}); "
                     "`vaultlens status` lists them")
    if ignored := ignored_line(summary.ignored):
        parts.append(ignored)
    state = ("stopped before the end" if summary.stopped
             else "the vault is fully searchable")
    return f"idle: {state}: " + "; ".join(parts)


class RunLog:
    """The daemon's log lines about its runs. A run with at most ``SMALL_RUN`` files (the
    watcher's: a paste, a save) logs only its end; one with nothing to read logs nothing
    unless it is the daemon's first."""

    def __init__(self, pace: Pace) -> None:
        self.pace = pace
        self._busy_since: float | None = None  # the first run of this busy spell began
        self._read = 0  # files read in this busy spell
        self._loud = False  # this spell had a run big enough for progress lines
        self._last_line = 0.0
        self._said_idle = False
        self._said_error: str | None = None

    def started(self, total: int) -> None:
        """A run's diff is done: ``total`` files to read."""
        now = self.pace.clock()
        if self._busy_since is None:
            self._busy_since = now
        if total > SMALL_RUN:
            self._loud = True
            self._last_line = now
            log.info("indexing: %d file(s) to read; progress every %.0f s", total, LOG_EVERY_S)

    def tick(self, p: Progress) -> None:
        """Called every few seconds while a run goes."""
        if p.total > SMALL_RUN and self.pace.clock() - self._last_line >= LOG_EVERY_S - 0.5:
            self._last_line = self.pace.clock()
            log.info("%s", progress_line(p, self.pace.estimate(p)))

    def ended(self, read: int) -> None:
        """A run ended, having read ``read`` files."""
        self._read += read
        if self._busy_since is None:
            self._busy_since = self.pace.clock()

    def idle(self, summary: Summary | None, error: str | None) -> None:
        """The daemon has nothing more to do: one line for the spell since it was busy."""
        seconds = self.pace.clock() - (self._busy_since or self.pace.clock())
        worth = self._read > 0 or not self._said_idle or self._loud
        if error is not None:
            if error != self._said_error:  # a disk that stays full is retried, and said once
                log.warning("idle: the last run failed (%s); searches answer from the index "
                            "as it was", error)
        elif summary is not None and worth:
            log.info("%s", idle_line(summary, self._read, seconds))
        self._busy_since, self._read, self._loud, self._said_idle = None, 0, False, True
        self._said_error = error
