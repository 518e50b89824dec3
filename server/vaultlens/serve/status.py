"""What /api/status (and MCP's status tool, which asks the same) answers: the index's status
(``Workspace.status``, shared with `vaultlens status`) and the indexing thread's."""

from __future__ import annotations

import time
from typing import Any

from vaultlens.index.report import Progress
from vaultlens.serve.indexing import IndexService
from vaultlens.workspace import IndexStatus


def daemon_state(service: IndexService, ready: bool) -> str:
    """What the daemon is doing: loading (the query model; searches are keyword-only),
    indexing, starting (loaded, the first run not begun: not yet up to date) or idle."""
    if not ready:
        return "loading"
    if service.running:
        return "indexing"
    if service.indexer is not None and service.runs == 0:
        return "starting"
    return "idle"


def daemon_status(index: IndexStatus, service: IndexService, ready: bool,
                  started: float) -> dict[str, Any]:
    progress = service.progress()
    return {
        "ok": True,
        "vault": index.vault,
        "model": index.model,
        "model_url": index.model_url,
        "visual_search": index.visual,
        "vector_search_ready": ready,
        "notice": index.notice,
        "counts": index.counts,
        "vectors": index.vectors,
        "state": daemon_state(service, ready),
        "indexing": service.running,
        "queue": service.waiting() + max(progress.total - progress.done, 0),
        "writer": service.indexer is not None,
        "progress": {"done": progress.done, "total": progress.total,
                     "current": progress.path or None, **_pace(service, progress)},
        "runs": service.runs,
        "last_run": service.last.to_json() if service.last else None,
        "last_error": service.last_error,
        "problem": service.problem,
        "repairs": service.repairs[-5:],
        "failures": [x.to_json() for x in index.not_indexed],
        "uptime_s": round(time.time() - started, 1),
    }


def _pace(service: IndexService, progress: Progress) -> dict[str, float | None]:
    """Files per second in the current run, and the seconds it still needs at that pace."""
    if not service.running or progress.done == 0:
        return {"files_per_s": None, "eta_s": None}
    rate = progress.done / max(time.monotonic() - service.run_started, 1e-3)
    return {"files_per_s": round(rate, 2),
            "eta_s": round(max(progress.total - progress.done, 0) / rate, 1)}
