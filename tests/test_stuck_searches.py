"""Through the daemon: a query worker that is stopped, or whose pipe is out of step, costs the
searches their vectors for a while, never /api/status, /api/health or a 500."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inprocess_api import VAULT, Api, open_api
from vaultlens.embedders.minilm_numpy import NumpyMiniLM
from vaultlens.embedders.process import InWorker
from vaultlens.serve.daemon import DAEMON
from vaultlens.serve.queries import Queries
from worker_pipes import query_answer_pipe as answer_pipe
from worker_pipes import query_framed as framed

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="stops the worker and writes into its pipe by /proc")
MakeVault = Callable[[dict[str, str | bytes]], Path]


@pytest.fixture
async def api(aiohttp_client: Any, make_vault: MakeVault, tmp_path: Path) -> Api:
    return await open_api(aiohttp_client, make_vault(VAULT), tmp_path / "data")


def query_worker(api: Api) -> InWorker:
    worker = api.app[DAEMON].query_model.model.model  # type: ignore[attr-defined]
    assert isinstance(worker, InWorker)
    return worker


async def test_status_and_health_answer_while_every_search_waits(api: Api) -> None:
    """The query worker stopped (SIGSTOP): every search thread waits on it, up to the
    worker's timeout. Status (the API's and the MCP tool's) and health still answer at once."""
    pid = query_worker(api).pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        searches = [asyncio.ensure_future(api.post("/api/search", {"query": f"storm pier {i}"}))
                    for i in range(api.app[DAEMON].search_threads + 2)]
        await asyncio.sleep(1.0)  # each search thread now waits on the stopped worker
        for path in ("/api/health", "/api/status"):
            start = time.monotonic()
            code, body = await asyncio.wait_for(api.get(path), 10)
            assert code == 200 and body["ok"], body
            assert time.monotonic() - start < 2, path
        status = await asyncio.wait_for(
            Queries(api.app[DAEMON]).status(), 10)
        assert status["state"] == "idle"
        assert not any(s.done() for s in searches)  # the searches were held up all along
    finally:
        os.kill(pid, signal.SIGCONT)
    for code, body in await asyncio.gather(*searches):
        assert code == 200 and body["results"], body


async def test_an_answer_out_of_step_is_a_keyword_search_then_vectors_again(api: Api) -> None:
    """A stray answer in the worker's pipe (another query's vector): that search is answered
    by keywords and says so, never ranked by the stray vector; the worker is replaced, and
    the next search is ranked by its own query's vector again."""
    worker = query_worker(api)
    _, alone = await api.post("/api/search", {"query": "selective sync settings"})
    assert alone["partial"] is False
    stray = NumpyMiniLM().embed_texts(["selective sync settings"], "query")
    with open(answer_pipe(worker), "wb") as pipe:
        pipe.write(framed(pickle.dumps(("ok", stray)), seq=0))  # no request's number
    code, body = await api.post("/api/search", {"query": "storm over the pier"})
    assert code == 200 and body["partial"] is True, body
    assert "pier" in body["results"][0]["text"].lower()
    code, again = await api.post("/api/search", {"query": "selective sync settings folder"})
    assert code == 200 and again["partial"] is False
    assert again["results"][0]["path"] == alone["results"][0]["path"]
