"""The request types are the one declaration of what each request takes: the API's OpenAPI
document and the MCP tools' input schemas both come from them and say the same, and each
default and bound is held by one check whichever way a request comes in."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from mcp import Client

from vaultlens.errors import Invalid
from vaultlens.search.pack import Pack, PackOptions
from vaultlens.serve.answers import Found, NoteLines, Packed, Read, Similar
from vaultlens.serve.api import openapi
from vaultlens.serve.requests import (
    ContextRequest,
    ReadRequest,
    SearchRequest,
    SimilarRequest,
    StatusRequest,
    fields_of,
    parse,
)
from vaultlens.serve.routes import ROUTES
from vaultlens.serve.tools import FIXED, build_server

BODIES = {"search": SearchRequest, "context": ContextRequest, "read": ReadRequest,
          "similar": SimilarRequest}
STATUS = {"counts": {}, "model": "m", "visual_search": False, "indexing": False,
          "failures": []}


class Recorder:
    """A backend that keeps the requests the tools hand it."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def search(self, request: SearchRequest) -> Found:
        self.seen.append(request)
        return Found([], False, 0.0)

    async def context(self, request: ContextRequest) -> Packed:
        self.seen.append(request)
        return Packed(Pack(request.query, request.budget_tokens, "rule"), False, 0.0)

    async def read(self, request: ReadRequest) -> Read:
        self.seen.append(request)
        return NoteLines(request.path, 1, 1, 1, "x", None)

    async def similar(self, request: SimilarRequest) -> Similar:
        self.seen.append(request)
        return Similar([])

    async def status(self, request: StatusRequest | None = None) -> dict[str, Any]:
        self.seen.append(request)
        return STATUS


async def tool_schemas() -> dict[str, dict[str, Any]]:
    async with Client(build_server(Recorder())) as client:
        return {t.name: t.input_schema for t in (await client.list_tools()).tools}


def body_schemas() -> dict[str, dict[str, Any]]:
    paths = openapi(ROUTES, "0")["paths"]
    return {name: paths[f"/api/{name}"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"] for name in BODIES}


async def test_each_tool_takes_what_its_api_body_takes() -> None:
    """Same properties (types, bounds, defaults, descriptions), same required fields; a tool
    leaves out only the fields it sets itself."""
    tools, bodies = await tool_schemas(), body_schemas()
    assert set(tools) == {*BODIES, "status"}
    for name, body in bodies.items():
        tool = tools[name]
        fixed = set(FIXED.get(name, {}))
        assert set(body["properties"]) - set(tool["properties"]) == fixed, name
        assert tool["properties"] == {k: v for k, v in body["properties"].items()
                                      if k not in fixed}, name
        assert tool.get("required", []) == body["required"], name
        assert tool.get("additionalProperties") is False, name
    assert tools["status"]["properties"] == {}
    assert "requestBody" not in openapi(ROUTES, "0")["paths"]["/api/status"]["get"]


def test_the_schema_states_each_default_that_a_request_takes() -> None:
    for name, schema in body_schemas().items():
        kind = BODIES[name]
        minimal = parse(kind, {f: "x" for f in schema["required"]})
        for field, prop in schema["properties"].items():
            if field in schema["required"]:
                continue
            assert getattr(minimal, field) == prop.get("default"), (name, field)


def test_a_context_pack_takes_the_packers_own_defaults() -> None:
    request = parse(ContextRequest, {"query": "x"})
    options = PackOptions()
    assert (request.budget_tokens, request.max_images, request.image_max_px, request.inline) \
        == (options.budget_tokens, options.max_images, options.image_max_px, options.inline)


@pytest.mark.parametrize("name", sorted(BODIES))
def test_each_bound_is_held(name: str) -> None:
    kind = BODIES[name]
    base = {f: "a" for f, spec in fields_of(kind).items() if spec.required}
    for field, spec in fields_of(kind).items():
        if spec.minimum is not None:
            assert getattr(parse(kind, {**base, field: spec.minimum}), field) == spec.minimum
            with pytest.raises(Invalid, match=f"{field} must be at least {spec.minimum}"):
                parse(kind, {**base, field: spec.minimum - 1})
        if spec.maximum is not None:
            assert getattr(parse(kind, {**base, field: spec.maximum}), field) == spec.maximum
            with pytest.raises(Invalid, match=f"{field} must be at most {spec.maximum}"):
                parse(kind, {**base, field: spec.maximum + 1})
    with pytest.raises(Invalid, match="unknown field"):
        parse(kind, {**base, "no_such_field": 1})


async def test_a_tool_refuses_by_the_request_types_check_and_fills_its_defaults() -> None:
    """A tool's bad argument is refused with the API's own message before the backend is
    asked; a good one reaches it as the typed request, defaults filled from the type."""
    backend = Recorder()
    async with Client(build_server(backend)) as client:
        for name, args, message in (
                ("search", {"query": "x", "k": 101}, "k must be at most 100"),
                ("context", {"query": "x", "budget_tokens": 99},
                 "budget_tokens must be at least 100"),
                ("read", {"path": "a.md", "max_px": 1569}, "max_px must be at most 1568"),
                ("similar", {"path": ""}, "path must not be empty"),
                ("search", {"query": "x", "kind": "video"}, "kind must be one of"),
                ("status", {"verbose": True}, "unknown field(s): verbose")):
            with pytest.raises(Invalid, match=message.replace("(", r"\(").replace(")", r"\)")):
                parse(BODIES.get(name, StatusRequest), {**args, **FIXED.get(name, {})})
            bad = await client.call_tool(name, args)
            assert bad.is_error and message in bad.content[0].text, (name, bad)  # type: ignore[union-attr]
        assert backend.seen == []
        await client.call_tool("context", {"query": "tides", "max_images": "2"})
        await client.call_tool("search", {"query": "tides"})
        await client.call_tool("status", {})
    assert backend.seen == [dataclasses.replace(ContextRequest("tides"), max_images=2,
                                                inline=True),
                            SearchRequest("tides"), StatusRequest()]
