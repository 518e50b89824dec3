"""MCP with the SDK's own client: over HTTP against a real daemon, and over stdio against a
real `vaultlens mcp` process. The vault holds a note, a screenshot with text rendered into it,
and a Chinese note."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, ImageContent, TextContent
from PIL import Image

from indexing import screenshot
from vaultlens.config import Config
from vaultlens.embedders.minilm import MiniLM
from vaultlens.index.datadir import DataDir
from vaultlens.search.tokens import TokenCounter, image_tokens
from vaultlens.serve.app import make_app
from vaultlens.serve.daemon import DAEMON

PARAGRAPH = "The tide board in the harbour office listed every boat leaving that week."
ZH_NOTE = "# 同步设置\n\n在手机和电脑之间同步笔记时，可以在设置里选择要同步的文件夹。\n"  # noqa: RUF001 - Chinese punctuation
VAULT: dict[str, str | bytes] = {
    "Trips/Pier.md": f"# Pier\n\n{PARAGRAPH}\n\n![[board.png]]\n\nWe left before the storm.\n",
    "笔记/同步.md": ZH_NOTE,
    "Attachments/board.png": screenshot("HARBOUR TIDES"),
}
TOOLS = {"search", "context", "read", "similar", "status"}


def counter_for(rule: str) -> TokenCounter:
    if rule == "minilm tokenizer":
        model = MiniLM()
        return TokenCounter(lambda t: model.count_tokens(t) or 0, model.name)
    return TokenCounter()


def text_of(result: CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


async def wait_indexed(client: Client, timeout: float = 180) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        s = (await client.call_tool("status", {})).structured_content or {}
        if s.get("runs", 0) >= 1 and not s.get("indexing") and s.get("vector_search_ready"):
            return
        await asyncio.sleep(0.5)
    raise AssertionError("the vault was not indexed in time")


async def check_tools(client: Client) -> None:
    """What both transports must do alike."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for t in tools.values():
        assert t.description and t.input_schema["type"] == "object"
        assert t.annotations is not None and t.annotations.read_only_hint
    assert "query" in tools["search"].input_schema["properties"]

    found = await client.call_tool("search", {"query": "tides", "k": 5})
    assert not found.is_error, text_of(found)
    paths = [h["path"] for h in (found.structured_content or {})["results"]]
    assert paths and paths[0] == "Attachments/board.png", paths
    assert "board.png" in text_of(found)

    for budget in (300, 1000, 4000):
        pack = await client.call_tool("context", {"query": "harbour tides board",
                                                  "budget_tokens": budget})
        assert not pack.is_error, text_of(pack)
        meta = pack.structured_content or {}
        counter = counter_for(meta["token_rule"])
        spent = 0
        for block in pack.content:
            if isinstance(block, TextContent):
                spent += counter.count(block.text)
            else:
                assert isinstance(block, ImageContent)
                data = base64.b64decode(block.data)
                with Image.open(io.BytesIO(data)) as im:
                    assert im.format in ("PNG", "JPEG", "WEBP")
                    assert max(im.size) <= 1568 and len(data) <= 512 * 1024
                    spent += image_tokens(*im.size)
        assert spent == meta["tokens"] <= budget, (budget, spent, meta)
    # at 4000 the screenshot is in, followed by the paragraph it was pasted into
    kinds = [type(b).__name__ for b in pack.content]
    assert "ImageContent" in kinds, kinds
    after = pack.content[kinds.index("ImageContent") + 1]
    assert isinstance(after, TextContent) and PARAGRAPH in after.text
    assert "Trips/Pier.md" in after.text

    zh = await client.call_tool("search", {"query": "手机 电脑 同步 文件夹", "k": 3})
    assert (zh.structured_content or {})["results"][0]["path"] == "笔记/同步.md"

    note = await client.call_tool("read", {"path": "Trips/Pier.md", "start_line": 3,
                                           "end_line": 3})
    assert PARAGRAPH in text_of(note)
    shot = await client.call_tool("read", {"path": "Attachments/board.png"})
    assert any(isinstance(b, ImageContent) for b in shot.content)
    similar = await client.call_tool("similar", {"path": "Trips/Pier.md", "k": 3})
    assert not similar.is_error, text_of(similar)

    # bad arguments are error results, and the server keeps serving
    for name, args in (("search", {"query": "tides", "k": -1}),
                       ("read", {"path": "../../etc/passwd"}),
                       ("read", {"path": "/etc/passwd"}),
                       ("no_such_tool", {})):
        bad = await client.call_tool(name, args)
        assert bad.is_error, (name, args, text_of(bad))
    again = await client.call_tool("search", {"query": "tides"})
    assert not again.is_error


@pytest.fixture
def vault(make_vault: Callable[[dict[str, str | bytes]], Path]) -> Path:
    return make_vault(VAULT)


@pytest.fixture
async def daemon(aiohttp_server: Any, vault: Path, tmp_path: Path) -> AsyncIterator[Any]:
    cfg = Config(vault=vault, data_dir=tmp_path / "data", model="minilm", ocr=True)
    app = make_app(cfg, watching=False)
    server = await aiohttp_server(app, host="127.0.0.1")
    service = app[DAEMON].service
    assert await asyncio.get_running_loop().run_in_executor(None, service.wait_idle, 120)
    yield server
    await server.close()


@pytest.mark.slow
async def test_mcp_over_http(daemon: Any, tmp_path: Path) -> None:
    token = DataDir(tmp_path / "data").token()
    url = f"http://127.0.0.1:{daemon.port}/mcp"
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http, \
            Client(streamable_http_client(url, http_client=http)) as client:
        await wait_indexed(client)
        await check_tools(client)

    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient() as http:
        refused = [
            await http.post(url, json=body, headers=headers),
            await http.post(url, json=body, headers={
                **headers, "Authorization": f"Bearer {token}", "Origin": "https://evil.test"}),
            await http.post(url, json=body, headers={
                **headers, "Authorization": f"Bearer {token}", "Host": "evil.test"}),
        ]
    assert [r.status_code for r in refused] == [401, 403, 403]
    for r in refused:
        assert r.json()["ok"] is False


@pytest.mark.slow
async def test_mcp_over_stdio_without_a_daemon(vault: Path, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "vaultlens", "mcp", "--vault", str(vault), "--data-dir",
              str(tmp_path / "data"), "--model", "minilm"])
    async with Client(params) as client:
        await wait_indexed(client)
        await check_tools(client)
    # it indexed the vault itself, and held the writer lock only while it ran
    data = DataDir(tmp_path / "data")
    data.lock()
    data.unlock()


@pytest.mark.slow
async def test_mcp_over_stdio_goes_through_a_running_daemon(vault: Path, tmp_path: Path) -> None:
    from served import Client as ApiClient
    from served import free_port

    port, data = free_port(), tmp_path / "data"
    serve = subprocess.Popen(
        [sys.executable, "-m", "vaultlens", "serve", "--vault", str(vault), "--data-dir",
         str(data), "--model", "minilm", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        api = ApiClient(port, DataDir(data).token())

        def idle() -> bool:
            try:
                s = api.call("/api/status")
            except (OSError, AssertionError):
                return False
            return bool(s["runs"] >= 1 and not s["indexing"])

        await asyncio.get_running_loop().run_in_executor(None, api.wait_for, idle, "indexing")
        assert DataDir(data).daemon_info() is not None
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "vaultlens", "mcp", "--vault", str(vault), "--data-dir", str(data),
                  "--model", "minilm"])
        async with Client(params) as client:
            status = (await client.call_tool("status", {})).structured_content or {}
            # the daemon holds the writer lock: on its own this process could only read
            assert status["writer"] is True
            found = await client.call_tool("search", {"query": "tides"})
            paths = [h["path"] for h in (found.structured_content or {})["results"]]
            assert paths[0] == "Attachments/board.png"
    finally:
        serve.terminate()
        serve.wait(15)
    assert DataDir(data).daemon_info() is None  # it said it is gone


def test_stdout_holds_only_protocol(vault: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vaultlens", "mcp", "--vault", str(vault), "--data-dir",
         str(tmp_path / "data"), "--model", "minilm"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}}
    out, err = proc.communicate(json.dumps(hello).encode() + b"\n", timeout=120)
    lines = [json.loads(line) for line in out.decode().splitlines()]  # each one JSON-RPC
    assert lines and lines[0]["id"] == 1 and "result" in lines[0], (out, err[-2000:])
    assert all(m.get("jsonrpc") == "2.0" for m in lines)


@pytest.mark.slow
async def test_stdio_backend_reads_when_another_process_writes(vault: Path,
                                                               tmp_path: Path) -> None:
    from vaultlens.serve.mcp_stdio import backend_for
    from vaultlens.serve.requests import SearchRequest
    from vaultlens.workspace import open_workspace

    cfg = Config(vault=vault, data_dir=tmp_path / "data", model="minilm", ocr=True)
    ws = open_workspace(cfg, writer=True)  # indexes, and keeps holding the writer lock
    try:
        ws.update()
        async with backend_for(cfg) as backend:
            status = await backend.status()
            assert status["writer"] is False
            found = await backend.search(SearchRequest("tides"))
            assert found.results[0]["path"] == "Attachments/board.png"
    finally:
        ws.close()


async def test_mcp_answers_before_the_query_model_is_in(aiohttp_server: Any, vault: Path,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """The SDK is imported once the query model is in; a request that comes first builds
    the endpoint itself and is answered."""
    from vaultlens.serve.daemon import Daemon
    from vaultlens.serve.mcp_http import MCP

    release = threading.Event()
    warm = Daemon._warm

    def held(self: Daemon) -> None:
        release.wait(60)
        warm(self)

    monkeypatch.setattr(Daemon, "_warm", held)
    cfg = Config(vault=vault, data_dir=tmp_path / "data", model="minilm", ocr=False)
    app = make_app(cfg, watching=False)
    server = await aiohttp_server(app, host="127.0.0.1")
    try:
        assert not app[DAEMON].ready.is_set() and app[MCP]._asgi is None
        token = DataDir(tmp_path / "data").token()
        url = f"http://127.0.0.1:{server.port}/mcp"
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http, \
                Client(streamable_http_client(url, http_client=http)) as client:
            tools = await client.list_tools()
        assert {t.name for t in tools.tools} >= {"search", "context"}
        assert not app[DAEMON].ready.is_set()  # answered while the model was still loading
    finally:
        release.set()
        await server.close()


SERVERS = "The regional sync servers keep a copy of each vault for a year."
PACKED: dict[str, str | bytes] = {
    "Guide/Sync.md": "# Sync\n\n## `Servers`\n\nThe **regional** [[Servers|sync servers]] keep a "
                     "copy of each vault for a year. ^para\n\n![[servers.png]]\n",
    "Guide/Draft.md": "---\nstatus: draft\n---\n# Draft\n\nRegional sync servers copy every "
                      "vault, in this draft.\n",
    "Attachments/servers.png": screenshot("REGION MAP"),
}


@pytest.fixture
async def packed(aiohttp_server: Any, make_vault: Callable[[dict[str, str | bytes]], Path],
                 tmp_path: Path) -> AsyncIterator[Any]:
    cfg = Config(vault=make_vault(PACKED), data_dir=tmp_path / "data", model="minilm")
    app = make_app(cfg, watching=False)
    server = await aiohttp_server(app, host="127.0.0.1")
    assert await asyncio.get_running_loop().run_in_executor(
        None, app[DAEMON].service.wait_idle, 120)
    yield server
    await server.close()


@contextlib.asynccontextmanager
async def client_of(server: Any, data: Path) -> AsyncIterator[Client]:
    """The SDK's client on a daemon's /mcp, once its vault is indexed."""
    token = DataDir(data).token()
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http, \
            Client(streamable_http_client(f"http://127.0.0.1:{server.port}/mcp",
                                          http_client=http)) as client:
        await wait_indexed(client)
        yield client


def headers_of(result: CallToolResult) -> list[str]:
    """The first line of each text block: where each entry comes from."""
    return [b.text.split("\n")[0] for b in result.content if isinstance(b, TextContent)]


async def test_context_shows_each_paragraph_once_as_plain_text(packed: Any,
                                                               tmp_path: Path) -> None:
    async with client_of(packed, tmp_path / "data") as client:
        pack = await client.call_tool("context", {"query": "regional sync servers copy "
                                                  "each vault", "max_images": 4})
    assert not pack.is_error, text_of(pack)
    assert any(isinstance(b, ImageContent) for b in pack.content)
    text = text_of(pack)
    # the screenshot's paragraph is a passage too: the pack shows it once, as plain text
    assert text.count("copy of each vault for a year") == 1, text
    assert SERVERS in text
    assert not any(markup in text for markup in ("**", "[[", "^para", "`")), text
    assert "Guide/Sync.md line" in text and "(Sync > Servers)" in text  # still citable


async def test_context_takes_kind_where_and_exclude(packed: Any, tmp_path: Path) -> None:
    query = "regional sync servers copy vault"
    async with client_of(packed, tmp_path / "data") as client:
        images = await client.call_tool("context", {"query": query, "kind": "image"})
        drafts = await client.call_tool("context", {"query": query, "where": "status:draft"})
        kept = await client.call_tool("context", {"query": query, "exclude": "draft"})
    assert not images.is_error, text_of(images)
    assert [h for h in headers_of(images)[1:] if not h.startswith("Embedded in")] == [
        "[Screenshot: Attachments/servers.png]"]
    entries = [h for h in headers_of(drafts)[1:] if h.startswith("[")]
    assert entries and all(h.startswith("[Guide/Draft.md") for h in entries), entries
    entries = [h for h in headers_of(kept)[1:] if h.startswith("[")]
    assert entries and not any("Draft.md" in h for h in entries), entries


async def test_going_through_a_daemon_is_normal_operation(vault: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    """Normal operation logs at INFO; WARNING is kept for what is wrong."""
    from vaultlens.serve import mcp_stdio

    async def found(data: DataDir, vault: str) -> str:
        return "http://127.0.0.1:9"

    monkeypatch.setattr(mcp_stdio, "running_daemon", found)
    cfg = Config(vault=vault, data_dir=tmp_path / "data", model="minilm")
    DataDir(tmp_path / "data").token()  # what a daemon of this data dir would have written
    with caplog.at_level("INFO", logger="vaultlens"):
        async with mcp_stdio.backend_for(cfg) as backend:
            assert isinstance(backend, mcp_stdio.HttpBackend)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", "vaultlens mcp: using the daemon at http://127.0.0.1:9") in said
    assert not [r for r in caplog.records if r.levelno >= 30], said
