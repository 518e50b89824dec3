"""One indexing run's bookkeeping: what the catalog held at its start, what is left to read
and embed, and how much is done, counted in files and in weighed work (``report.file_work``:
what the ETA is measured in)."""

from __future__ import annotations

from dataclasses import dataclass

from vaultlens.index.catalog import FileRow
from vaultlens.index.plan import Plan
from vaultlens.index.prepared import Prepared
from vaultlens.index.report import Summary, file_work, read_work
from vaultlens.vault.links import Resolver
from vaultlens.vault.vault import VaultFile


@dataclass
class RunState:
    """Shared by the run's loop and the urgent files it serves between embedding chunks.
    Invariant: ``work_done`` counts a file's reading when it is read and the rest of its
    ``file_work`` when it is written, so a file done counts exactly its ``file_work``."""

    summary: Summary
    rows: dict[str, FileRow]  # the catalog's files at the start of the run
    resolver: Resolver
    kinds: dict[str, str]
    gone_hashes: set[str]  # hashes of removed files: a new path with one is a rename
    dirty: set[str]  # images and PDFs whose notes' links changed: described again at the end
    plan: Plan[Prepared]  # what is still to read, and what is read and waits for vectors
    done: int = 0
    work_done: float = 0.0
    work_total: float = 0.0

    def finished(self, f: VaultFile) -> None:
        """A file done in one step: settled without vectors, or read and written at once."""
        self.done += 1
        self.work_done += file_work(f)

    def read(self, f: VaultFile) -> None:
        """A file read (OCR, PDF pages), its vectors still to come."""
        self.work_done += read_work(f)

    def written(self, files: list[VaultFile]) -> None:
        """Files read before and now embedded and written."""
        self.done += len(files)
        self.work_done += sum(file_work(f) - read_work(f) for f in files)
