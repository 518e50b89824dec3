"""Walking a vault: which files exist, what kind each is, and the Obsidian settings that matter.

Obsidian itself hides every file and folder whose name starts with a dot (its config folder,
.trash, .git); we do the same, plus ``node_modules``, the configured config folder, the user's
exclusion globs and Obsidian's own "Excluded files" (``userIgnoreFilters`` in app.json).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif"}
)
ALWAYS_SKIPPED_DIRS = frozenset({".obsidian", ".trash", ".git", "node_modules"})

# Obsidian names a pasted screenshot "Pasted image YYYYMMDDhhmmss.png", " 1", " 2" on clashes.
_PASTED = re.compile(r"^Pasted image (\d{14})(?: \d+)?\.[A-Za-z0-9]+$")


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
    path = root / config_dir / "app.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return VaultSettings(), []
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


class Exclusions:
    """The user's globs plus Obsidian's filters (a path prefix, or /regex/)."""

    def __init__(self, globs: Sequence[str], obsidian_filters: Sequence[str]) -> None:
        self._globs = [g.strip("/") for g in globs if g.strip("/")]
        self._prefixes: list[str] = []
        self._regexes: list[re.Pattern[str]] = []
        self.problems: list[Problem] = []
        for f in obsidian_filters:
            if len(f) > 2 and f.startswith("/") and f.endswith("/"):
                try:
                    self._regexes.append(re.compile(f[1:-1]))
                except re.error as exc:
                    self.problems.append(Problem("app.json", f"bad exclusion regex {f}: {exc}"))
            elif f.strip():
                self._prefixes.append(f.lstrip("/").lower())

    def excluded(self, rel: str, is_dir: bool) -> bool:
        for g in self._globs:
            if fnmatch.fnmatchcase(rel, g) or (is_dir and fnmatch.fnmatchcase(rel + "/", g)):
                return True
        probe = (rel + "/" if is_dir else rel).lower()
        if any(probe.startswith(p) for p in self._prefixes):
            return True
        return any(r.search(rel) for r in self._regexes)


def ignored(rel: str, config_dir: str, rules: Exclusions) -> bool:
    """Would scan() leave this vault-relative path out? (The watcher asks for each event.)"""
    parts = rel.split("/")
    if any(p.startswith(".") or p in ALWAYS_SKIPPED_DIRS or p == config_dir for p in parts):
        return True
    folders = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
    return any(rules.excluded(f, True) for f in folders) or rules.excluded(rel, False)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan(root: Path, config_dir: str = ".obsidian", exclude: Sequence[str] = ()) -> Vault:
    """Every file Obsidian would show, minus exclusions, with its kind and stat."""
    root = Path(root)
    settings, problems = read_settings(root, config_dir)
    rules = Exclusions(exclude, settings.ignore_filters)
    vault = Vault(root=root, settings=settings, problems=problems + rules.problems)
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
        if is_link and not _inside(os.path.realpath(entry.path), real_root):
            problems.append(Problem(rel, "symlink points outside the vault; not followed"))
            continue
        if is_dir:
            # A folder link inside the vault leads to a folder walked at its real path
            # anyway; never following folder links also rules out loops.
            if is_link or rules.excluded(rel, True):
                continue
            yield from _walk(Path(entry.path), rel + "/", real_root, skipped, rules, problems)
        elif is_file and not rules.excluded(rel, False):
            yield rel, entry
