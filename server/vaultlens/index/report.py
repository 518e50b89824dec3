"""What an indexing run reports: live progress, and the summary at the end."""

from __future__ import annotations

import time
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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
