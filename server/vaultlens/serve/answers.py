"""What the service answers: typed, for the MCP tools in this process, and as the API's JSON.

``to_json`` is what the API sends; ``from_json`` reads it back where the tools ask a daemon
over HTTP, so the tools render one type whichever way the answer came.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vaultlens.search.pack import Entry, Pack
from vaultlens.vault.vault import FileKind


@dataclass(frozen=True)
class Partial:
    """Whether an answer may miss something, and why: ``reason`` is "model loading" (keywords
    alone: the query model is loading, or failed for this search) or "indexing" (files are
    still to be indexed); ``indexed_share`` is the share of the vault's files indexed (1.0
    when complete)."""

    partial: bool = False
    reason: str | None = None
    indexed_share: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {"partial": self.partial, "partial_reason": self.reason,
                "indexed_share": self.indexed_share}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Partial:
        return cls(bool(data.get("partial", False)), data.get("partial_reason"),
                   float(data.get("indexed_share", 1.0)))

    def sentence(self) -> str | None:
        """What a model reading the answer must be told, in plain words; None when whole."""
        if not self.partial:
            return None
        done = f"{self.indexed_share:.0%} done"
        if self.reason == "indexing":
            return (f"The vault is still being indexed ({done}); results may be "
                    "incomplete.")
        if self.reason == "index incomplete":
            return ("The last indexing run failed before the end (`vaultlens status` says "
                    "why); results may be incomplete.")
        return (f"The search model is still loading, so these results are ranked by keywords "
                f"alone (the vault is indexed {done}); results may be incomplete.")


@dataclass(frozen=True)
class Found:
    """A search's hits (as the API lists them), and whether they may miss something."""

    results: list[dict[str, Any]]
    partial: Partial
    took_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"results": self.results, **self.partial.to_json(), "took_ms": self.took_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Found:
        return cls(data["results"], Partial.from_json(data), data.get("took_ms", 0.0))


@dataclass(frozen=True)
class Similar:
    results: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"results": self.results}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Similar:
        return cls(data["results"])


@dataclass(frozen=True)
class Packed:
    """A context pack, and whether it may miss something (``Partial``)."""

    pack: Pack
    partial: Partial
    took_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"pack": self.pack.to_json(), **self.partial.to_json(), "took_ms": self.took_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Packed:
        return cls(Pack.from_json(data["pack"]), Partial.from_json(data), data["took_ms"])


@dataclass(frozen=True)
class NoteLines:
    path: str
    start_line: int
    end_line: int  # the last line given (start_line - 1 when none was)
    total_lines: int
    text: str
    truncated: str | None  # why the text stops short of end_line, if it does

    def to_json(self) -> dict[str, Any]:
        return {"kind": FileKind.NOTE, "path": self.path, "start_line": self.start_line,
                "end_line": self.end_line, "total_lines": self.total_lines,
                "text": self.text, "truncated": self.truncated}


@dataclass(frozen=True)
class Picture:
    """An image or PDF page read: the pack entry of its picture and where it is placed."""

    kind: str  # a FileKind: image | pdf
    entry: Entry
    token_rule: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "entry": self.entry.to_json(), "token_rule": self.token_rule}


Read = NoteLines | Picture


def read_from_json(data: dict[str, Any]) -> Read:
    if data["kind"] == FileKind.NOTE:
        return NoteLines(data["path"], data["start_line"], data["end_line"],
                         data["total_lines"], data["text"], data.get("truncated"))
    return Picture(data["kind"], Entry.from_json(data["entry"]), data["token_rule"])
