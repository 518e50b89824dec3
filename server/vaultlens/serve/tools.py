"""The MCP tools: one implementation over a ``Backend``, served over stdio and at ``/mcp``.

A backend answers the API's resources (search, context, similar, read, status) as the API's
JSON. In the daemon it calls the views' payload functions; in ``vaultlens mcp`` beside a running
daemon, it calls that daemon over HTTP. The tools turn those answers into what a model reads:
short text, structured content, and real image blocks for screenshots and PDF pages. None of
them writes to the vault.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated, Any, Literal, Protocol

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import Field

from vaultlens.search.pack import Entry, render

Resource = Literal["search", "context", "similar", "read", "status"]
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                            open_world_hint=False)
INSTRUCTIONS = (
    "vaultlens searches one Obsidian vault: notes, screenshots and PDF pages, by meaning and by "
    "the words in the pictures. Use `context` to answer a question from the vault: it returns "
    "the best passages and the screenshots themselves, each with the paragraph it was pasted "
    "into, within a token budget. Use `search` to list hits, `read` to open one, `similar` for "
    "items like a file, and `status` for what is indexed."
)

Query = Annotated[str, Field(description="what to look for, in any words; may hold filters "
                                         "such as path:Folder tag:x kind:image -word")]
K = Annotated[int, Field(ge=1, le=100, description="how many results")]
VaultPath = Annotated[str, Field(description="a vault-relative path, e.g. 'Notes/Plan.md'")]
Filter = Annotated[str | None, Field(description="optional filter (see the API)")]


class BackendError(Exception):
    """What the API said was wrong; the tool reports it as an error result."""


class Backend(Protocol):
    async def call(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        """The API's answer for ``resource`` (without ``ok``); raises BackendError."""
        ...


def _filters(**given: Any) -> dict[str, Any]:
    return {name: value for name, value in given.items() if value is not None}


def _hit_line(n: int, hit: dict[str, Any]) -> str:
    where = hit["path"] + (f" page {hit['page']}" if hit.get("page") else "") + (
        f":{hit['line']}" if hit.get("line") else "")
    return f"{n}. [{hit['kind']}] {where} ({hit['score']:.3f}) {hit['text'][:160]}"


def _entry_blocks(entry: dict[str, Any]) -> list[TextContent | ImageContent]:
    e = Entry(**{k: v for k, v in entry.items() if k in Entry.__dataclass_fields__})
    parts = render(e)
    image = entry.get("image") or {}
    if entry["type"] != "image" or "data" not in image:
        return [TextContent(type="text", text=p) for p in parts]
    # the picture right after its header, then the paragraphs that embed it
    return [TextContent(type="text", text=parts[0]),
            ImageContent(type="image", data=image["data"], mime_type=image["mime"]),
            *[TextContent(type="text", text=p) for p in parts[1:]]]


def build_server(backend: Backend) -> MCPServer:
    server: MCPServer = MCPServer("vaultlens", instructions=INSTRUCTIONS,
                                  version=version("vaultlens"), log_level="WARNING")

    async def ask(resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await backend.call(resource, body)
        except BackendError as exc:
            raise ToolError(str(exc)) from exc

    async def search(query: Query, k: K = 10, path: Filter = None,
                     kind: Annotated[Literal["note", "image", "pdf"] | None,
                                     Field(description="only this kind")] = None,
                     tag: Filter = None, before: Filter = None, after: Filter = None,
                     exclude: Filter = None) -> CallToolResult:
        """Search the vault's notes, screenshots and PDF pages. Returns ranked hits as
        structured content (path, kind, line or page, score, snippet, where an image is
        embedded) and a short text list."""
        body = {"query": query, "k": k, **_filters(path=path, kind=kind, tag=tag,
                                                   before=before, after=after, exclude=exclude)}
        answer = await ask("search", body)
        hits = answer["results"]
        lines = [_hit_line(n, h) for n, h in enumerate(hits, 1)] or ["no hits"]
        return CallToolResult(content=[TextContent(type="text", text="\n".join(lines))],
                              structured_content={"results": hits,
                                                  "partial": answer.get("partial", False)})

    async def context(query: Query,
                      budget_tokens: Annotated[int, Field(ge=100, le=200_000)] = 4000,
                      max_images: Annotated[int, Field(ge=0, le=16)] = 4,
                      image_max_px: Annotated[int, Field(ge=64, le=1568)] = 1568,
                      path: Filter = None, tag: Filter = None, before: Filter = None,
                      after: Filter = None) -> CallToolResult:
        """Everything needed to answer a question from the vault, within a token budget: the
        best passages (note, heading path, lines, text) and the screenshots and PDF pages
        themselves as images, each followed by the paragraph it was pasted into and where that
        lives. Says what it left out and why."""
        body = {"query": query, "budget_tokens": budget_tokens, "max_images": max_images,
                "image_max_px": image_max_px, "inline": True,
                **_filters(path=path, tag=tag, before=before, after=after)}
        pack = (await ask("context", body))["pack"]
        blocks: list[TextContent | ImageContent] = [
            TextContent(type="text", text=pack["preamble"])]
        for entry in pack["entries"]:
            blocks += _entry_blocks(entry)
        if pack["summary"]:
            blocks.append(TextContent(type="text", text=pack["summary"]))
        meta = {k: pack[k] for k in ("tokens", "budget_tokens", "token_rule",
                                     "image_token_rule", "left_out")}
        return CallToolResult(content=list(blocks), structured_content=meta)

    async def read(path: VaultPath,
                   start_line: Annotated[int | None, Field(ge=1)] = None,
                   end_line: Annotated[int | None, Field(ge=1)] = None,
                   page: Annotated[int | None, Field(ge=1)] = None) -> CallToolResult:
        """Open a vault file: a note's lines (start_line to end_line), or a screenshot or a
        PDF page (page) as an image, with the paragraphs that embed it."""
        body = {"path": path, **_filters(start_line=start_line, end_line=end_line, page=page)}
        answer = (await ask("read", body))["read"]
        if answer["kind"] == "note":
            head = f"[{answer['path']} lines {answer['start_line']}-{answer['end_line']} " \
                   f"of {answer['total_lines']}]"
            if answer.get("truncated"):  # the model must know it did not see all it asked
                head += f"\n[{answer['truncated']}]"
            return CallToolResult(content=[TextContent(type="text",
                                                       text=f"{head}\n{answer['text']}")])
        return CallToolResult(content=list(_entry_blocks(answer["entry"])))

    async def similar(path: VaultPath, k: K = 10) -> CallToolResult:
        """Items like a vault file (note, image or PDF), by meaning. Returns ranked hits as
        structured content and a short text list."""
        hits = (await ask("similar", {"path": path, "k": k}))["results"]
        lines = [_hit_line(n, h) for n, h in enumerate(hits, 1)] or ["nothing similar"]
        return CallToolResult(content=[TextContent(type="text", text="\n".join(lines))],
                              structured_content={"results": hits})

    async def status() -> CallToolResult:
        """What is indexed (counts), with which model, whether visual search is on, indexing
        progress, and every skipped file with its reason."""
        s = await ask("status", {})
        text = (f"{s['counts']} indexed with {s['model']}; visual search "
                f"{'on' if s['visual_search'] else 'off'}; indexing: {s['indexing']}; "
                f"{len(s['failures'])} files not indexed")
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content=s)

    for fn in (search, context, read, similar, status):
        server.add_tool(fn, annotations=READ_ONLY)
    return server

