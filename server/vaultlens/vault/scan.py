"""Walking a vault: every file Obsidian would show, minus what the policy leaves out, with
its kind and stat.

The walk asks the vault's :class:`Policy` (``policy.py``) folder by folder, the same rules the
watcher, reindex and the urgent lane ask path by path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from vaultlens.vault.policy import Exclusions, Policy
from vaultlens.vault.vault import LINK_OUT, Problem, Vault, VaultFile, file_kind, leads_out


def scan(root: Path, config_dir: str = ".obsidian", exclude: Sequence[str] = ()) -> Vault:
    """Every file Obsidian would show, minus exclusions, with its kind and stat."""
    return scan_with(Policy(root, config_dir, exclude))


def scan_with(policy: Policy) -> Vault:
    """The scan, under ``policy``'s rules as they are now."""
    settings, problems, rules = policy.current()
    vault = Vault(root=policy.root, settings=settings, problems=list(problems))
    overruns: list[Problem] = []
    walk = _Walk(policy, rules, vault.problems, overruns)
    for rel, entry in walk.files(policy.root, ""):
        try:
            st = entry.stat()
        except OSError as exc:
            vault.problems.append(Problem(rel, f"cannot stat: {exc.strerror or exc}"))
            continue
        vault.files.append(VaultFile(rel, file_kind(rel), st.st_size, st.st_mtime_ns))
    vault.files.sort(key=lambda f: f.path)
    # after the walk: the rules that do not compile, and a regex that overran on the way
    vault.problems += rules.problems + overruns
    return vault


class _Walk:
    def __init__(self, policy: Policy, rules: Exclusions, problems: list[Problem],
                 overruns: list[Problem]) -> None:
        self.policy, self.rules = policy, rules
        self.problems, self.overruns = problems, overruns

    def files(self, top: Path, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        try:
            entries = sorted(os.scandir(top), key=lambda e: e.name)
        except OSError as exc:
            self.problems.append(Problem(prefix or ".",
                                         f"cannot list folder: {exc.strerror or exc}"))
            return
        for entry in entries:
            if self.policy.skips_name(entry.name):
                continue
            rel = prefix + entry.name
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir()  # follows links
                is_file = entry.is_file()
            except OSError as exc:
                self.problems.append(Problem(rel, f"cannot stat: {exc.strerror or exc}"))
                continue
            if is_link and leads_out(entry.path, self.policy.real_root):
                self.problems.append(Problem(rel, LINK_OUT))
                continue
            if is_dir:
                # A folder link inside the vault leads to a folder walked at its real path
                # anyway; never following folder links also rules out loops.
                if is_link or self.rules.excluded(rel, True, self.overruns):
                    continue
                yield from self.files(Path(entry.path), rel + "/")
            elif is_file and not self.rules.excluded(rel, False, self.overruns):
                yield rel, entry
