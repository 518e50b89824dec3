"""The ``vaultlens`` command's parser: each sub-command with its help, its description and only
the settings it uses, grouped; every setting shows its default and its environment variable."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from vaultlens import config
from vaultlens.evaluate import BASELINES

Run = Callable[..., int]

# the settings each kind of job reads; a command takes only those it uses
READING = ["config_dir", "exclude", "context_chars"]  # how the vault is read
MODEL = ["model", "dims", "max_image_tokens"]  # which model, and so which index
INDEXING = ["vault", *READING, "data_dir", *MODEL, "vector_dtype", "threads", "ocr",
            "max_pdf_pages", "pdf_timeout"]
RERANK = ["rerank", "rerank_top"]
SEARCHING = ["data_dir", *MODEL, "vector_dtype", "threads", *RERANK]
SERVING = ["host", "port", "reconcile_every"]

# --help shows a command's settings in these groups, in this order
GROUPS = [
    ("the vault", ["vault", *READING]),
    ("the index", ["data_dir", "vector_dtype"]),
    ("the model", [*MODEL, "threads"]),
    ("reading files", ["ocr", "max_pdf_pages", "pdf_timeout"]),
    ("reranking", RERANK),
    ("the daemon", SERVING),
]

BASELINE_WORDS = {
    "filename": "file-name match",
    "keyword": "keyword only (BM25)",
    "vector": "vector only",
    "rrf": "rrf (BM25 and vector fused by reciprocal rank, k = 60)",
}
NUMBERS = {3: "three", 4: "four", 5: "five", 6: "six"}
WIDTH = 78  # descriptions and the epilog are filled here (their line breaks are kept)


def version_text() -> str:
    """The installed package's version; a tree run without installing has none to read."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"vaultlens {version('vaultlens')}"
    except PackageNotFoundError:
        return "vaultlens (version unknown: not installed; run from a source tree)"


class Parser(argparse.ArgumentParser):
    """A mistake on the command line is one line on stderr that says where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments; one a command does not take is refused by that command's parser, so
    the error names the help that lists what it does take."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        owner = parser
        for dest in ("command", "action"):  # down to the sub-command that was given
            chosen = getattr(args, dest, None)
            subs = [a for a in owner._actions if isinstance(a, argparse._SubParsersAction)]
            if chosen is None or not subs:
                break
            owner = subs[0].choices[chosen]
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return value


def environment() -> str:
    """The epilog: every environment variable vaultlens reads."""
    width = max(len(s.env) for s in config.SETTINGS)
    lines = ["environment (a flag wins over its variable):"]
    lines += [f"  {s.env:<{width}}  {s.flag}" for s in config.SETTINGS]
    others = [
        ("VAULTLENS_REMOTE_KEY", "bearer key for a remote:URL model or reranker"),
        ("XDG_DATA_HOME", "where data dirs are made: $XDG_DATA_HOME/vaultlens/ "
                          "(default ~/.local/share)"),
        ("HF_HOME", "the Hugging Face cache: `model pull` writes it, Qwen3-VL is "
                    "looked for there (default ~/.cache/huggingface)"),
    ]
    for name, what in others:
        lines += textwrap.wrap(what, WIDTH, initial_indent=f"  {name:<{width}}  ",
                               subsequent_indent=" " * (width + 4))
    return "\n".join(lines)


def _describe(text: str, example: str = "") -> str:
    """A command's description: its paragraphs filled, then an example kept as written."""
    paragraphs = [textwrap.fill(p, WIDTH) for p in text.split("\n\n")]
    if example:
        paragraphs.append("example:\n" + textwrap.indent(example, "  "))
    return "\n\n".join(paragraphs)


def _settings(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    for title, group in GROUPS:
        chosen = [n for n in group if n in names]
        if not chosen:
            continue
        options = parser.add_argument_group(title)
        config.add_arguments(options, chosen)
        if "host" in chosen:  # not a setting: a flag of the command line alone
            options.add_argument("--allow-remote", action="store_true",
                                 help="Allow --host to be a non-loopback address (it warns).")


def _command(sub: Any, name: str, help: str, description: str, names: Sequence[str],
             run: Run, json_help: str | None = None) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _settings(parser, names)
    if json_help:
        parser.add_argument("--json", action="store_true", help=json_help)
    parser.set_defaults(run=run)
    return parser


def _eval_description() -> str:
    named = [BASELINE_WORDS.get(b, b) for b in BASELINES]
    count = NUMBERS.get(len(named), str(len(named)))
    return _describe(
        "Measure search on labelled queries. It brings the index up to date, then prints "
        "top-1, top-3, top-10 and MRR, overall and per category, for vaultlens and for "
        f"{count} baselines over the same index: {'; '.join(named)}. Then the gap to the best "
        "single signal, and the queries vaultlens misses in its top 3.",
        "vaultlens eval --vault ~/Notes --queries dev.jsonl")


def _model_commands(sub: Any, runs: Mapping[str, Run]) -> None:
    model = sub.add_parser("model", help="List the models, download one, or print the "
                           "reranker server's chat template.",
                           description="The models vaultlens knows, and their weights.")
    actions = model.add_subparsers(title="actions", dest="action", required=True,
                                   metavar="ACTION")
    _command(actions, "list", "List the known models and whether each loads here offline.",
             _describe("Every name --model and --rerank take, what it is, and whether it loads "
                       "on this machine with no network: the bundled ones always do, Qwen3-VL "
                       "once `vaultlens model pull` fetched it."),
             [], runs["model list"], "Print a JSON list.")
    pull = _command(actions, "pull", "Download a model's weights (the one command that uses "
                    "the network).",
                    _describe("Download a Qwen3-VL model into the Hugging Face cache (HF_HOME).",
                              "vaultlens model pull qwen3-vl-2b"), [], runs["model pull"])
    pull.add_argument("name", help="qwen3-vl-2b, qwen3-vl-8b or qwen3-vl-reranker-2b")
    _command(actions, "template", "Print the chat template a vLLM reranker server needs.",
             _describe("Print the chat template (--chat-template) that a vLLM server needs to "
                       "serve the reranker for --rerank remote:URL.",
                       "vaultlens model template > vaultlens-reranker.jinja"),
             [], runs["model template"])


def _daemon_commands(sub: Any, runs: Mapping[str, Run]) -> None:
    _command(sub, "serve", "Run the daemon: index the vault, keep it fresh, serve the page, "
             "the API and MCP.",
             _describe("Index the vault, watch it for changes, and answer on "
                       "http://127.0.0.1:PORT/: the search page (`vaultlens open` signs the "
                       "browser in), the API (its token: `vaultlens token`) and MCP at /mcp. "
                       "Searches are answered while the first index runs. One daemon per "
                       "vault; Ctrl-C stops it.",
                       "vaultlens serve --vault ~/Notes --port 27123"),
             [*INDEXING, *RERANK, *SERVING], runs["serve"])
    _command(sub, "index", "Index a vault once (notes, images, PDF pages), then exit.",
             _describe("Bring the vault's index up to date and print what was indexed and "
                       "skipped. Later runs read only what changed. `vaultlens serve` does "
                       "this too, and keeps the index fresh; `index` is for a one-off run or "
                       "a script.", "vaultlens index --vault ~/Notes --model e5-small"),
             INDEXING, runs["index"], "Print the summary as JSON.")
    status = _command(sub, "status", "Show what is indexed, with which model, and what is not (and "
             "why).",
             _describe("What the vault's index holds, the model it was built with, what a "
                       "running daemon is doing (indexing progress and ETA), the files not "
                       "indexed with their reasons (the first 10; --all lists every one) and "
                       "the files of kinds nobody searches, counted. --model, --dims and "
                       "--max-image-tokens name the model the index was built with, where it "
                       "was not the default.", "vaultlens status --vault ~/Notes"),
             ["vault", "data_dir", *MODEL], runs["status"], "Print JSON.")
    status.add_argument("--all", action="store_true",
                        help="List every file not indexed (else the first 10).")
    _command(sub, "open", "Open the search page in the browser, signed in (needs `vaultlens "
             "serve`).",
             _describe("Open the running daemon's search page with this vault's token. With "
                       "no daemon serving the vault it says so and exits 1: start one with "
                       "`vaultlens serve`.", "vaultlens open --vault ~/Notes --print"),
             ["vault", "data_dir"], runs["open"]).add_argument(
        "--print", action="store_true",
        help="Print the page's address (with the token) instead of opening it.")
    _command(sub, "token", "Print the vault's API token (made on first use).",
             _describe("The bearer token that the API, the page and the Obsidian plugin need. "
                       "It is the file `token` in the vault's data dir (this user's alone); "
                       "no environment variable sets it.",
                       'curl -H "Authorization: Bearer $(vaultlens token --vault ~/Notes)" \\\n'
                       "  http://127.0.0.1:27123/api/status"),
             ["vault", "data_dir"], runs["token"])
    _command(sub, "mcp", "Serve MCP on stdio for an AI assistant.",
             _describe("MCP on stdio: through the vault's running daemon when there is one, "
                       "else from the index itself, kept up to date. An assistant's MCP "
                       "config starts it:",
                       '{"command": "vaultlens", "args": ["mcp", "--vault", "/home/me/Notes"]}'),
             [*INDEXING, *RERANK], runs["mcp"])


def build_parser(runs: Mapping[str, Run]) -> argparse.ArgumentParser:
    """``runs``: each command's function, by name ("search", "model list")."""
    parser = Parser(
        prog="vaultlens", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_describe(
            "Local search for an Obsidian vault: notes, screenshots and PDF pages.\n\n"
            "Start with `vaultlens serve --vault PATH`: it indexes the vault, keeps the index "
            "fresh, and serves the search page (`vaultlens open --vault PATH`), the API and "
            "MCP. Each command's --help lists its options with their defaults."),
        epilog=environment())
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(title="commands", dest="command", required=True,
                                metavar="COMMAND")
    _daemon_commands(sub, runs)
    search = _command(
        sub, "search", "Search an indexed vault.",
        _describe('Words, "phrases" and filters (kind:image, tag:x, -word, after:2024-01 ...). '
                  "The index must exist: run `vaultlens serve` or `vaultlens index` first, "
                  "with the same --model.",
                  'vaultlens search --vault ~/Notes "the chart comparing notion" kind:image'),
        ["vault", *SEARCHING], runs["search"], 'Print {"results": [...]}.')
    search.add_argument("--k", type=_at_least_one, default=10, metavar="N",
                        help="How many results [default: 10].")
    search.add_argument("--explain", action="store_true",
                        help="Show how each hit was scored: every signal's value and rank.")
    search.add_argument("query", nargs="+", help="What to look for.")
    _command(sub, "links", "List every embedded image/PDF with its note, line and the "
             "paragraphs around it.",
             _describe("Reads the vault only (no index): every ![[x.png]] and its kin, "
                       "resolved as Obsidian does, with the paragraphs vaultlens keeps around "
                       "it.", "vaultlens links --vault ~/Notes --json"),
             ["vault", *READING], runs["links"], "Print a JSON list instead of text.")
    evaluate = _command(sub, "eval", f"Measure search on labelled queries, against "
                        f"{NUMBERS.get(len(BASELINES), len(BASELINES))} baselines.",
                        _eval_description(), [*INDEXING, *RERANK], runs["eval"],
                        'Print {"vaultlens": ..., "baselines": ..., "queries": [...]}.')
    evaluate.add_argument("--queries", type=Path, required=True, metavar="FILE",
                          help="Labelled queries, one JSON object per line (the format: "
                               "docs/performance.md).")
    _model_commands(sub, runs)
    return parser
