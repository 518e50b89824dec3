"""Link resolution the way Obsidian does it (``getFirstLinkpathDest``).

Case-insensitive. ``/x`` is vault-absolute; ``./x`` and ``../x`` are relative to the note; an exact
vault path wins; otherwise any file whose path ends with the link path, those under the note's
own folder first, then the shortest path (fewest folders, then fewest characters, then
alphabetical, so that ties are deterministic).
A link with no extension, or one Obsidian would not open as a file, also tries ``.md``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Resolution:
    path: str | None  # vault-relative path of the file, or None
    reason: str | None = None  # why it did not resolve


class Resolver:
    """Resolves link paths against a fixed set of vault files. Build once per scan."""

    def __init__(self, paths: Iterable[str]) -> None:
        self._exact: dict[str, list[str]] = {}
        self._by_name: dict[str, list[str]] = {}
        for p in paths:
            self.add(p)

    def add(self, path: str) -> None:
        """A file that appeared after the scan (the daemon learns of it from the watcher)."""
        if path not in self._exact.get(path.lower(), ()):
            self._exact.setdefault(path.lower(), []).append(path)
            self._by_name.setdefault(posixpath.basename(path).lower(), []).append(path)

    def resolve(self, link: str, source: str) -> Resolution:
        """Resolve ``link`` as written in the note at vault path ``source``."""
        link = link.strip().replace("\\", "/")
        if not link:
            return Resolution(None, "empty link")
        variants = [link] if link.lower().endswith(".md") else [link, link + ".md"]
        folder = posixpath.dirname(source)

        if link.startswith("/") or link.startswith("./") or link.startswith("../"):
            base = "" if link.startswith("/") else folder
            for v in variants:
                full = posixpath.normpath(posixpath.join(base, v.lstrip("/")))
                if full == ".." or full.startswith("../"):
                    return Resolution(None, f"'{link}' leads outside the vault")
                hit = self._exact_match(full)
                if hit:
                    return Resolution(hit)
            if link.startswith("/"):
                return Resolution(None, f"no file at vault path '{link}'")
            return Resolution(None, f"no file at '{link}' relative to '{folder or '/'}'")

        for v in variants:
            hit = self._exact_match(posixpath.normpath(v))
            if hit:
                return Resolution(hit)
        for v in variants:
            hit = self._suffix_match(posixpath.normpath(v), folder)
            if hit:
                return Resolution(hit)
        return Resolution(None, f"no file named '{link}' in the vault")

    def _exact_match(self, path: str) -> str | None:
        found = self._exact.get(path.lower())
        if not found:
            return None
        return path if path in found else sorted(found)[0]  # exact case beats other cases

    def _suffix_match(self, link: str, folder: str) -> str | None:
        lower = link.lower()
        name = posixpath.basename(lower)
        candidates = [
            p for p in self._by_name.get(name, ())
            if p.lower() == lower or p.lower().endswith("/" + lower)
        ]
        if not candidates:
            return None
        prefix = folder.lower() + "/" if folder else ""

        def rank(p: str) -> tuple[bool, int, int, str]:
            return (not p.lower().startswith(prefix), p.count("/"), len(p), p)

        return min(candidates, key=rank)
