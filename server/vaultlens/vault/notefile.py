"""A note's bytes, read whole for parsing: the one size cap, for the indexer and the links
report alike.

A note is a regular file of the vault, opened without blocking (``vault.open_file``), read
here whole, of at most :data:`MAX_NOTE_BYTES`: past that a .md file is not a note anyone
wrote by hand, and parsing it would cost tens of times its size. Each caller words the
refusal for its own answer. ``read`` streams lines a block at a time (``serve/lines.py``) and
never holds a note whole, so its bound is the lines and characters it answers, not this cap.
"""

from __future__ import annotations

from typing import BinaryIO

from vaultlens.vault.vault import Refused

MAX_NOTE_BYTES = 20 * 1024 * 1024
MAX_NOTE_MB = MAX_NOTE_BYTES // 2**20


class NoteTooLarge(Refused):
    """A note over the size cap."""

    def __init__(self, rel: str) -> None:
        super().__init__(rel, f"larger than {MAX_NOTE_MB} MB; not read")


def note_bytes(fh: BinaryIO, rel: str) -> bytes:
    """The note's bytes from where ``fh`` stands; NoteTooLarge past the cap. The cap is held
    to what is read, not to a stat: a note that grew since is refused all the same."""
    data = fh.read(MAX_NOTE_BYTES + 1)
    if len(data) > MAX_NOTE_BYTES:
        raise NoteTooLarge(rel)
    return data

