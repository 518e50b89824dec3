"""The localhost JSON API: one view per resource, one error shape, and the guards in front.

Every error is ``{"ok": false, "error": {"code", "message"}}``. Every route but health needs
``Authorization: Bearer <token>``. A request whose Host is not a loopback name with our port
(DNS rebinding) or whose Origin is a page other than Obsidian or our own is refused. Paths in
requests are vault-relative and confined to the vault; files are served only by item id.
"""

from __future__ import annotations

import dataclasses
import enum
import hmac
import json
import logging
import os
import re
import sqlite3
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from vaultlens.errors import Forbidden, Invalid, TooLarge, Unauthorized
from vaultlens.serve.faults import fault_of

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_JSON_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
OBSIDIAN_ORIGIN = "app://obsidian.md"


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": {"code": code, "message": message}},
                             status=status)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large",
               400: "bad_request", 401: "unauthorized", 403: "forbidden"}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever goes wrong, the client gets the one error shape (faults.py says which)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        response = error_response(exc.status, code, exc.reason)
        if isinstance(exc, web.HTTPMethodNotAllowed):  # RFC 9110: a 405 names what is allowed
            response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return response
    except Exception as exc:
        fault = fault_of(exc)
        if fault is None:
            log.exception("%s %s failed", request.method, request.path)
            return error_response(500, "internal", "internal error; see the daemon's log")
        if isinstance(exc, sqlite3.DatabaseError):  # the data dir went wrong: worth a line
            log.warning("%s %s: the index cannot be read (%s)", request.method, request.path,
                        exc)
        return error_response(fault.status, fault.code, fault.message)


def guard(token: str, public: set[str], extra_hosts: tuple[str, ...] = ()) -> Middleware:
    """Host, Origin and token checks, in that order, before any view runs."""
    if not token:
        raise ValueError("the API token must not be empty")
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        port = _local_port(request)
        allowed_hosts = {f"{name}:{port}" for name in LOOPBACK_NAMES} | set(extra_hosts)
        if request.headers.get("Host", "").lower() not in allowed_hosts:
            raise Forbidden("Host must be a loopback name with this daemon's port")
        origin = request.headers.get("Origin")
        own = {f"http://{name}:{port}" for name in LOOPBACK_NAMES}
        if origin is not None and origin not in own | {OBSIDIAN_ORIGIN}:
            raise Forbidden(f"requests from {origin} are not allowed")
        if request.method == "OPTIONS" and origin is not None:
            return _cors(web.Response(status=204), origin)
        resource = request.match_info.route.resource
        if (resource.canonical if resource is not None else request.path) not in public:
            # exact, unstripped: str.strip() would eat U+00A0 and the like
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode("utf-8", "replace"), expected):
                raise Unauthorized("missing or wrong token; `vaultlens token` prints it")
        response = await handler(request)
        if not response.prepared:  # a streamed answer has sent its headers already
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            if origin:
                _cors(response, origin)
        return response

    return middleware


def _local_port(request: web.Request) -> int:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else 0


def _cors(response: web.StreamResponse, origin: str) -> web.StreamResponse:
    response.headers["Access-Control-Allow-Origin"] = origin  # one origin, never "*"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Vary"] = "Origin"
    return response


# request bodies --------------------------------------------------------------------------
# Patterns of string fields, in the OpenAPI document and checked here alike (JSON Schema's
# "pattern" is a search, so each is anchored). Each admits only what the code behind it takes,
# so a request the document allows is never refused as malformed (tests/test_bounds.py holds
# the query language to them). Python's and JavaScript's regular expressions differ in what
# ``\s`` is (a client or a fuzzer may read these either way), so spaces are spelled out.
_SPACE = r"[ \t\n\r\f\v]"  # a space to both
_WORD_CHAR = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# (not a space to Python: what str.isspace() and the query parser's \S take to be a space)
# a vault-relative path as confine() reads it: no NUL, no backslash (absolute paths and ".."
# are well formed, and refused as forbidden)
VAULT_PATH = r"^[^\\\x00]*$"
_YEAR = r"(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001-9999
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
# a day that exists, as search/query.py's parse_date() reads one: 2024, 2024-05 or 2024-05-01
DATE = (rf"^{_SPACE}*(?:{_YEAR}(?:-(?:0?[1-9]|1[0-2]))?"
        rf"|{_YEAR}-(?:(?:0?[13578]|1[02])-(?:0?[1-9]|[12][0-9]|3[01])"
        r"|(?:0?[469]|11)-(?:0?[1-9]|[12][0-9]|30)|0?2-(?:0?[1-9]|1[0-9]|2[0-8]))"
        rf"|{_LEAP}-0?2-29){_SPACE}*$")
_FILTER_KEY = r"(?:[Pp][Aa][Tt][Hh]|[Tt][Aa][Gg]|[Kk][Ii][Nn][Dd]|[Bb][Ee][Ff][Oo][Rr][Ee]" \
              r"|[Aa][Ff][Tt][Ee][Rr]):"
# a value does not start with "=", which would make "<" and "=x" read as "<=" and "x"
_TEST = (rf"-?(?!{_FILTER_KEY})[A-Za-z_][A-Za-z0-9_.-]*(?:>=|<=|!=|>|<|=|:)"
         rf'(?:"[^"]+"|(?!["=]){_WORD_CHAR}+)')
# frontmatter property tests in the query syntax ("status:done ctr>5 -draft:true"), and only
# those: no free words, and none of the filter names (path: tag: kind: before: after:)
PROPERTY_TESTS = rf"^{_SPACE}*(?:{_TEST}(?:{_SPACE}+{_TEST})*)?{_SPACE}*$"


@dataclass(frozen=True)
class Field:
    type: type | tuple[type, ...]
    required: bool = False
    description: str = ""
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    min_length: int = 0  # for strings
    pattern: str = ""  # for strings: one of the patterns above
    shape: str = ""  # what ``pattern`` admits, in words, for the error that refuses a value
    default: Any = None  # what an optional field that is not given (or null) means


async def read_json(request: web.Request) -> Any:
    """The request's JSON body (``requests.parse`` checks its fields); too big or not JSON is
    refused."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise TooLarge(f"a JSON body may be at most {MAX_JSON_BYTES} bytes")
    raw = await request.content.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise TooLarge(f"a JSON body may be at most {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"malformed JSON: {exc}") from exc
    except RecursionError as exc:  # "[[[[…" 30,000 deep fits in 64 KB; no request nests so
        raise Invalid("malformed JSON: nested too deeply") from exc


def check_fields(body: Any, fields: dict[str, Field]) -> dict[str, Any]:
    """``body`` as a request of these fields (MCP tool arguments come through here too)."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(unknown)}")
    for name, spec in fields.items():
        if name not in body or body[name] is None:
            if spec.required:
                raise Invalid(f"missing field: {name}")
            continue
        value: Any = body[name]
        if spec.type is int and isinstance(value, float) and value.is_integer():
            value = body[name] = int(value)  # JSON Schema's integer: 74.0 is one
        if not _is_a(value, spec.type):
            raise Invalid(f"{name} has the wrong type")
        if spec.min_length and len(value) < spec.min_length:
            raise Invalid(f"{name} must not be empty")
        if spec.pattern and re.search(spec.pattern, value) is None:
            raise Invalid(f"{name}: {_short(value)} is not {spec.shape or 'well formed'}")
        if spec.minimum is not None and value < spec.minimum:
            raise Invalid(f"{name} must be at least {spec.minimum}")
        if spec.maximum is not None and value > spec.maximum:
            raise Invalid(f"{name} must be at most {spec.maximum}")
        if spec.choices and value not in spec.choices:
            raise Invalid(f"{name} must be one of {', '.join(spec.choices)}")
    return {name: value for name, value in body.items() if value is not None}  # null: not given


def _short(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "…")


def _is_a(value: object, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and kind is not bool:
        return False  # JSON true is not the number 1
    return isinstance(value, kind)


def confine(root: str, path: str) -> str:
    """A request's vault-relative path, checked: no absolute paths, no '..', no way out through
    a symlink. Returns it normalised. Paths come in JSON, so they are taken as written: a note
    named ``50%25.md`` is that file, never ``50%.md``."""
    if not path or "\x00" in path or "\\" in path:
        raise Invalid(f"invalid path {path!r}")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise Forbidden(f"{path!r}: paths are vault-relative")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts or not parts:
        raise Forbidden(f"{path!r}: paths may not leave the vault")
    rel = "/".join(parts)
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, rel))
    if not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise Forbidden(f"{path!r} leads outside the vault")
    return rel


# the route table: registered on the app and described in the OpenAPI document -----------
@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    body: dict[str, Field] = field(default_factory=dict)
    public: bool = False
    produces: str = "application/json"
    results: type | None = None  # a dataclass: the answer holds {"results": [that, ...]}
    status: int = 200  # what a success answers with
    # a body that is not an object of fields (JSON-RPC): its JSON schema, as written
    body_schema: dict[str, Any] | None = None
    also: dict[int, str] = field(default_factory=dict)  # other successes: status -> meaning
    # a shape its errors may take besides the API's (/mcp: JSON-RPC's, from the MCP SDK)
    errors: dict[str, Any] | None = None


def register(app: web.Application, routes: list[Route]) -> None:
    for r in routes:
        app.router.add_route(r.method, r.path, r.handler)


_JSON_TYPES = {str: "string", int: "integer", bool: "boolean", float: "number"}
MAX_ITEM_ID = 10**18 - 1
ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_ITEM_ID}


def _json_type(hint: Any) -> dict[str, Any]:
    """A JSON schema for a type hint of a result dataclass's field."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (types.UnionType, typing.Union) and len(args) == 1:
        inner = _json_type(args[0])
        if "enum" in inner:  # enum, unlike the other keywords, holds for null too
            inner["enum"] = [*inner["enum"], None]
        return {**inner, "type": [inner["type"], "null"]}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):  # a StrEnum: its values
        return {"type": "string", "enum": [m.value for m in hint]}
    if typing.get_origin(hint) is list:
        return {"type": "array", "items": _json_type(args[0]) if args else {}}
    if typing.get_origin(hint) is dict:
        return {"type": "object"}
    return {"type": _JSON_TYPES.get(hint, "object")}


def result_schema(kind: type) -> dict[str, Any]:
    """The JSON schema of a result dataclass, from its fields: clients check their types
    against it."""
    hints = typing.get_type_hints(kind)
    return {"type": "object", "required": [f.name for f in dataclasses.fields(kind)],
            "properties": {f.name: _json_type(hints[f.name]) for f in dataclasses.fields(kind)}}


def body_schema(fields: dict[str, Field], hidden: frozenset[str] = frozenset()
                ) -> dict[str, Any]:
    """The JSON schema of a request body of these fields: the OpenAPI document's and the MCP
    tools' alike, so what one offers the other does too."""
    props = {}
    shown = {name: f for name, f in fields.items() if name not in hidden}
    for name, f in shown.items():
        t = f.type[0] if isinstance(f.type, tuple) else f.type
        kind = _JSON_TYPES.get(t, "object")
        # an optional field may be sent as null, which means "not given"
        prop: dict[str, Any] = {"type": kind if f.required else [kind, "null"],
                                "description": f.description}
        if f.default is not None:
            prop["default"] = f.default
        if f.choices:  # enum, unlike the other keywords, holds for null too
            prop["enum"] = [*f.choices] + ([] if f.required else [None])
        if f.minimum is not None:
            prop["minimum"] = f.minimum
        if f.maximum is not None:
            prop["maximum"] = f.maximum
        if f.min_length:
            prop["minLength"] = f.min_length
        if f.pattern:
            prop["pattern"] = f.pattern
        props[name] = prop
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": [n for n, f in shown.items() if f.required]}


def openapi(routes: list[Route], version: str, hidden: frozenset[str] = frozenset()
            ) -> dict[str, Any]:
    """The document of these routes; body fields named in ``hidden`` are left out (what this
    daemon refuses whatever their value: a search by picture without a visual model)."""
    error = {"$ref": "#/components/schemas/Error"}
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for r in routes:
        answer: dict[str, Any] = {}
        if r.results is not None:
            schemas[r.results.__name__] = result_schema(r.results)
            answer = {"schema": {"type": "object", "properties": {
                "ok": {"const": True},
                "results": {"type": "array",
                            "items": {"$ref": f"#/components/schemas/{r.results.__name__}"}}}}}
        op: dict[str, Any] = {
            "summary": r.summary,
            "responses": {str(r.status): {"description": "OK",
                                          "content": {r.produces: answer}},
                          "default": {"description": "error", "content": {
                              "application/json": {"schema": error if r.errors is None
                                                   else {"anyOf": [error, r.errors]}}}}},
        }
        for code, meaning in r.also.items():
            op["responses"][str(code)] = {"description": meaning}
        if not r.public:
            op["security"] = [{"bearer": []}]
        names = re.findall(r"\{(\w+)\}", r.path)
        if names:
            op["parameters"] = [{"name": n, "in": "path", "required": True,
                                 "schema": ID_SCHEMA if n == "id" else {"type": "string"}}
                                for n in names]
        if r.body_schema is not None:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": r.body_schema}}}
        if r.body:
            # required: a POST with no body is refused, so the document must not offer one
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": body_schema(r.body, hidden)}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "vaultlens", "version": version},
        "servers": [{"url": "http://127.0.0.1:27123"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**schemas, "Error": {"type": "object", "properties": {
                "ok": {"const": False},
                "error": {"type": "object", "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}}}}}},
        },
    }
