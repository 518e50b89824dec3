"""The urgent lane as one object: what is asked for is read on its own lane and written
between two model calls of a batch; a stop ends the batch there."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from vaultlens.index.extractor import Extracted
from vaultlens.index.pipeline import ReadAhead
from vaultlens.index.plan import Admitted, UrgentLane
from vaultlens.index.urgent import Serving, Urgent
from vaultlens.index.vectorizer import Stopped
from vaultlens.vault.policy import Policy
from vaultlens.vault.vault import VaultFile


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    (tmp_path / "Pasted.md").write_text("# Pasted\n\nA screenshot's note.\n")
    (tmp_path / "Other.md").write_text("# Other\n")
    return tmp_path


def lane_for(vault: Path, stop: threading.Event) -> Urgent:
    return Urgent(UrgentLane(Policy(vault)), stop, None)


def test_a_stop_ends_the_batch_between_two_model_calls(vault: Path) -> None:
    stop = threading.Event()
    urgent = lane_for(vault, stop)
    urgent.between_calls()  # no stop, no run: nothing to do
    stop.set()
    with pytest.raises(Stopped):
        urgent.between_calls()


def test_a_path_asked_for_is_read_on_its_own_lane_and_written_before_the_batch_goes_on(
        vault: Path) -> None:
    reads: list[tuple[str, str | None, bool]] = []

    def read(f: VaultFile, known: str | None, is_urgent: bool) -> Extracted:
        reads.append((f.path, known, is_urgent))
        return Extracted(f, "hash")

    urgent = lane_for(vault, threading.Event())
    ahead = ReadAhead(read, 1)
    claimed: list[Admitted] = []
    written: list[str] = []
    run = Serving(ahead, claimed.append, lambda f: "known", lambda got: written.append(
        got.file.path))
    try:
        urgent.request(["Pasted.md"])
        assert urgent.waiting() == 1
        with urgent.serving(run):
            urgent.between_calls()
            assert not urgent.reading()
        assert reads == [("Pasted.md", "known", True)]
        assert written == ["Pasted.md"] and urgent.waiting() == 0
        assert [a.paths for a in claimed if a.paths] == [["Pasted.md"]]
        urgent.request(["Other.md"])  # between runs it only queues
        assert not urgent.reading() and urgent.take() == ["Other.md"]
    finally:
        ahead.close()
