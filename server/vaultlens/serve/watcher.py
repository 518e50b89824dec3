"""File events → the indexing thread. Events are hints: the indexer confirms each with stat and
hash, and the periodic reconcile catches whatever events were missed."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from watchfiles import Change, awatch

from vaultlens.serve.service import IndexService
from vaultlens.vault.vault import Exclusions, ignored, read_settings

log = logging.getLogger(__name__)


async def watch(root: Path, config_dir: str, exclude: tuple[str, ...], service: IndexService,
                stop: asyncio.Event, debounce_ms: int = 150) -> None:
    settings, _ = read_settings(root, config_dir)
    rules = Exclusions(exclude, settings.ignore_filters)
    real_root = os.path.realpath(root)

    def relevant(change: Change, path: str) -> bool:
        rel = os.path.relpath(path, real_root).replace(os.sep, "/")
        return not rel.startswith("..") and not ignored(rel, config_dir, rules)

    async for changes in awatch(real_root, watch_filter=relevant, debounce=debounce_ms,
                                step=50, stop_event=stop, recursive=True):
        present, gone = [], False
        for change, path in changes:
            rel = os.path.relpath(path, real_root).replace(os.sep, "/")
            if change == Change.deleted or not os.path.isfile(path):
                gone = True  # a deleted file, or a folder event: the reconcile sorts it out
            else:
                present.append(rel)
        # notes before images: the note that embeds a new screenshot lands with it
        present.sort(key=lambda p: (not p.lower().endswith(".md"), p))
        log.debug("events: %d present, gone=%s", len(present), gone)
        if present:
            service.request(present)
        if gone or not present:
            service.reconcile()
