"""The ``vaultlens`` command: one sub-command per job, each a small function wiring the modules."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from tqdm import tqdm

from vaultlens import cli_parser, config
from vaultlens.embedders.registry import known_models, pull
from vaultlens.errors import VaultlensError
from vaultlens.evaluate import EvalError, evaluate_vault, load_queries, report
from vaultlens.index.datadir import DataDir, daemon_info, data_dir_for
from vaultlens.index.report import Progress, Summary, ignored_line
from vaultlens.index.sqlite_library import stop_memory_statistics
from vaultlens.vault.context import LinkedVault, PlacementLink, link_vault
from vaultlens.vault.notes import NoteParser
from vaultlens.vault.placements import EXTERNAL
from vaultlens.vault.scan import scan
from vaultlens.workspace import open_workspace


def read_vault(cfg: config.Config) -> LinkedVault:
    """Scan, parse and link a vault: what every later stage starts from."""
    vault = scan(cfg.vault, cfg.config_dir, cfg.exclude)
    return link_vault(vault, NoteParser(), cfg.context_chars)


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _print_link(link: PlacementLink, out: TextIO) -> None:
    where = f"{link.note}:{link.line}"
    heads = " > ".join(link.headings)
    target = link.target or f"{link.placement.target}  [{link.reason}]"
    page = f" page {link.placement.page}" if link.placement.page else ""
    print(f"{target}{page}  ← {where}" + (f"  ({heads})" if heads else ""), file=out)
    for c in link.context:
        span = f"{c.start}-{c.end}" if c.end != c.start else str(c.start)
        print(f"    {span:>9} {c.role:<10} {_one_line(c.text, 90)}", file=out)


def cmd_links(args: argparse.Namespace, out: TextIO) -> int:
    linked = read_vault(config.from_args(args))
    if args.json:
        json.dump([link.to_json() for link in linked.links], out, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        for link in linked.links:
            _print_link(link, out)
        orphans = linked.unplaced()
        unresolved = sum(1 for x in linked.links if x.target is None and x.kind != EXTERNAL)
        external = sum(1 for x in linked.links if x.kind == EXTERNAL)
        print(
            f"\n{len(linked.links)} image/PDF embeds in {len(linked.notes)} notes: "
            f"{unresolved} unresolved, {external} external; "
            f"{len(orphans)} images/PDFs embedded nowhere",
            file=out,
        )
        for path in orphans:
            print(f"  not embedded: {path}", file=out)
    for p in linked.problems:
        print(f"vaultlens: {p.path}: {p.reason}", file=sys.stderr)
    return 0


def _print_summary(s: Summary, out: TextIO) -> None:
    print(f"{s.files} files, {s.items} items: {s.indexed} indexed, {s.unchanged} unchanged, "
          f"{s.removed} removed, {s.renamed} renamed; {s.embedded} embedded, "
          f"{s.reused} from cache; {s.seconds:.1f} s", file=out)
    print(f"model {s.model} (visual search {'on' if s.visual else 'OFF'})", file=out)
    if ignored := ignored_line(s.ignored):
        print(ignored, file=out)
    groups: dict[str, list[str]] = {}
    for x in s.skipped:
        groups.setdefault(x["reason"], []).append(x["path"])
    if groups:
        print(f"skipped {len(s.skipped)}:", file=out)
    for reason, paths in sorted(groups.items(), key=lambda g: -len(g[1])):
        more = f" (+{len(paths) - 3} more)" if len(paths) > 3 else ""
        print(f"  {len(paths):>4}: {reason}: {', '.join(paths[:3])}{more}", file=out)
    for x in s.retry:
        print(f"  will retry: {x['path']}: {x['reason']}", file=out)
    if s.partial:
        print(f"indexed in part, to be tried again {len(s.partial)}:", file=out)
    for x in s.partial:
        print(f"  {x['path']}: {x['reason']}", file=out)


def cmd_index(args: argparse.Namespace, out: TextIO) -> int:
    ws = open_workspace(config.from_args(args), writer=True)
    if ws.notice:
        print(f"vaultlens: {ws.notice}", file=sys.stderr)
    # a real progress bar (tqdm: rate and ETA) on a terminal; nothing in a pipe or a log
    bar = tqdm(total=0, unit="file", file=sys.stderr, dynamic_ncols=True) \
        if sys.stderr.isatty() and not args.json else None

    def show(p: Progress) -> None:
        if bar is None:
            return
        if bar.total != p.total:
            bar.total = p.total
        bar.set_postfix_str(p.path[-40:], refresh=False)
        bar.update(p.done - bar.n)

    try:
        summary = ws.update(show)  # what is done stays done, even on Ctrl-C
    finally:
        if bar is not None:
            bar.close()
        ws.close()
    if args.json:
        json.dump(summary.to_json(), out, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        _print_summary(summary, out)
    return 0


def cmd_search(args: argparse.Namespace, out: TextIO) -> int:
    from vaultlens.serve.answers import Partial
    from vaultlens.serve.status import search_daemon

    cfg = config.from_args(args)
    query = " ".join(args.query)
    folder = data_dir_for(cfg.vault, cfg.data_dir)
    answer = None
    if _daemon_may_answer(args, query) and folder.is_dir():
        answer = search_daemon(DataDir(folder), str(cfg.vault.resolve()), query, args.k)
    if answer is None:
        answer = _search_here(cfg, query, args)
    if args.json:
        json.dump(answer, out, ensure_ascii=False, indent=1)
        out.write("\n")
        return 0
    if note := Partial.from_json(answer).sentence():
        print(note, file=out)
    for n, h in enumerate(answer["results"], start=1):
        where = f":{h['line']}" if h.get("line") else (f" page {h['page']}" if h.get("page")
                                                      else "")
        print(f"{n:>2}. [{h['kind']}] {h['path']}{where}  ({h['score']:.4f})", file=out)
        print(f"      {_one_line(h['text'], 100)}", file=out)
        for x in h.get("links", [])[:3]:
            print(f"      ← {x['note']}:{x['line']}", file=out)
        if args.explain:
            print(f"      {explanation(h['explain'])}", file=out)
    if not answer["results"]:
        print("no results", file=out)
    return 0


# what the API takes; past these the command searches the index itself, as without a daemon
DAEMON_MAX_K = 100
DAEMON_MAX_QUERY_BYTES = 32 * 1024
SEARCH_SETTINGS = ("rerank", "rerank_top", "threads", "vector_dtype")


def _daemon_may_answer(args: argparse.Namespace, query: str) -> bool:
    """Whether a running daemon answers this search the same way the command would: its model
    is loaded and it knows whether its index is complete. --explain needs the searcher's own
    parts, and a setting given for this search is the daemon's own choice there."""
    own = any(getattr(args, name, None) is not None for name in SEARCH_SETTINGS)
    return (not args.explain and not own and args.k <= DAEMON_MAX_K
            and len(query.encode()) <= DAEMON_MAX_QUERY_BYTES)


def _search_here(cfg: config.Config, query: str, args: argparse.Namespace) -> dict[str, Any]:
    """A search of the index with this command's own model: no daemon serves the vault (or
    --explain asked for the searcher's parts)."""
    from vaultlens.serve.status import partial_now

    ws = open_workspace(cfg, writer=False)
    try:
        searcher = ws.searcher()
        hits = searcher.search(query, args.k)
        why = (searcher.explain(query, [h.id for h in hits], args.k, hits=hits)
               if args.explain else {})
    finally:
        ws.close()
    partial = partial_now(ws.data, str(ws.config.vault.resolve()))  # a daemon still indexing
    results = [h.to_json() | ({"explain": why[h.id]} if args.explain else {}) for h in hits]
    return {"results": results, **partial.to_json()}


def explanation(why: dict[str, Any]) -> str:
    """One line of :meth:`Searcher.explain`'s answer for a hit."""
    if not why.get("candidate"):
        return "not a candidate of this search"

    def part(name: str) -> str:
        value, rank = why[name]["value"], why[name]["rank"]
        return f"{name} {'-' if value is None else value} (#{rank or '-'})"

    lent = f", lent {why['lent']} by item {why['lent_from']}" if why["lent"] else ""
    reranked = f"; reranker {why['reranker']}" if why.get("reranker") is not None else ""
    return (f"{part('bm25')}, {part('coverage')}, {part('cosine')}; vector weight "
            f"{why['vector_weight']}: own {why['own']}{lent} → {why['score']} (#{why['rank']})"
            f"{reranked}")


def cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    cfg = config.from_args(args)
    queries = [q for q in load_queries(args.queries) if q.vault == cfg.vault.name]
    if not queries:
        raise EvalError(f"{args.queries}: no queries for the vault {cfg.vault.name!r} "
                        "(their 'vault' field names the vault folder)")
    result = evaluate_vault(cfg, queries, explain=args.json)
    if args.json:
        json.dump(result, out, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        print(f"{cfg.vault.name}: {len(queries)} queries", file=out)
        print(report(result), file=out)
    return 0


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from vaultlens.serve.status import ask_daemon, status_json, status_text

    ws = open_workspace(config.from_args(args), writer=False)
    try:
        s = ws.status()
    finally:
        ws.close()
    daemon = ask_daemon(ws.data, str(ws.config.vault.resolve()))  # its state and progress
    if args.json:
        json.dump(status_json(s, daemon), out, ensure_ascii=False, indent=1)
        out.write("\n")
        return 0
    print(status_text(s, daemon, args.all), file=out)
    return 0


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from vaultlens.serve.app import serve
    from vaultlens.serve.tuning import Tuning

    cfg = config.from_args(args)
    # the writer lock tried before the port is bound: a second daemon on the same port would
    # hear "port in use" and be told to take another; the lock's refusal says where the first
    # one serves (a stale daemon.json, its pid reused, holds no lock and stops nothing)
    probe = DataDir(data_dir_for(cfg.vault, cfg.data_dir))
    probe.lock()
    probe.unlock()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def announce(*parts: object, **_: object) -> None:
        print(*parts, file=out, flush=True)

    serve(cfg, cfg.host, cfg.port, args.allow_remote, cfg.reconcile_every, announce,
          Tuning.for_machine())
    return 0


def cmd_mcp(args: argparse.Namespace, out: TextIO) -> int:
    from vaultlens.serve.mcp_stdio import run_stdio
    from vaultlens.serve.tuning import Tuning

    cfg = config.from_args(args)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    run_stdio(cfg, Tuning.for_machine())
    return 0


def cmd_open(args: argparse.Namespace, out: TextIO) -> int:
    """The search page, signed in: the token rides in the fragment, which no server sees."""
    import webbrowser

    from vaultlens.serve.proof import ours

    cfg = config.from_args(args)
    folder = data_dir_for(cfg.vault, cfg.data_dir)
    start = f"start one with `vaultlens serve --vault {cfg.vault}`, then open the page again"
    info = daemon_info(folder)
    if info is None:
        print(f"vaultlens: no daemon serves {cfg.vault}; {start}", file=sys.stderr)
        return 1
    data = DataDir(folder)
    port = int(info["port"])
    # the token goes only to a daemon that proved it holds it: whatever else listens on the
    # port (our daemon gone, another program there) must not be handed the vault's key
    if not ours(port, data.token()):
        print(f"vaultlens: no daemon serves {cfg.vault}: what listens on port {port} did not "
              f"prove it holds this vault's token; {start}", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port}/#token={data.token()}"
    if args.print or not webbrowser.open(url):
        print(url, file=out)
    return 0


def cmd_token(args: argparse.Namespace, out: TextIO) -> int:
    cfg = config.from_args(args)
    print(DataDir(data_dir_for(cfg.vault, cfg.data_dir)).token(), file=out)
    return 0


def cmd_model(args: argparse.Namespace, out: TextIO) -> int:
    path = pull(args.name)
    print(f"{args.name}: {path}", file=out)
    return 0


def cmd_model_list(args: argparse.Namespace, out: TextIO) -> int:
    models = known_models()
    if args.json:
        json.dump([vars(m) for m in models], out, ensure_ascii=False, indent=1)
        out.write("\n")
        return 0
    width = max(len(m.name) for m in models)
    print(f"{'model':<{width}}  offline  what it is", file=out)
    for m in models:
        print(f"{m.name:<{width}}  {'yes' if m.offline else 'no':<7}  {m.about}", file=out)
        print(f"{'':<{width}}           {m.where}", file=out)
    return 0


def cmd_template(args: argparse.Namespace, out: TextIO) -> int:
    from vaultlens.search.remote_reranker import TEMPLATE

    out.write(TEMPLATE)  # as it is: the file's last newline is the template's own
    return 0


COMMANDS: dict[str, Any] = {
    "links": cmd_links, "index": cmd_index, "search": cmd_search, "eval": cmd_eval,
    "status": cmd_status, "serve": cmd_serve, "mcp": cmd_mcp, "open": cmd_open,
    "token": cmd_token, "model list": cmd_model_list, "model pull": cmd_model,
    "model template": cmd_template,
}


def build_parser() -> argparse.ArgumentParser:
    return cli_parser.build_parser(COMMANDS)


def run() -> int:
    """The `vaultlens` command: the process's entry point. Before anything opens the catalog,
    SQLite's memory statistics go off: their global lock made search threads take turns
    (index/sqlite_library.py)."""
    stop_memory_statistics()
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    """Every failure the user can cause is one line on stderr and a non-zero exit: 2 for a
    refusal (a bad setting, a missing index, a busy vault), 1 for what the system refused."""
    args = cli_parser.parse(build_parser(), argv)
    try:
        code: int = args.run(args, sys.stdout)
    except VaultlensError as exc:
        print(f"vaultlens: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `vaultlens links | head` is a normal way to read it
        return 0
    except OSError as exc:  # a data dir that cannot be made, a disk that is full
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"vaultlens: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vaultlens: interrupted", file=sys.stderr)
        return 130
    return code
