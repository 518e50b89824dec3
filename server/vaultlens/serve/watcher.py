"""File events → the indexing thread. Events are hints: the indexer confirms each with stat and
hash, and the periodic reconcile catches whatever events were missed.

Events are sorted on a thread, not on the event loop: an exclusion /regex/ can take its whole
time limit on a path, and lstat on a slow disk blocks. Each path is held to the scan's rules
as they are now by the vault's one ``Policy`` (app.json is read again when it changes; its
file check is the scan's test of links and file kinds): the watcher follows folder links
into places the scan never enters, the data dir among them, and an event from there must
never wake the indexer, whose own writes would then wake it forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable

from watchfiles import Change, awatch

from vaultlens.serve.indexing import IndexService
from vaultlens.vault.policy import Policy
from vaultlens.vault.vault import FileKind, Refused, file_kind

log = logging.getLogger(__name__)


def sort_events(changes: Iterable[tuple[Change, str]],
                policy: Policy) -> tuple[list[str], bool]:
    """The vault paths to index now (notes first), and whether a reconcile is due: something
    went, a folder changed, a file the scan refuses (it reports it) or app.json changed (the
    rules apply to files already indexed too)."""
    settings, real_root = policy.settings_path, policy.real_root
    present: list[str] = []
    gone = False
    for change, path in changes:
        rel = os.path.relpath(path, real_root).replace(os.sep, "/")
        if rel.startswith(".."):
            continue
        if rel == settings:
            gone = True
            continue
        if policy.excluded(rel):
            continue
        try:
            policy.check(rel)
        except Refused as exc:
            if exc.path != rel:
                continue  # inside a folder link: the scan never goes there
            gone = True  # the file itself is refused: the scan says why, and drops an old row
            continue
        except OSError:
            gone = True  # deleted, or a folder event: the reconcile sorts it out
            continue
        if change == Change.deleted:
            gone = True
        else:
            present.append(rel)
    # notes (and canvases) before images: the note that places a new screenshot lands with it
    present.sort(key=lambda p: (file_kind(p) != FileKind.NOTE, p))
    return present, gone


async def watch(policy: Policy, service: IndexService, stop: asyncio.Event,
                debounce_ms: int = 150) -> None:
    real_root = policy.real_root
    # no watch_filter: it would run on the loop; every batch is sorted on a thread instead
    async for changes in awatch(real_root, watch_filter=None, debounce=debounce_ms,
                                step=50, stop_event=stop, recursive=True):
        present, gone = await asyncio.to_thread(sort_events, changes, policy)
        log.debug("events: %d present, gone=%s", len(present), gone)
        if present:
            service.request(present)
        if gone:
            service.reconcile()
