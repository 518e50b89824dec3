"""The ``vaultlens`` command: one sub-command per job, each a small function wiring the modules."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from vaultlens import config
from vaultlens.context import EmbedLink, LinkedVault, link_vault
from vaultlens.notes import NoteParser
from vaultlens.vault import scan


def read_vault(cfg: config.Config) -> LinkedVault:
    """Scan, parse and link a vault: what every later stage starts from."""
    vault = scan(cfg.vault, cfg.config_dir, cfg.exclude)
    return link_vault(vault, NoteParser(), cfg.context_chars)


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _print_link(link: EmbedLink, out: TextIO) -> None:
    where = f"{link.note}:{link.line}"
    heads = " > ".join(link.headings)
    target = link.target or f"{link.embed.target}  [{link.reason}]"
    page = f" page {link.embed.page}" if link.embed.page else ""
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
        orphans = linked.unembedded()
        unresolved = sum(1 for x in linked.links if x.target is None and x.kind != "external")
        external = sum(1 for x in linked.links if x.kind == "external")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaultlens", description="Local search for an Obsidian vault."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    links = sub.add_parser(
        "links", help="Show every embedded image/PDF with the note, line and paragraphs around it."
    )
    config.add_arguments(links, ["vault", "config_dir", "exclude", "context_chars"])
    links.add_argument("--json", action="store_true", help="Print a JSON list instead of text.")
    links.set_defaults(run=cmd_links)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args, sys.stdout)
    except config.ConfigError as exc:
        print(f"vaultlens: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `vaultlens links | head` is a normal way to read it
        return 0
    return code
