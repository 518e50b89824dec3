"""What a vault holds: its files, their kinds, and the one test of whether a vault-relative
path names a file the scan would take.

:func:`check_file` and :func:`open_file` are that test (no link out of the vault, no folder
link on the way, regular files alone, an open that never blocks); which paths are in scope at
all is ``policy.py``'s, and the walk is ``scan.py``'s.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from vaultlens.errors import VaultlensError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".svg"}
)
# A drawing, not pixels: an image kind whose words are read from its XML (extract/svg.py)
# and whose pixels are rendered in the PDF reader's child, never decoded by Pillow.
VECTOR_EXTENSIONS = frozenset({".svg"})
# A JSON Canvas board: a note kind, whose text cards are its passages (vault/canvas.py).
CANVAS_EXTENSION = ".canvas"

# Obsidian names a pasted screenshot "Pasted image YYYYMMDDhhmmss.png", " 1", " 2" on clashes.
_PASTED = re.compile(r"^Pasted image (\d{14})(?: \d+)?\.[A-Za-z0-9]+$")

LINK_OUT = "symlink points outside the vault; not followed"
LINKED_FOLDER = "a folder link; its folder is indexed at its real path"
NOT_REGULAR = "not a regular file (a pipe, socket, device or folder); not read"


class FileKind(StrEnum):
    """What a vault file is, by its extension; the value is what the catalog stores."""

    NOTE = "note"
    IMAGE = "image"
    PDF = "pdf"
    OTHER = "other"


def file_kind(path: str) -> FileKind:
    """note, image, pdf or other, by extension (case-insensitive). A canvas is a note (its
    cards are passages), an SVG an image."""
    ext = PurePosixPath(path).suffix.lower()
    if ext in (".md", CANVAS_EXTENSION):
        return FileKind.NOTE
    if ext in IMAGE_EXTENSIONS:
        return FileKind.IMAGE
    if ext == ".pdf":
        return FileKind.PDF
    return FileKind.OTHER


def is_vector(path: str) -> bool:
    """An SVG: an image that Pillow must never be asked to decode."""
    return PurePosixPath(path).suffix.lower() in VECTOR_EXTENSIONS


def pasted_at(name: str) -> datetime | None:
    """The paste time encoded in an Obsidian pasted-image file name, or None."""
    m = _PASTED.match(PurePosixPath(name).name)
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    except ValueError:
        return None


@dataclass(frozen=True)
class VaultSettings:
    """What we read from ``<config_dir>/app.json``; missing keys keep Obsidian's defaults."""

    attachment_folder: str = "/"
    new_link_format: str = "shortest"
    use_markdown_links: bool = False
    ignore_filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class VaultFile:
    path: str  # vault-relative, POSIX separators, as on disk
    kind: FileKind
    size: int
    mtime_ns: int

    @property
    def pasted_at(self) -> datetime | None:
        return pasted_at(self.path)


@dataclass(frozen=True)
class Problem:
    """Something we could not read; the path is vault-relative."""

    path: str
    reason: str


@dataclass
class Vault:
    root: Path
    settings: VaultSettings
    files: list[VaultFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def by_kind(self, kind: FileKind) -> list[VaultFile]:
        return [f for f in self.files if f.kind == kind]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def leads_out(path: str, real_root: str) -> bool:
    """The one test of a link, for the scan and the live path alike: where it resolves."""
    return not _inside(os.path.realpath(path), real_root)


class Refused(VaultlensError):
    """The scan would not take this file: ``path`` is the entry it refuses (the file, or a
    folder link on the way to it), ``reason`` the scan's words for it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason

    def of(self, rel: str) -> str:
        """The reason, as said of ``rel``."""
        return self.reason if self.path == rel else str(self)


def check_file(root: Path | str, rel: str) -> os.stat_result:
    """The stat of vault-relative ``rel`` if scan() would take it as a file; raises Refused,
    or OSError when it is not there. The scan never enters a folder link and follows a file
    link only inside the vault, and it takes regular files alone: so here every folder on the
    way must be a real folder (lstat) and the file must resolve inside the vault to a regular
    file."""
    real_root = os.path.realpath(root)
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise Refused(rel, "not a path inside the vault")
    path = real_root
    for i, name in enumerate(parts):
        path = os.path.join(path, name)
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            here = "/".join(parts[: i + 1])
            if leads_out(path, real_root):
                raise Refused(here, LINK_OUT)
            if i < len(parts) - 1:
                raise Refused(here, LINKED_FOLDER)
            st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise Refused(rel, NOT_REGULAR)
    return st


def open_file(root: Path | str, rel: str) -> BinaryIO:
    """Open a file check_file() passes, for reading. The open never blocks (a FIFO swapped in
    after the check opens at once, and is refused), and what was opened is the file checked:
    same device and inode, or Refused."""
    checked = check_file(root, rel)
    fd = os.open(os.path.join(os.path.realpath(root), rel), os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(rel, NOT_REGULAR)
        if (st.st_dev, st.st_ino) != (checked.st_dev, checked.st_ino):
            raise Refused(rel, "replaced while being opened; not read")
        # O_NONBLOCK does nothing to reads of a regular file
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


