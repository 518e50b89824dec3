"""What an indexing run reports: live progress, and the summary at the end."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    path: str


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
