"""What /api/status (and MCP's status tool, which asks the same) answers: the index's status
(``Workspace.status``, shared with `vaultlens status`) and the indexing thread's; how complete
the index is, which every search answer carries (``coverage``); and the status in a person's
words (`vaultlens status`, with the daemon's state found through daemon.json) and a model's
(MCP's status tool). Real problems are listed (a few, unless all are asked for), the most
serious first; files of a kind nobody searches are counted in one line."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from vaultlens.errors import Invalid, Unavailable
from vaultlens.index.datadir import DataDir
from vaultlens.index.report import duration, ignored_line
from vaultlens.serve.answers import Partial
from vaultlens.serve.indexing import IndexService
from vaultlens.serve.proof import LOCAL, ours
from vaultlens.workspace import IndexStatus

MODEL_LOADING = "model loading"
INDEXING = "indexing"
INCOMPLETE = "index incomplete"  # the last run failed; the next one tries again
SHOWN_FAILURES = 10  # failures listed unless all are asked for


@dataclass(frozen=True)
class Coverage:
    """Whether a search now sees the whole vault, and if not why: the query model is loading
    (keywords alone) or files are still to be indexed. ``share``: of the vault's files a run
    reads, those indexed (1.0 when complete)."""

    partial: bool
    reason: str | None  # None | "model loading" | "indexing" | "index incomplete"
    share: float


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


def coverage(service: IndexService, ready: bool) -> Coverage:
    """How complete the index is for a search now. Before the first run has sized its work
    (the model loading, the scan) a writer does not know yet: an empty catalog is 0.0."""
    p = service.progress()
    sized = service.running and p.total > 0
    if sized:
        # what is left of this run, against the files it reads and those already settled
        searchable = max(service.searchable(), p.total)
        share = 1.0 - (p.total - p.done) / max(searchable, 1)
    elif service.indexer is not None and service.runs == 0:
        share = 1.0 if service.searchable() > 0 else 0.0
    else:
        share = 1.0
    share = round(min(max(share, 0.0), 1.0), 3)
    if not ready:
        return Coverage(True, MODEL_LOADING, share)
    if (sized and p.done < p.total) or (service.indexer is not None and service.runs == 0):
        return Coverage(True, INDEXING, share)
    if not service.running and (service.last_error or service.problem):
        done = round(p.done / p.total, 3) if p.total else 0.0
        return Coverage(True, INCOMPLETE, min(share, done))
    return Coverage(False, None, 1.0)


def daemon_status(index: IndexStatus, service: IndexService, ready: bool,
                  started: float) -> dict[str, Any]:
    progress = service.progress()
    estimate = service.estimate()
    cover = coverage(service, ready)
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
                     "current": progress.path or None,
                     "files_per_s": estimate.files_per_s, "eta_s": estimate.eta_s,
                     # "estimating": indexing, and too early for an ETA to be honest
                     "eta": ("estimating" if service.running and estimate.eta_s is None
                             else None)},
        "partial": cover.partial,
        "partial_reason": cover.reason,
        "indexed_share": cover.share,
        "runs": service.runs,
        "last_run": service.last.to_json() if service.last else None,
        "last_error": service.last_error,
        "problem": service.problem,
        "repairs": service.repairs[-5:],
        "failures": [x.to_json() for x in index.not_indexed],
        "ignored": index.ignored,
        "uptime_s": round(time.time() - started, 1),
    }


def ask_daemon(data: DataDir, vault: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """The /api/status of the daemon that serves this vault (found by daemon.json, and sent
    the token only once it proved it holds it), with its ``port``; None when none answers."""
    info = data.daemon_info()
    if info is None:
        return None
    port = int(info["port"])
    token = data.token()
    if not ours(port, token, timeout):
        return None
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with LOCAL.open(request, timeout=timeout) as resp:
            answer = json.loads(resp.read(4 << 20))
    except (OSError, ValueError, urllib.error.URLError):
        return None
    if not isinstance(answer, dict) or not answer.get("ok") or answer.get("vault") != vault:
        return None
    return {**answer, "port": port}


def search_daemon(data: DataDir, vault: str, query: str, k: int,
                  timeout: float = 30.0) -> dict[str, Any] | None:
    """The answer of the daemon that serves this vault to /api/search: its query model is
    warm, where a command of its own would load one while indexing holds the cores. None when
    no daemon serves the vault; a refusal of the query is raised as the daemon words it."""
    daemon = ask_daemon(data, vault)
    if daemon is None:
        return None
    body = json.dumps({"query": query, "k": k}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{daemon['port']}/api/search", data=body, method="POST",
        headers={"Authorization": f"Bearer {data.token()}",
                 "Content-Type": "application/json"})
    try:
        with LOCAL.open(request, timeout=timeout) as resp:
            answer = json.loads(resp.read(64 << 20))
    except urllib.error.HTTPError as exc:
        raise Invalid(f"the daemon refused the search: {_said(exc)}") from exc
    except (OSError, ValueError) as exc:
        raise Unavailable(f"the daemon at port {daemon['port']} did not answer the search: "
                          f"{exc}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
        raise Unavailable(f"the daemon at port {daemon['port']} answered the search oddly")
    return answer


def _said(exc: urllib.error.HTTPError) -> str:
    """The message of an API error body, or its HTTP status."""
    try:
        body = json.loads(exc.read(65536))
        return str(body["error"]["message"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"HTTP {exc.code}"


def partial_now(data: DataDir, vault: str) -> Partial:
    """Whether a search of this vault's index may miss something now: what the daemon that
    serves it says (still loading or indexing); complete when none runs."""
    daemon = ask_daemon(data, vault)
    return Partial() if daemon is None else Partial.from_json(daemon)


def daemon_summary(s: dict[str, Any]) -> dict[str, Any]:
    """What the daemon is doing, from its /api/status: state, progress, pace, ETA."""
    p = s.get("progress") or {}
    return {"state": s.get("state"), "port": s.get("port"), "uptime_s": s.get("uptime_s"),
            "done": p.get("done"), "total": p.get("total"), "current": p.get("current"),
            "files_per_s": p.get("files_per_s"), "eta_s": p.get("eta_s"),
            "partial": s.get("partial"), "partial_reason": s.get("partial_reason"),
            "indexed_share": s.get("indexed_share"), "last_error": s.get("last_error"),
            "problem": s.get("problem")}


def daemon_line(d: dict[str, Any] | None, place: bool = True) -> str:
    """One line: what the daemon serving the vault does now (``place``: with its port and
    uptime), or that none runs."""
    if d is None:
        return "no daemon running (start one with `vaultlens serve`)"
    up = f"up {duration(float(d.get('uptime_s') or 0))}"
    where = f"port {d['port']}, {up}" if place else up
    state = d.get("state")
    if state == "indexing" and d.get("total"):
        pace = f", {d['files_per_s']:.1f} files/s" if d.get("files_per_s") is not None else ""
        eta = (f", about {duration(d['eta_s'])} left" if d.get("eta_s") is not None
               else ", ETA estimating")
        return f"indexing {d['done']}/{d['total']} files{pace}{eta} ({where})"
    trouble = d.get("problem") or d.get("last_error")
    if state == "idle" and trouble:
        return (f"idle, but the last run did not finish: {trouble}; the next run tries again "
                f"({where})")
    if state == "idle":
        return f"idle: the vault is fully searchable ({where})"
    if state == "loading":
        return f"loading the search model; searches use keywords meanwhile ({where})"
    return f"{state} ({where})"


def failure_lines(failures: list[dict[str, Any]], show_all: bool) -> list[str]:
    shown = failures if show_all else failures[:SHOWN_FAILURES]
    lines = [f"  {x['status']:>8} {x['path']}: {x['reason']}" for x in shown]
    if len(failures) > len(shown):
        lines.append(f"  ... and {len(failures) - len(shown)} more (`vaultlens status --all` "
                     "lists them all)")
    return lines


def status_json(s: IndexStatus, daemon: dict[str, Any] | None) -> dict[str, Any]:
    """`vaultlens status --json`: the index's status and the daemon's (None: none runs)."""
    return {"vault": s.vault, "data_dir": s.data_dir, "model": s.model,
            "model_url": s.model_url, "visual": s.visual, "notice": s.notice,
            "vectors": s.vectors, **s.counts,
            "skipped": [x.to_json() for x in s.not_indexed], "ignored": s.ignored,
            "daemon": daemon_summary(daemon) if daemon is not None else None}


def status_text(s: IndexStatus, daemon: dict[str, Any] | None, show_all: bool) -> str:
    """`vaultlens status`: one field a line, the daemon's state, then what was not indexed."""
    data = status_json(s, daemon)
    lines = [f"{key:>16}: {value}" for key, value in data.items()
             if key not in ("skipped", "ignored", "daemon")
             and not (key == "model_url" and value is None)]
    summary = daemon_summary(daemon) if daemon is not None else None
    lines.append(f"{'daemon':>16}: {daemon_line(summary)}")
    if ignored := ignored_line(s.ignored):
        lines.append(f"{'other files':>16}: {ignored}")
    failures: list[dict[str, Any]] = data["skipped"]
    lines.append(f"{'not indexed':>16}: {len(failures)}")
    # each with its reason: a failure nobody can see is never fixed
    lines += failure_lines(failures, show_all)
    return "\n".join(lines)


def mcp_status(s: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """MCP's status tool: a short text and a compact structure (a model's context is
    precious: a few failures and the count of the rest, the ignored files as counts)."""
    failures: list[dict[str, Any]] = s.get("failures") or []
    compact = {"vault": s.get("vault"), "model": s.get("model"),
               "visual_search": s.get("visual_search"),
               "vector_search_ready": s.get("vector_search_ready"), "writer": s.get("writer"),
               "indexing": s.get("indexing"), "runs": s.get("runs"), "counts": s.get("counts"),
               **daemon_summary(s), "ignored": s.get("ignored") or {},
               "failures": failures[:SHOWN_FAILURES],
               "more_failures": max(len(failures) - SHOWN_FAILURES, 0)}
    compact.pop("port", None)
    counts = s.get("counts") or {}
    text = [f"{counts.get('files', 0)} files, {counts.get('items', 0)} items indexed with "
            f"{s.get('model')}; visual search {'on' if s.get('visual_search') else 'off'}.",
            f"Daemon: {daemon_line(daemon_summary(s), place=False)}."]
    if ignored := ignored_line(s.get("ignored") or {}):
        text.append(f"{ignored}.")
    text.append(f"{len(failures)} file(s) not (fully) indexed" + (":" if failures else "."))
    text += failure_lines(failures, False)
    return "\n".join(text), compact
