"""The indexing run's scheduling (index/plan.py), as plain logic: no threads, no models."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from vaultlens.index.plan import Now, Plan, Step, UrgentLane
from vaultlens.vault.policy import Policy
from vaultlens.vault.vault import LINK_OUT, VaultFile


def vf(path: str) -> VaultFile:
    kind = "note" if path.endswith(".md") else "image" if path.endswith(".png") else "pdf"
    return VaultFile(path, kind, 1, 1)


def plan(files: Sequence[str] = (), batch: int = 10) -> Plan[int]:
    """A plan whose pending items are their own input counts."""
    return Plan([vf(p) for p in files], lambda n: n, batch)


def test_notes_and_other_files_queue_apart_in_path_order() -> None:
    p = plan(["b.md", "z.png", "a.pdf", "a.md"])
    assert [f.path for f in p.notes] == ["a.md", "b.md"]
    assert [f.path for f in p.others] == ["a.pdf", "z.png"]


def test_a_stop_comes_before_anything_even_a_finished_read() -> None:
    p = plan(["a.md"])
    p.hold(3)
    assert p.next(Now(stopping=True, ready=True, urgent_reading=True, in_flight=2)) is Step.STOP


def test_a_finished_read_is_taken_before_waiting_on_anything() -> None:
    p = plan(["a.md"])
    p.hold(3)
    assert p.next(Now(ready=True, urgent_reading=True, in_flight=2, loaded=False)) is Step.TAKE


def test_while_an_urgent_file_is_read_no_batch_is_embedded() -> None:
    """The cores are the urgent file's: a pending batch, nothing else coming, still waits."""
    p = plan()
    p.hold(50)
    assert p.next(Now(urgent_reading=True, in_flight=1)) is Step.WAIT_URGENT


def test_a_batch_waits_for_the_model_while_it_loads() -> None:
    p = plan()
    p.hold(1)
    assert p.next(Now(loaded=False)) is Step.WAIT_MODEL
    assert p.next(Now(loaded=True)) is Step.FLUSH


def test_the_pending_batch_is_embedded_when_nothing_more_comes_at_once() -> None:
    p = plan(["a.md"])
    p.hold(1)
    assert p.next(Now()) is Step.LINGER  # a file is still to read: wait a moment for it
    p.notes.clear()
    assert p.next(Now(in_flight=1)) is Step.LINGER  # a read is in flight: the same
    assert p.next(Now()) is Step.FLUSH  # nothing else: embed now


def test_nothing_pending_waits_for_reads_and_ends_when_all_is_done() -> None:
    p = plan(["a.png"])
    assert p.next(Now()) is Step.WAIT
    p.others.clear()
    assert p.next(Now(in_flight=1)) is Step.WAIT
    assert p.next(Now()) is Step.DONE


def test_a_full_batch_needs_the_model() -> None:
    p = plan(batch=10)
    p.hold(6)
    assert not p.batch_full(loaded=True)
    p.hold(4)
    assert p.batch_full(loaded=True)
    assert not p.batch_full(loaded=False)


def test_batches_are_cut_at_about_the_batch_size_and_a_stop_puts_one_back_first() -> None:
    p = plan(batch=10)
    for n in (4, 4, 4, 30, 1):
        p.hold(n)
    assert p.cut() == [4, 4, 4]  # up to the first that reaches the size
    assert p.cut() == [30]  # one file larger than a batch still goes, alone
    p.put_back([30])
    assert p.pending == [30, 1]
    assert p.cut() == [30]
    assert p.cut() == [1]
    assert p.cut() == [] and p.pending == []


def test_an_urgent_path_leaves_the_queues_it_waited_in() -> None:
    p = plan(["a.md", "b.md", "c.png"])
    p.claim("b.md")
    p.claim("c.png")
    p.claim("not-queued.md")
    assert [f.path for f in p.notes] == ["a.md"] and not p.others
    assert p.left() == 1


def test_what_a_stop_leaves_undone() -> None:
    p = plan()
    assert not p.unfinished(in_flight=0)
    assert p.unfinished(in_flight=1)
    p.hold(1)
    assert p.unfinished(in_flight=0)


@pytest.fixture()
def vault(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    (root / ".obsidian").mkdir(parents=True)
    (root / "Paste.png").write_bytes(b"png")
    (root / "Note.md").write_text("# Note\n")
    (root / ".obsidian" / "workspace.json").write_text("{}")
    outside = tmp_path / "outside.md"
    outside.write_text("secret")
    os.symlink(outside, root / "Out.md")
    return root


def test_the_urgent_lane_admits_files_as_the_scan_would(vault: Path) -> None:
    lane = UrgentLane(Policy(vault, ".obsidian", ()))
    lane.request(["Note.md", "Gone.md", "Out.md", ".obsidian/workspace.json", "Paste.png",
                  "Busy.md"])
    assert lane.waiting() == 6
    got = lane.admit(reading={"Busy.md"})
    assert lane.waiting() == 0
    # every path taken leaves the run's queues, except the one being read already
    assert got.paths == ["Note.md", "Gone.md", "Out.md", ".obsidian/workspace.json",
                         "Paste.png"]
    assert [(f.path, f.kind) for f in got.files] == [("Note.md", "note"), ("Paste.png", "image")]
    assert [(p.path, p.reason) for p in got.refused] == [("Out.md", LINK_OUT)]
    assert lane.admit(reading=set()).paths == []  # taken once


def test_the_urgent_lane_keeps_what_is_asked_until_a_run_takes_it(vault: Path) -> None:
    lane = UrgentLane(Policy(vault, ".obsidian", ()))
    lane.request(["Note.md"])
    lane.request(["Paste.png"])
    assert lane.take() == ["Note.md", "Paste.png"]
    assert lane.take() == []
