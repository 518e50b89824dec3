"""The resident memory of a process and all its descendants (a daemon and its workers), for
the benches: psutil where installed, else /proc (Linux)."""

from __future__ import annotations

from pathlib import Path


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    try:
        import psutil  # type: ignore[import-untyped,import-not-found,unused-ignore]

        root = psutil.Process(pid)
        return [pid, *(c.pid for c in root.children(recursive=True))]
    except ImportError:
        pass
    except Exception:  # the process is gone
        return []
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def process_rss_mb(pid: int) -> float:
    """One process's RSS; 0 for one that ended."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass  # a worker that ended between the listing and the read
    return 0.0


def rss_mb(pid: int) -> float:
    return sum(process_rss_mb(p) for p in set(tree_pids(pid)))


def name(pid: int) -> str:
    """A process's role, from its command line: the daemon, or its worker's module."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    if "-m" in args and args.index("-m") + 1 < len(args):
        module = args[args.index("-m") + 1]
        return "daemon" if module == "vaultlens" else module.rsplit(".", 1)[-1]
    return Path(args[0]).name if args else "?"


def breakdown(pid: int) -> list[tuple[str, float]]:
    """Each process of the tree, by role, and its RSS in MB, the heaviest first."""
    rows = [(name(p), process_rss_mb(p)) for p in set(tree_pids(pid))]
    return sorted(rows, key=lambda r: -r[1])
