"""The MCP tools: thin adapters over a ``Backend``, served over stdio and at ``/mcp``.

A backend is the service's interface (``queries.py``): in the daemon, and in ``vaultlens
mcp`` when no daemon runs, it is the service itself, called in-process; beside a running
daemon, it asks that daemon over HTTP. Each tool's input schema is its request type's
(``requests.py``), the same as the API's body schema, and the request type checks the
arguments. The tools turn typed answers into what a model reads: short text, structured
content, and real image blocks for screenshots and PDF pages. None of them writes to the
vault.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any, Protocol

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import ConfigDict

from vaultlens.errors import Remote
from vaultlens.search.pack import IMAGE_RULE, Entry, preamble, render
from vaultlens.serve.answers import Found, NoteLines, Packed, Read, Similar
from vaultlens.serve.api import body_schema
from vaultlens.serve.faults import tool_message
from vaultlens.serve.requests import (
    ContextRequest,
    ReadRequest,
    SearchRequest,
    SimilarRequest,
    StatusRequest,
    fields_of,
    parse,
)
from vaultlens.serve.status import mcp_status

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                            open_world_hint=False)
INSTRUCTIONS = (
    "vaultlens searches one Obsidian vault: notes, screenshots and PDF pages, by meaning and by "
    "the words in the pictures. Use `context` to answer a question from the vault: it returns "
    "the best passages and the screenshots themselves, each with the paragraph it was pasted "
    "into, within a token budget. Use `search` to list hits, `read` to open one, `similar` for "
    "items like a file, and `status` for what is indexed."
)
REQUESTS: dict[str, type] = {"search": SearchRequest, "context": ContextRequest,
                             "read": ReadRequest, "similar": SimilarRequest,
                             "status": StatusRequest}
# request fields a tool sets itself, left out of its input schema: a context pack's pictures
# go to the model as image blocks, so they must come as data, not as URLs
FIXED: dict[str, dict[str, Any]] = {"context": {"inline": True}}


class BackendError(Remote):
    """What a daemon asked over HTTP said was wrong, or that it did not answer."""


class Backend(Protocol):
    async def search(self, request: SearchRequest) -> Found: ...

    async def context(self, request: ContextRequest) -> Packed: ...

    async def read(self, request: ReadRequest) -> Read: ...

    async def similar(self, request: SimilarRequest) -> Similar: ...

    async def status(self, request: StatusRequest | None = None) -> dict[str, Any]: ...


def input_schema(name: str) -> dict[str, Any]:
    """A tool's input schema: its request type's body schema, less what the tool sets."""
    return body_schema(fields_of(REQUESTS[name]), frozenset(FIXED.get(name, {})))


def request_of(name: str, arguments: dict[str, Any]) -> Any:
    """A tool's arguments as its request. Some clients send a number or a flag as a JSON
    string ("5", "true"): read as JSON where the field is not a string."""
    fields = fields_of(REQUESTS[name])
    given = dict(arguments)
    for key, value in arguments.items():
        if key in fields and fields[key].type is not str and isinstance(value, str):
            # what is not JSON is left as sent, for the request type to refuse
            with contextlib.suppress(ValueError, RecursionError):
                given[key] = json.loads(value)
    return parse(REQUESTS[name], {**given, **FIXED.get(name, {})})


class _AsSent(ArgModelBase):
    """The arguments as sent, for ``request_of`` to check: the SDK checks nothing itself, so
    each bound is held in one place."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


def _hit_line(n: int, hit: dict[str, Any]) -> str:
    where = hit["path"] + (f" page {hit['page']}" if hit.get("page") else "") + (
        f":{hit['line']}" if hit.get("line") else "")
    return f"{n}. [{hit['kind']}] {where} ({hit['score']:.3f}) {hit['text'][:160]}"


def _entry_blocks(entry: Entry) -> list[TextContent | ImageContent]:
    parts = render(entry)
    image = entry.image or {}
    if entry.type != "image" or "data" not in image:
        return [TextContent(type="text", text=p) for p in parts]
    # the picture right after its header, then the paragraphs that place it
    return [TextContent(type="text", text=parts[0]),
            ImageContent(type="image", data=image["data"], mime_type=image["mime"]),
            *[TextContent(type="text", text=p) for p in parts[1:]]]


async def search(backend: Backend, request: SearchRequest) -> CallToolResult:
    """Search the vault's notes, screenshots and PDF pages. Returns ranked hits as
    structured content (path, kind, line or page, score, snippet, where an image is
    embedded) and a short text list."""
    found = await backend.search(request)
    lines = [_hit_line(n, h) for n, h in enumerate(found.results, 1)] or ["no hits"]
    if note := found.partial.sentence():  # the model must know what it may not have seen
        lines.insert(0, note)
    return CallToolResult(content=[TextContent(type="text", text="\n".join(lines))],
                          structured_content={"results": found.results,
                                              **found.partial.to_json()})


async def context(backend: Backend, request: ContextRequest) -> CallToolResult:
    """Everything needed to answer a question from the vault, within a token budget: the
    best passages (note, heading path, lines, text) and the screenshots and PDF pages
    themselves as images, each followed by the paragraph it was pasted into and where that
    lives. Says what it left out and why."""
    packed = await backend.context(request)
    pack = packed.pack
    blocks: list[TextContent | ImageContent] = [
        TextContent(type="text", text=preamble(pack.query))]
    if note := packed.partial.sentence():
        blocks.append(TextContent(type="text", text=note))
    for entry in pack.entries:
        blocks += _entry_blocks(entry)
    if pack.summary:
        blocks.append(TextContent(type="text", text=pack.summary))
    meta = {"tokens": pack.tokens, "budget_tokens": pack.budget_tokens,
            "token_rule": pack.token_rule, "image_token_rule": IMAGE_RULE,
            "left_out": pack.left_out, **packed.partial.to_json()}
    return CallToolResult(content=list(blocks), structured_content=meta)


async def read(backend: Backend, request: ReadRequest) -> CallToolResult:
    """Open a vault file: a note's lines (start_line to end_line), or a screenshot or a
    PDF page (page) as an image, with the paragraphs that embed it."""
    answer = await backend.read(request)
    if isinstance(answer, NoteLines):
        head = f"[{answer.path} lines {answer.start_line}-{answer.end_line} " \
               f"of {answer.total_lines}]"
        if answer.truncated:  # the model must know it did not see all it asked
            head += f"\n[{answer.truncated}]"
        return CallToolResult(content=[TextContent(type="text", text=f"{head}\n{answer.text}")])
    return CallToolResult(content=list(_entry_blocks(answer.entry)))


async def similar(backend: Backend, request: SimilarRequest) -> CallToolResult:
    """Items like a vault file (note, image or PDF), by meaning. Returns ranked hits as
    structured content and a short text list."""
    hits = (await backend.similar(request)).results
    lines = [_hit_line(n, h) for n, h in enumerate(hits, 1)] or ["nothing similar"]
    return CallToolResult(content=[TextContent(type="text", text="\n".join(lines))],
                          structured_content={"results": hits})


async def status(backend: Backend, request: StatusRequest) -> CallToolResult:
    """What is indexed (counts), with which model, whether visual search is on, what the
    daemon is doing (indexing progress and ETA), the files not indexed with their reasons
    (the first few, and how many more), and the files of kinds nobody searches, counted."""
    text, compact = mcp_status(await backend.status(request))
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=compact)


Render = Callable[[Backend, Any], Awaitable[CallToolResult]]
TOOLS: dict[str, Render] = {"search": search, "context": context, "read": read,
                            "similar": similar, "status": status}


def _tool(name: str, render: Render, backend: Backend) -> Tool:
    async def run(arguments: dict[str, Any]) -> CallToolResult:
        try:
            return await render(backend, request_of(name, arguments))
        except Exception as exc:
            message = tool_message(exc)  # faults.py: what the caller is told, if anything
            if message is None:
                raise
            raise ToolError(message) from exc

    return Tool(fn=run, name=name, title=None, description=render.__doc__ or "",
                context_kwarg=None,
                parameters=input_schema(name), fn_metadata=FuncMetadata(arg_model=_AsSent),
                is_async=True, annotations=READ_ONLY)


def build_server(backend: Backend) -> MCPServer:
    return MCPServer("vaultlens", instructions=INSTRUCTIONS, version=version("vaultlens"),
                     log_level="WARNING",
                     tools=[_tool(name, render, backend) for name, render in TOOLS.items()])
