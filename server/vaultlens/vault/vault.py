"""Walking a vault: which files exist, what kind each is, and the Obsidian settings that matter.

Obsidian itself hides every file and folder whose name starts with a dot (its config folder,
.trash, .git); we do the same, plus ``node_modules``, the configured config folder, the user's
exclusion globs and Obsidian's own "Excluded files" (``userIgnoreFilters`` in app.json).

The live path (file events, the urgent lane, reading a file, serving a picture) holds one path
at a time to the scan's rules through :func:`check_file`, :func:`open_file` and
:class:`LiveRules`, so a link or a rule made after the scan is refused all the same.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import regex

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif"}
)
ALWAYS_SKIPPED_DIRS = frozenset({".obsidian", ".trash", ".git", "node_modules"})

# Obsidian names a pasted screenshot "Pasted image YYYYMMDDhhmmss.png", " 1", " 2" on clashes.
_PASTED = re.compile(r"^Pasted image (\d{14})(?: \d+)?\.[A-Za-z0-9]+$")

LINK_OUT = "symlink points outside the vault; not followed"
LINKED_FOLDER = "a folder link; its folder is indexed at its real path"
NOT_REGULAR = "not a regular file (a pipe, socket, device or folder); not read"
# An exclusion /regex/ is matched with a backtracking engine: one rule and one file name can
# take exponential time, so each match gets this long. A match that overruns counts as a match:
# a rule the user wrote to hide files must never stop hiding them (it fails closed, for that
# path alone; the rule goes on for every other path).
REGEX_TIMEOUT = 0.05  # seconds per rule and path
MAX_SETTINGS_BYTES = 4 * 2**20  # app.json is a few KB; more is not Obsidian's


def file_kind(path: str) -> str:
    """note, image, pdf or other, by extension (case-insensitive)."""
    ext = PurePosixPath(path).suffix.lower()
    if ext == ".md":
        return "note"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext == ".pdf":
        return "pdf"
    return "other"


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
    kind: str
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

    def by_kind(self, kind: str) -> list[VaultFile]:
        return [f for f in self.files if f.kind == kind]


_APP_KEYS: dict[str, tuple[str, type]] = {
    "attachmentFolderPath": ("attachment_folder", str),
    "newLinkFormat": ("new_link_format", str),
    "useMarkdownLinks": ("use_markdown_links", bool),
}


def read_settings(root: Path, config_dir: str = ".obsidian") -> tuple[VaultSettings, list[Problem]]:
    """Read app.json. A missing file means defaults; a broken one is reported, never fatal."""
    rel = f"{config_dir}/app.json"
    try:  # as a note is opened: a FIFO or a link out of the vault is refused, never waited on
        with open_file(root, rel) as fh:
            raw = fh.read(MAX_SETTINGS_BYTES)
    except FileNotFoundError:
        return VaultSettings(), []
    except Refused as exc:
        return VaultSettings(), [Problem(rel, exc.reason)]
    except OSError as exc:
        return VaultSettings(), [Problem(rel, f"cannot read: {exc.strerror or exc}")]
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return VaultSettings(), [Problem(rel, f"not valid JSON ({exc}); using Obsidian's defaults")]
    if not isinstance(data, dict):
        return VaultSettings(), [Problem(rel, "not a JSON object; using Obsidian's defaults")]
    problems: list[Problem] = []
    values: dict[str, object] = {}
    for key, (attr, typ) in _APP_KEYS.items():
        if key not in data:
            continue
        if isinstance(data[key], typ):
            values[attr] = data[key]
        else:
            problems.append(Problem(rel, f"{key} should be {typ.__name__}; using the default"))
    filters = data.get("userIgnoreFilters", [])
    if isinstance(filters, list) and all(isinstance(x, str) for x in filters):
        values["ignore_filters"] = tuple(filters)
    else:
        problems.append(Problem(rel, "userIgnoreFilters should be a list of strings; ignored"))
    return VaultSettings(**values), problems  # type: ignore[arg-type]


_overran: set[str] = set()  # rules already logged as too slow: said once per process


class Exclusions:
    """The user's globs plus Obsidian's filters (a path prefix, or /regex/). Thread-safe: the
    rule list is only ever replaced whole."""

    def __init__(self, globs: Sequence[str], obsidian_filters: Sequence[str]) -> None:
        self._globs = [g.strip("/") for g in globs if g.strip("/")]
        self._prefixes: list[str] = []
        self._regexes: list[tuple[str, regex.Pattern[str]]] = []
        self.problems: list[Problem] = []
        for f in obsidian_filters:
            if len(f) > 2 and f.startswith("/") and f.endswith("/"):
                try:
                    self._regexes.append((f, regex.compile(f[1:-1])))
                except regex.error as exc:
                    self.problems.append(Problem("app.json", f"bad exclusion regex {f}: {exc}"))
            elif f.strip():
                self._prefixes.append(f.lstrip("/").lower())

    def _matches(self, rel: str) -> bool:
        for rule, pattern in self._regexes:
            try:
                # concurrent: the GIL is let go, so a slow match stalls no other thread
                if pattern.search(rel, timeout=REGEX_TIMEOUT, concurrent=True):
                    return True
            except TimeoutError:
                what = (f"exclusion regex {rule} took over {REGEX_TIMEOUT * 1000:.0f} ms on "
                        f"{rel!r}; that path is left out (rewrite the rule in Obsidian's "
                        "Excluded files)")
                self.problems.append(Problem(rel, what))
                if rule not in _overran:
                    _overran.add(rule)
                    log.warning("%s", what)
                return True
        return False

    def excluded(self, rel: str, is_dir: bool) -> bool:
        for g in self._globs:
            if fnmatch.fnmatchcase(rel, g) or (is_dir and fnmatch.fnmatchcase(rel + "/", g)):
                return True
        probe = (rel + "/" if is_dir else rel).lower()
        if any(probe.startswith(p) for p in self._prefixes):
            return True
        return self._matches(rel)


def ignored(rel: str, config_dir: str, rules: Exclusions) -> bool:
    """Would scan() leave this vault-relative path out? (The watcher asks for each event.)"""
    parts = rel.split("/")
    if any(p.startswith(".") or p in ALWAYS_SKIPPED_DIRS or p == config_dir for p in parts):
        return True
    folders = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
    return any(rules.excluded(f, True) for f in folders) or rules.excluded(rel, False)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _leads_out(path: str, real_root: str) -> bool:
    """The one test of a link, for the scan and the live path alike: where it resolves."""
    return not _inside(os.path.realpath(path), real_root)


class LiveRules:
    """What scan() would leave out, as app.json says now: it is read again whenever its stat
    changes, so Excluded files set in Obsidian while the daemon runs apply to the next path
    asked about; an unchanged file costs one stat. Thread-safe."""

    def __init__(self, root: Path, config_dir: str, exclude: Sequence[str]) -> None:
        self.root, self.config_dir, self.exclude = Path(root), config_dir, tuple(exclude)
        self.settings_path = self.root / config_dir / "app.json"
        self._lock = threading.Lock()
        self._stamp = self._stat()  # before the read: a change in between is read next time
        self._rules = self._read()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.settings_path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _read(self) -> Exclusions:
        settings, _ = read_settings(self.root, self.config_dir)
        return Exclusions(self.exclude, settings.ignore_filters)

    def current(self) -> Exclusions:
        stamp = self._stat()
        with self._lock:
            if stamp != self._stamp:
                self._stamp, self._rules = stamp, self._read()
            return self._rules

    def ignored(self, rel: str) -> bool:
        return ignored(rel, self.config_dir, self.current())


class Refused(Exception):
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
            if _leads_out(path, real_root):
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


def live_file(root: Path, rel: str, rules: LiveRules) -> VaultFile | Problem | None:
    """One path as scan() would see it now: the file, or the Problem the scan reports for it,
    or None (excluded, or gone), which the scan passes over in silence."""
    if rules.ignored(rel):
        return None
    try:
        st = check_file(root, rel)
    except Refused as exc:
        return Problem(exc.path, exc.reason)
    except OSError:
        return None
    return VaultFile(rel, file_kind(rel), st.st_size, st.st_mtime_ns)


def scan(root: Path, config_dir: str = ".obsidian", exclude: Sequence[str] = ()) -> Vault:
    """Every file Obsidian would show, minus exclusions, with its kind and stat."""
    root = Path(root)
    settings, problems = read_settings(root, config_dir)
    rules = Exclusions(exclude, settings.ignore_filters)
    vault = Vault(root=root, settings=settings, problems=problems)
    real_root = os.path.realpath(root)
    skipped = ALWAYS_SKIPPED_DIRS | {config_dir}
    for rel, entry in _walk(root, "", real_root, skipped, rules, vault.problems):
        try:
            st = entry.stat()
        except OSError as exc:
            vault.problems.append(Problem(rel, f"cannot stat: {exc.strerror or exc}"))
            continue
        vault.files.append(VaultFile(rel, file_kind(rel), st.st_size, st.st_mtime_ns))
    vault.files.sort(key=lambda f: f.path)
    vault.problems += rules.problems  # after the walk: a regex that overran on the way too
    return vault


def _walk(
    top: Path,
    prefix: str,
    real_root: str,
    skipped: frozenset[str],
    rules: Exclusions,
    problems: list[Problem],
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError as exc:
        problems.append(Problem(prefix or ".", f"cannot list folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name in skipped:
            continue
        rel = prefix + entry.name
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir()  # follows links
            is_file = entry.is_file()
        except OSError as exc:
            problems.append(Problem(rel, f"cannot stat: {exc.strerror or exc}"))
            continue
        if is_link and _leads_out(entry.path, real_root):
            problems.append(Problem(rel, LINK_OUT))
            continue
        if is_dir:
            # A folder link inside the vault leads to a folder walked at its real path
            # anyway; never following folder links also rules out loops.
            if is_link or rules.excluded(rel, True):
                continue
            yield from _walk(Path(entry.path), rel + "/", real_root, skipped, rules, problems)
        elif is_file and not rules.excluded(rel, False):
            yield rel, entry
