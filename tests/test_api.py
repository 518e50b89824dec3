"""The localhost API through aiohttp_client on a real socket, with the real MiniLM."""

from __future__ import annotations

import asyncio
import io
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData

from indexing import screenshot
from inprocess_api import VAULT, Api, Client, MakeVault, assert_error, open_api
from vaultlens.config import Config
from vaultlens.embedders.base import ModelError
from vaultlens.embedders.minilm_numpy import NumpyMiniLM
from vaultlens.embedders.process import InWorker
from vaultlens.index.datadir import DataDir
from vaultlens.serve.app import make_app
from vaultlens.serve.daemon import DAEMON
from vaultlens.serve.routes import ROUTES


@pytest.fixture
async def api(aiohttp_client: Client, make_vault: MakeVault, tmp_path: Path) -> Api:
    return await open_api(aiohttp_client, make_vault(VAULT), tmp_path / "data")


async def test_health_needs_no_token(api: Api) -> None:
    resp = await api.client.get("/api/health")
    assert resp.status == 200 and (await resp.json())["ok"] is True


async def test_search_and_filters(api: Api) -> None:
    status, body = await api.post("/api/search", {"query": "harbour office board", "k": 5})
    assert status == 200 and body["ok"] is True
    image = next(r for r in body["results"] if r["kind"] == "image")
    assert image["path"] == "Attachments/board.png"
    assert image["links"][0]["note"] == "Trips/Pier.md" and image["links"][0]["line"] == 8
    _, only_notes = await api.post("/api/search", {"query": "harbour", "kind": "note"})
    assert {r["kind"] for r in only_notes["results"]} == {"note"}
    _, tagged = await api.post("/api/search", {"query": "sync folder storm", "tag": "travel"})
    assert {r["path"] for r in tagged["results"]} <= {"Trips/Pier.md", "Attachments/board.png"}
    assert tagged["results"]
    _, under = await api.post("/api/search", {"query": "sync", "path": "Trips"})
    assert all(r["path"].startswith("Trips/") for r in under["results"])
    _, page2 = await api.post("/api/search", {"query": "pier", "k": 1, "offset": 1})
    _, page1 = await api.post("/api/search", {"query": "pier", "k": 2})
    assert page2["results"][0]["id"] == page1["results"][1]["id"]


async def test_a_search_announces_its_query_before_it_has_a_thread(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """So that searches waiting in line are embedded together (coalesce.py); one whose text
    depends on the vault's properties, or that embeds nothing, announces nothing."""
    from vaultlens.search.searcher import Searcher

    daemon = api.app[DAEMON]
    told: list[str] = []
    monkeypatch.setattr(daemon.query_model, "ahead", told.append)
    embedded: list[str] = []
    real = Searcher.query_vector

    def spy(self: Searcher, text: str, image: Any = None) -> Any:
        embedded.append(text)
        return real(self, text, image)

    monkeypatch.setattr(Searcher, "query_vector", spy)
    for query in ("harbour  office board kind:image", "tides x:y", "同步", ""):
        status, _ = await api.post("/api/search", {"query": query})
        assert status == 200
    assert told == ["harbour office board"] == embedded[:1]
    assert embedded[1] == "tides x:y"  # x is no property here: a word, but not told ahead


async def test_search_fields_and_query_syntax_agree(api: Api) -> None:
    (api.vault / "Log.md").write_text("---\nstatus: done\nctr: 9\ndate: 2021-03-01\n---\n"
                                      "# Log\n\nThe harbour crane was repaired.\n")
    await api.post("/api/reindex", {"path": "Log.md"})
    await api.idle()
    by_fields = await api.post("/api/search", {"query": "harbour", "where": "status:done ctr>5",
                                               "before": "2022", "exclude": "office"})
    by_syntax = await api.post("/api/search", {"query": "harbour status:done ctr>5 "
                                               "before:2022 -office"})
    for status, body in (by_fields, by_syntax):
        assert status == 200
        assert [(r["path"], r["line"]) for r in body["results"]] == [("Log.md", 8)]
        hit = body["results"][0]
        assert [hit["text"][a:b] for a, b in hit["highlights"]] == ["harbour"]
    _, pier = await api.post("/api/search", {"query": "storm over the old pier", "kind": "note"})
    assert pier["results"][0]["images"][0]["path"] == "Attachments/board.png"


@pytest.mark.parametrize("body", [
    {"query": "harbour", "before": "someday"},
    {"query": "harbour kind:movie"},
    {"query": "harbour", "where": "status:done and more words"},
    {"query": "harbour", "image": "Attachments/board.png"},  # a text model has no eyes
    {"query": "", "image": "../outside.png"},
])
async def test_search_refusals_say_why(api: Api, body: dict[str, str]) -> None:
    status, answer = await api.post("/api/search", body)
    assert status in (400, 403)
    assert_error(status, answer, status, "bad_request" if status == 400 else "forbidden")


async def test_item_thumbnail_and_similar(api: Api) -> None:
    _, body = await api.post("/api/search", {"query": "harbour office board", "kind": "image"})
    image_id = body["results"][0]["id"]
    status, item = await api.get(f"/api/items/{image_id}")
    assert status == 200 and item["item"]["path"] == "Attachments/board.png"
    assert item["item"]["links"][0]["context"]
    resp = await api.client.get(f"/api/items/{image_id}/thumbnail", headers=api.headers())
    assert resp.status == 200 and resp.content_type == "image/webp"
    assert (await resp.read())[:4] == b"RIFF"
    _, notes = await api.post("/api/search", {"query": "storm pier night", "kind": "note"})
    status, note = await api.get(f"/api/items/{notes['results'][0]['id']}")
    assert status == 200 and "storm" in note["item"]["text"]
    status, sim = await api.post("/api/similar", {"path": "Attachments/board.png", "k": 3})
    assert status == 200 and sim["results"]
    assert all(r["path"] != "Attachments/board.png" for r in sim["results"])
    assert_error(*await api.get(f"/api/items/{image_id + 999}/thumbnail"), 404, "not_found")
    assert_error(*await api.get("/api/items/abc"), 400, "bad_request")


async def test_upload_to_a_text_model_says_visual_search_is_off(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def decode(data: bytes) -> None:  # 8000 x 8000 took hundreds of MB before the refusal
        raise AssertionError("a picture no one can use was decoded")

    monkeypatch.setattr("vaultlens.serve.queries.open_image", decode)
    form = FormData()
    form.add_field("image", screenshot("x"), filename="x.png", content_type="image/png")
    resp = await api.client.post("/api/similar", data=form, headers=api.headers())
    body = await resp.json()
    assert_error(resp.status, body, 400, "bad_request")
    assert "visual search is off" in body["error"]["message"]
    form = FormData()
    form.add_field("image", b"not a picture", filename="x.png")
    resp = await api.client.post("/api/similar", data=form, headers=api.headers())
    assert_error(resp.status, await resp.json(), 400, "bad_request")


async def test_reindex_puts_a_new_file_first(api: Api) -> None:
    (api.vault / "Fresh.md").write_text("# Fresh\n\nThe walrus ledger reconciliation.\n")
    status, body = await api.post("/api/reindex", {"path": "Fresh.md"})
    assert status == 202 and body["queued"] == "Fresh.md"
    await api.idle()
    _, found = await api.post("/api/search", {"query": "walrus ledger", "k": 1})
    assert found["results"][0]["path"] == "Fresh.md"


async def test_status(api: Api) -> None:
    status, body = await api.get("/api/status")
    assert status == 200
    assert body["visual_search"] is False and "visual search is off" in body["notice"]
    assert body["counts"]["items"] == body["vectors"] > 0
    assert body["queue"] == 0 and body["last_run"]["indexed"] == 3
    assert isinstance(body["failures"], list)


async def test_openapi_matches_the_routes(api: Api) -> None:
    status, doc = await api.get("/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    routed = {(r.method, r.resource.canonical) for r in api.app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    assert documented == routed
    search = doc["paths"]["/api/search"]["post"]["requestBody"]["content"]["application/json"]
    assert search["schema"]["additionalProperties"] is False
    assert "query" in search["schema"]["required"]
    # a POST with no body is refused, so none is offered: every body is required
    posts = {p: ops["post"] for p, ops in doc["paths"].items() if "post" in ops}
    assert set(posts) == {"/api/search", "/api/context", "/api/similar", "/api/read",
                          "/api/reindex", "/mcp"}
    assert all(op["requestBody"]["required"] is True for op in posts.values())
    assert "anyOf" in posts["/mcp"]["requestBody"]["content"]["application/json"]["schema"]
    # a text model refuses every search by picture: the document does not offer one
    assert "image" not in search["schema"]["properties"]
    assert "before" in search["schema"]["properties"]
    # what a search answers is described too, and matches what it really answers
    hit = doc["components"]["schemas"]["Hit"]
    _, found = await api.post("/api/search", {"query": "harbour", "k": 1})
    assert set(found["results"][0]) == set(hit["properties"]) == set(hit["required"])


async def test_every_route_answers_errors_in_one_shape(api: Api) -> None:
    for r in ROUTES:
        path = r.path.replace("{id}", "1").replace("{name}", "app.js")
        resp = await api.client.request(r.method, path)  # no token
        if r.public:
            assert resp.status == 200
            continue
        assert_error(resp.status, await resp.json(), 401, "unauthorized")
        if r.method == "POST":
            resp = await api.client.post(path, data=b"{nope", headers=api.headers())
            assert_error(resp.status, await resp.json(), 400, "bad_request")
        if path == "/mcp":  # malformed JSON-RPC: the protocol's own error, from the SDK
            resp = await api.client.post(path, data=b"{nope", headers=api.headers(**{
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream"}))
            assert resp.status == 400 and (await resp.json())["error"]["code"] == -32700
    assert_error(*await api.get("/api/nothing-here"), 404, "not_found")
    resp = await api.client.delete("/api/search", headers=api.headers())
    assert_error(resp.status, await resp.json(), 405, "method_not_allowed")


# security: one test per refusal ------------------------------------------------------------
async def test_wrong_token(api: Api) -> None:
    resp = await api.client.get("/api/status", headers={"Authorization": "Bearer nope"})
    assert_error(resp.status, await resp.json(), 401, "unauthorized")


async def test_token_file_is_private(api: Api, tmp_path: Path) -> None:
    assert os.stat(tmp_path / "data" / "token").st_mode & 0o777 == 0o600


async def test_foreign_host_is_refused(api: Api) -> None:
    resp = await api.client.get("/api/health", headers={"Host": "evil.example:80"})
    assert_error(resp.status, await resp.json(), 403, "forbidden")
    port = api.client.port
    resp = await api.client.get("/api/health", headers={"Host": f"attacker.test:{port}"})
    assert_error(resp.status, await resp.json(), 403, "forbidden")


async def test_foreign_origin_is_refused(api: Api) -> None:
    resp = await api.client.get("/api/status", headers=api.headers(Origin="https://evil.test"))
    assert_error(resp.status, await resp.json(), 403, "forbidden")


async def test_obsidian_origin_gets_cors_for_itself_only(api: Api) -> None:
    resp = await api.client.get("/api/status",
                                headers=api.headers(Origin="app://obsidian.md"))
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "app://obsidian.md"
    plain = await api.client.get("/api/status", headers=api.headers())
    assert "Access-Control-Allow-Origin" not in plain.headers
    pre = await api.client.options("/api/search", headers={"Origin": "app://obsidian.md"})
    assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] != "*"


@pytest.mark.parametrize("bad", ["../outside.md", "Trips/../../x.md", "./../x.md",
                                 "/etc/passwd", "C:/Windows/x.md"])
async def test_paths_may_not_leave_the_vault(api: Api, bad: str) -> None:
    assert_error(*await api.post("/api/reindex", {"path": bad}), 403, "forbidden")


async def test_json_paths_are_taken_as_written(api: Api) -> None:
    (api.vault / "50%25.md").write_text("# Fifty\n\nHalf of it.\n")
    for name in ("50%25.md", "%2e%2e/outside.md"):  # literal names, inside the vault
        status, body = await api.post("/api/reindex", {"path": name})
        assert status == 202 and body["queued"] == name


async def test_symlink_out_of_the_vault_is_refused(api: Api, tmp_path: Path) -> None:
    (tmp_path / "secret.md").write_text("secret")
    os.symlink(tmp_path / "secret.md", api.vault / "link.md")
    assert_error(*await api.post("/api/similar", {"path": "link.md"}), 403, "forbidden")


async def test_unknown_fields_and_bad_types(api: Api) -> None:
    assert_error(*await api.post("/api/search", {"query": "x", "limit": 3}), 400, "bad_request")
    assert_error(*await api.post("/api/search", {"query": 5}), 400, "bad_request")
    assert_error(*await api.post("/api/search", {"query": "x", "k": True}), 400, "bad_request")
    assert_error(*await api.post("/api/search", {"query": "x", "k": 0}), 400, "bad_request")
    assert_error(*await api.post("/api/search", {"query": "x", "kind": "video"}), 400,
                 "bad_request")
    assert_error(*await api.post("/api/search", [1, 2]), 400, "bad_request")


async def test_oversized_bodies(api: Api) -> None:
    huge = {"query": "x" * 70_000}
    assert_error(*await api.post("/api/search", huge), 413, "too_large")
    form = FormData()
    form.add_field("image", b"\0" * (21 * 2**20), filename="big.png")
    resp = await api.client.post("/api/similar", data=form, headers=api.headers())
    assert_error(resp.status, await resp.json(), 413, "too_large")


async def test_deeply_nested_json_is_a_clean_400(api: Api) -> None:
    deep = b'{"query": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"  # 60 KB: under the body cap
    json_type = {"Content-Type": "application/json"}
    for path in ("/api/search", "/api/context", "/api/read", "/api/similar", "/api/reindex"):
        resp = await api.client.post(path, data=deep, headers=api.headers(**json_type))
        status, body = resp.status, await resp.json()
        assert_error(status, body, 400, "bad_request")
        assert "nested too deeply" in body["error"]["message"]
    resp = await api.client.post("/mcp", data=deep, headers=api.headers(**json_type))
    assert resp.status == 400 and (await resp.json())["error"]["code"] == -32700


async def test_reading_a_few_lines_of_a_huge_note_holds_only_those(api: Api) -> None:
    import tracemalloc

    from vaultlens.serve.lines import MAX_READ_CHARS

    # rewritten after it was indexed: a read takes the file as it is now, 36 MB
    (api.vault / "Sync.md").write_bytes(b"# Big\n" + b"line of text\n" * 3_000_000)
    tracemalloc.start()
    try:
        status, body = await api.post("/api/read", {"path": "Sync.md", "start_line": 2,
                                                    "end_line": 4})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200, body
    assert body["read"]["text"] == "line of text\nline of text\nline of text"
    assert body["read"]["total_lines"] == 3_000_001 and body["read"]["truncated"] is None
    assert peak < 8 * 2**20  # the whole file, decoded and split, was hundreds of MB
    # one line longer than a read may return: cut, and said so
    (api.vault / "Sync.md").write_text("# Long\n" + "x" * (MAX_READ_CHARS + 10) + "\nend\n")
    status, body = await api.post("/api/read", {"path": "Sync.md"})
    read = body["read"]
    assert status == 200 and read["truncated"] and read["end_line"] == 2
    assert len(read["text"]) == len("# Long\n") + MAX_READ_CHARS - len("# Long")
    assert read["total_lines"] == 3


async def test_handlers_never_block_the_loop(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """asyncio's debug mode logs every callback that holds the loop too long."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.1
    caplog.set_level(logging.WARNING, logger="asyncio")
    try:
        for query in ("storm over the pier", "selective sync", "harbour"):
            await api.post("/api/search", {"query": query})
        await api.get("/api/status")
        await api.post("/api/similar", {"path": "Attachments/board.png"})
        (api.vault / "Sync.md").write_text("# Sync\n\nChanged text about vaults.\n")
        await api.post("/api/reindex", {"path": "Sync.md"})
        await api.idle()
        await api.post("/api/search", {"query": "changed text"})
    finally:
        loop.set_debug(False)
    # the handlers' tasks, not this test's own (its client side can stall on a busy machine when
    # the indexing thread holds the GIL, which says nothing about the handlers)
    slow = [r.getMessage() for r in caplog.records if "Executing" in r.getMessage()
            and "test_handlers_never_block_the_loop" not in r.getMessage()]
    assert slow == []


def test_non_loopback_bind_needs_allow_remote(make_vault: MakeVault, tmp_path: Path) -> None:
    from vaultlens.serve.app import serve

    cfg = Config(vault=make_vault({"a.md": "x"}), data_dir=tmp_path / "d", model="minilm")
    with pytest.raises(SystemExit, match="pass --allow-remote"):
        serve(cfg, "0.0.0.0", 27123, allow_remote=False, reconcile_every=600)


async def test_keyword_answers_while_the_model_loads(aiohttp_client: Client, make_vault: MakeVault,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Search answers from the first second: keyword-only, flagged partial, until the query
    model is in; then with vectors too. The indexing thread waits for the model."""
    import threading

    from vaultlens.serve.daemon import Daemon

    release = threading.Event()
    real_warm = Daemon._warm

    def held_warm(self: Daemon) -> None:
        release.wait(60)
        real_warm(self)

    monkeypatch.setattr(Daemon, "_warm", held_warm)
    vault = make_vault(VAULT)
    data = tmp_path / "data"
    # an index already on disk, as after a restart
    from indexing import Run

    Run(vault, data).index(ocr=False)
    app = make_app(Config(vault=vault, data_dir=data, model="minilm", ocr=False),
                   watching=False)
    client = await aiohttp_client(app)
    api = Api(client, DataDir(data).token(), vault, app)
    status, early = await api.post("/api/search", {"query": "selective sync settings"})
    assert status == 200 and early["partial"] is True
    # an index already complete: only the model is missing
    assert early["partial_reason"] == "model loading" and early["indexed_share"] == 1.0
    assert early["results"][0]["path"] == "Sync.md"
    _, state = await api.get("/api/status")
    assert state["vector_search_ready"] is False and state["runs"] == 0
    release.set()
    await api.idle()
    _, later = await api.post("/api/search", {"query": "keep sync away from one directory"})
    assert later["partial"] is False and later["results"][0]["path"] == "Sync.md"
    assert later["partial_reason"] is None and later["indexed_share"] == 1.0


async def test_reindex_of_an_unchanged_file_drains(api: Api) -> None:
    """A reindex request for a file with nothing new must not stay queued forever."""
    status, _ = await api.post("/api/reindex", {"path": "Sync.md"})
    assert status == 202
    await api.idle()
    _, state = await api.get("/api/status")
    assert state["queue"] == 0 and state["indexing"] is False


async def test_search_by_image_with_a_visual_model(aiohttp_client: Client, make_vault: MakeVault,
                                                   tmp_path: Path, tiny_qwen_path: Path) -> None:
    """The `image` field with a model that sees (the tiny random Qwen3-VL): alone, or with
    words; a path that is not a picture is refused with the reason."""
    vault = make_vault(VAULT)
    cfg = Config(vault=vault, data_dir=tmp_path / "data", model=str(tiny_qwen_path), ocr=False)
    app = make_app(cfg, watching=False)
    api = Api(await aiohttp_client(app), DataDir(tmp_path / "data").token(), vault, app)
    await api.idle()
    await asyncio.get_running_loop().run_in_executor(None, app[DAEMON].ready.wait, 60)
    status, alone = await api.post("/api/search", {"query": "", "image": "Attachments/board.png"})
    assert status == 200, alone
    assert "Attachments/board.png" in {r["path"] for r in alone["results"]}
    status, mixed = await api.post("/api/search",
                                   {"query": "storm", "image": "Attachments/board.png"})
    assert status == 200 and mixed["results"]
    assert_error(*await api.post("/api/search", {"query": "", "image": "Sync.md"}), 400,
                 "bad_request")
    assert_error(*await api.post("/api/search", {"query": "", "image": "Attachments/none.png"}),
                 400, "bad_request")
    # an upload past the pixel cap is refused like the indexer refuses it
    status, body = await upload_big_picture(api)
    assert_error(status, body, 400, "bad_request")
    assert "limit" in body["error"]["message"]
    _, doc = await api.get("/api/openapi.json")  # a model that sees is offered the field
    assert "image" in doc["paths"]["/api/search"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]


def test_an_empty_or_broken_token_file_is_replaced(tmp_path: Path) -> None:
    for broken in ("", "\n", "short", "has spaces in it and is long enough to pass a length"):
        (tmp_path / "token").write_text(broken)
        token = DataDir(tmp_path).token()
        assert len(token) >= 32 and token != broken.strip()
        assert (tmp_path / "token").read_text().strip() == token
        assert os.stat(tmp_path / "token").st_mode & 0o777 == 0o600
    assert DataDir(tmp_path).token() == token  # a valid one is kept


async def test_token_compare_is_exact(api: Api) -> None:
    # (trailing spaces and tabs are HTTP whitespace, trimmed by the parser before us)
    for header in (f"Bearer  {api.token}", f"bearer {api.token}",
                   "Bearer \u00a0", "Bearer", "Bearer ", f"Bearer {api.token}\u00a0"):
        resp = await api.client.get("/api/status", headers={"Authorization": header})
        assert resp.status == 401, header


async def test_truncated_or_odd_uploads_are_400(api: Api) -> None:
    head = (b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n")
    for body, ctype in ((head, "multipart/form-data; boundary=XyZ"),  # no closing boundary
                        (head + b"\r\n--XyZ--\r\n", "multipart/form-data"),  # no boundary
                        (b"", "multipart/form-data; boundary=XyZ")):
        resp = await api.client.post("/api/similar", data=body, headers=api.headers(**{
            "Content-Type": ctype}))
        assert_error(resp.status, await resp.json(), 400, "bad_request")
    # a picture past the pixel cap is refused before it is decoded: a text model needs none
    status, body = await upload_big_picture(api)
    assert_error(status, body, 400, "bad_request")
    assert "visual search is off" in body["error"]["message"]


async def upload_big_picture(api: Api) -> tuple[int, Any]:
    """/api/similar's answer to an upload past the pixel cap."""
    form = FormData()
    form.add_field("image", big_picture(), filename="big.png", content_type="image/png")
    resp = await api.client.post("/api/similar", data=form, headers=api.headers())
    return resp.status, await resp.json()


def big_picture() -> bytes:
    """A PNG past the 64 MP cap (small on disk: one bit a pixel)."""
    from PIL import Image

    big = io.BytesIO()
    Image.new("1", (9000, 9000)).save(big, "PNG")
    return big.getvalue()


@pytest.mark.parametrize("excluded", [".trash/old.md", ".obsidian/app.json", "Private/x.md"])
async def test_reindex_refuses_excluded_paths(api: Api, excluded: str) -> None:
    (api.vault / ".obsidian").mkdir(exist_ok=True)
    (api.vault / ".obsidian" / "app.json").write_text('{"userIgnoreFilters": ["Private/"]}')
    status, body = await api.post("/api/reindex", {"path": excluded})
    assert_error(status, body, 403, "forbidden")
    assert "excluded" in body["error"]["message"]


async def test_literal_queries_are_prose(api: Api) -> None:
    prose = 'We said "storm" kind:of after:lunch -pier and then left.'
    assert_error(*await api.post("/api/search", {"query": prose}), 400, "bad_request")
    status, body = await api.post("/api/search", {"query": prose, "literal": True})
    assert status == 200, body
    assert "Trips/Pier.md" in [r["path"] for r in body["results"][:2]]


async def test_status_tells_not_started_from_done(aiohttp_client: Client, make_vault: MakeVault,
                                                  tmp_path: Path) -> None:
    app = make_app(Config(vault=make_vault(VAULT), data_dir=tmp_path / "data", model="minilm",
                          ocr=False), watching=False)
    client = await aiohttp_client(app)
    a = Api(client, DataDir(tmp_path / "data").token(), tmp_path, app)
    _, first = await a.get("/api/status")
    assert first["state"] in ("loading", "starting", "indexing")  # never "idle" before a run
    seen = {first["state"]}
    while seen.isdisjoint({"idle"}):
        _, s = await a.get("/api/status")
        seen.add(s["state"])
        if s["state"] == "indexing":  # an ETA, or honestly "estimating"
            eta = s["progress"]["eta_s"]
            assert (eta is None) == (s["progress"]["eta"] == "estimating")
            assert eta is None or eta >= 0
        await asyncio.sleep(0.02)
    _, done = await a.get("/api/status")
    assert done["state"] == "idle" and done["runs"] >= 1 and not done["indexing"]
    # queries are embedded by the numpy MiniLM in a worker process: no torch thread setting
    # (process-wide) that would reach the indexer's model, no torch import before the first
    # vector answer, and no GIL shared with the searches (inside the query cache and the
    # batching of queries that arrive together)
    worker = app[DAEMON].query_model.model.model  # type: ignore[attr-defined]
    assert isinstance(worker, InWorker) and isinstance(worker.model, NumpyMiniLM)
    assert worker.pid is not None
    # and pastes are embedded by it: no wait for the indexer's torch model to load
    indexer = app[DAEMON].service.indexer
    assert indexer is not None and indexer.urgent_vectorizer.embedder is app[DAEMON].query_model


async def test_searches_run_side_by_side_with_the_same_answers(api: Api) -> None:
    """Searches at once each get a search thread with its own read connection, and answer
    exactly as one at a time."""
    queries = ["harbour office board", "selective sync settings", "storm pier", "graph dots",
               "zebra", "sync folder"] * 4
    alone = [(await api.post("/api/search", {"query": q}))[1]["results"] for q in queries]
    together = await asyncio.gather(*(api.post("/api/search", {"query": q}) for q in queries))
    assert [body["results"] for _, body in together] == alone
    readers, threads = api.app[DAEMON].readers, api.app[DAEMON].search_threads
    assert len(readers._open) == threads  # opened at start, none since
    assert len(readers._spare) <= threads - 2  # at least two threads took one


async def test_a_failing_query_model_leaves_the_keywords(api: Api,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The query model's worker died or stuck: the search is answered by keywords and says
    so ("partial"), not with a 500."""
    daemon = api.app[DAEMON]

    def died(inputs: object, role: str) -> object:
        raise ModelError("minilm: the query model's worker process ended")

    monkeypatch.setattr(daemon.query_model, "embed", died)
    status, body = await api.post("/api/search", {"query": "selective sync settings"})
    assert status == 200 and body["partial"] is True
    assert body["results"] and "sync" in body["results"][0]["text"].lower()
    status, body = await api.post("/api/context", {"query": "selective sync settings"})
    assert status == 200 and body["partial"] is True and body["pack"]["entries"]


async def test_reading_a_note_turned_fifo_is_refused_at_once(api: Api) -> None:
    fifo = api.vault / "Sync.md"  # indexed as a note, then swapped for a FIFO
    fifo.unlink()
    os.mkfifo(fifo)
    try:
        status, body = await asyncio.wait_for(api.post("/api/read", {"path": "Sync.md"}), 10)
    finally:  # a reader blocked on the FIFO (the bug) is let go, so the daemon can close
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK) if _has_reader(fifo) else None
        if fd is not None:
            os.close(fd)
    assert status == 403 and body["error"]["code"] == "forbidden", body
    assert "not a regular file" in body["error"]["message"]


def _has_reader(fifo: Path) -> bool:
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: nobody has it open for reading
        return False
    return True
