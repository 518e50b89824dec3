"""Which vault paths are ours: the one exclusion policy, asked by the scan, the watcher,
reindex and the urgent lane alike.

Obsidian hides every file and folder whose name starts with a dot (its config folder,
.trash, .git); so do we, plus ``node_modules``, the configured config folder (whatever its
name), the user's ``--exclude`` globs and Obsidian's own "Excluded files"
(``userIgnoreFilters`` in app.json: path prefixes and ``/regex/`` rules). The data dir, when
it sits in the vault, is a dot folder; a link to it elsewhere is a folder link, which the
file check refuses.

:class:`Policy` reads app.json again whenever its stat changes, so Excluded files set in
Obsidian while the daemon runs apply to the next path asked about, whoever asks; an unchanged
file costs one stat.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import regex

from vaultlens.vault.vault import (
    Problem,
    Refused,
    VaultFile,
    VaultSettings,
    check_file,
    file_kind,
    open_file,
)

log = logging.getLogger(__name__)

ALWAYS_SKIPPED_DIRS = frozenset({".obsidian", ".trash", ".git", "node_modules"})
# An exclusion /regex/ is matched with a backtracking engine: one rule and one file name can
# take exponential time, so each match gets this long. A match that overruns counts as a match:
# a rule the user wrote to hide files must never stop hiding them (it fails closed, for that
# path alone; the rule goes on for every other path).
REGEX_TIMEOUT = 0.05  # seconds per rule and path
MAX_SETTINGS_BYTES = 4 * 2**20  # app.json is a few KB; more is not Obsidian's

EXCLUDED_NAME = "a dot file or folder, node_modules or the config folder"
EXCLUDED_BY_RULE = "matches Obsidian's excluded files or --exclude"

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
    """The user's globs plus Obsidian's filters (a path prefix, or /regex/). Immutable once
    built, so any thread may ask; ``problems`` are the rules that could not be compiled."""

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

    def _matches(self, rel: str, overruns: list[Problem] | None) -> bool:
        for rule, pattern in self._regexes:
            try:
                # concurrent: the GIL is let go, so a slow match stalls no other thread
                if pattern.search(rel, timeout=REGEX_TIMEOUT, concurrent=True):
                    return True
            except TimeoutError:
                what = (f"exclusion regex {rule} took over {REGEX_TIMEOUT * 1000:.0f} ms on "
                        f"{rel!r}; that path is left out (rewrite the rule in Obsidian's "
                        "Excluded files)")
                if overruns is not None:
                    overruns.append(Problem(rel, what))
                if rule not in _overran:
                    _overran.add(rule)
                    log.warning("%s", what)
                return True
        return False

    def excluded(self, rel: str, is_dir: bool, overruns: list[Problem] | None = None) -> bool:
        """Whether a rule leaves ``rel`` out; a regex that overran on it is added to
        ``overruns`` (the scan reports them), and counts as a match."""
        for g in self._globs:
            if fnmatch.fnmatchcase(rel, g) or (is_dir and fnmatch.fnmatchcase(rel + "/", g)):
                return True
        probe = (rel + "/" if is_dir else rel).lower()
        if any(probe.startswith(p) for p in self._prefixes):
            return True
        return self._matches(rel, overruns)


class Policy:
    """The vault's scope, as app.json says now. Thread-safe: the rules are replaced whole."""

    def __init__(self, root: Path | str, config_dir: str = ".obsidian",
                 exclude: Sequence[str] = ()) -> None:
        self.root, self.config_dir, self.exclude = Path(root), config_dir, tuple(exclude)
        self.real_root = os.path.realpath(self.root)
        self.settings_path = f"{config_dir}/app.json"  # vault-relative
        self._skipped = ALWAYS_SKIPPED_DIRS | {config_dir}
        self._lock = threading.Lock()
        self._stamp = self._stat()  # before the read: a change in between is read next time
        self._read = self._load()

    # the rules, read again when app.json changes ---------------------------------------
    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.root / self.settings_path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _load(self) -> tuple[VaultSettings, list[Problem], Exclusions]:
        settings, problems = read_settings(self.root, self.config_dir)
        return settings, problems, Exclusions(self.exclude, settings.ignore_filters)

    def current(self) -> tuple[VaultSettings, list[Problem], Exclusions]:
        """app.json's settings, what is wrong with it, and the exclusion rules, all from one
        reading of it (the one in force now)."""
        stamp = self._stat()
        with self._lock:
            if stamp != self._stamp:
                self._stamp, self._read = stamp, self._load()
            return self._read

    def rules(self) -> Exclusions:
        """The exclusion rules as they are now."""
        return self.current()[2]

    # scope -------------------------------------------------------------------------------
    def skips_name(self, name: str) -> bool:
        """A file or folder left out by its name alone, wherever it is."""
        return name.startswith(".") or name in self._skipped

    def refusal(self, rel: str, overruns: list[Problem] | None = None) -> str | None:
        """Why the scan leaves vault-relative ``rel`` out, or None when it is in scope (the
        file check aside: see :meth:`check`)."""
        parts = rel.split("/")
        if any(self.skips_name(p) for p in parts):
            return EXCLUDED_NAME
        rules = self.rules()
        folders = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        if any(rules.excluded(f, True, overruns) for f in folders) or \
                rules.excluded(rel, False, overruns):
            return EXCLUDED_BY_RULE
        return None

    def excluded(self, rel: str) -> bool:
        """Would the scan leave this vault-relative path out by the rules?"""
        return self.refusal(rel) is not None

    # the file check ----------------------------------------------------------------------
    def check(self, rel: str) -> os.stat_result:
        """The stat of ``rel`` if the scan would take it as a file: Refused (a link out, a
        folder link on the way, not a regular file), or OSError when it is not there."""
        return check_file(self.real_root, rel)

    def file(self, rel: str) -> VaultFile | Problem | None:
        """One path as the scan would see it now: the file, or the Problem the scan reports
        for it, or None (excluded, or gone), which the scan passes over in silence."""
        if self.excluded(rel):
            return None
        try:
            st = self.check(rel)
        except Refused as exc:
            return Problem(exc.path, exc.reason)
        except OSError:
            return None
        return VaultFile(rel, file_kind(rel), st.st_size, st.st_mtime_ns)
