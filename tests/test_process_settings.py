"""Process-wide settings (numpy's BLAS threads, torch's threads) are the entry point's: a
program that imports vaultlens and builds a daemon's parts keeps its own until a ``Tuning``
is applied (by `vaultlens serve` or `vaultlens mcp`, or the app it starts), and gets them
back after. Each check runs in a process of its own: the settings are process-wide."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexing import VAULT, MakeVault

BUILD = """
import asyncio, sys
from pathlib import Path
import torch
from threadpoolctl import threadpool_info

def now():
    blas = [x["num_threads"] for x in threadpool_info() if x["user_api"] == "blas"]
    return blas, torch.get_num_threads()

before = now()
import vaultlens.cli, vaultlens.serve.app, vaultlens.serve.mcp_stdio, vaultlens.workspace
from aiohttp import web
from vaultlens.config import Config
from vaultlens.serve.app import make_app
from vaultlens.serve.daemon import Daemon
from vaultlens.serve.tuning import Tuning
from vaultlens.workspace import open_workspace

# threads for the models unlike torch's own: a constructor that applied them would show
cfg = Config(vault=Path(sys.argv[1]), data_dir=Path(sys.argv[2]), model="minilm", ocr=False,
             threads=before[1] + 1)
imported = now()
ws = open_workspace(cfg, True)
daemon = Daemon.open(ws, 3600, 4)
daemon.close()
ws.close()
app = make_app(cfg, 3600, watching=False, tuning=Tuning(search_threads=4, blas_threads=1))
built = now()

async def run():
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()  # the app holds the tuning it was given while it runs
    during = now()[0]
    await runner.cleanup()
    return during

during = asyncio.run(run())
print(before, imported, built, during, now()[0], sep="|")
"""


@pytest.mark.slow
def test_building_a_daemon_changes_no_process_setting_until_its_tuning_is_applied(
        make_vault: MakeVault, tmp_path: Path) -> None:
    vault = make_vault(VAULT)
    out = subprocess.run([sys.executable, "-c", BUILD, str(vault), str(tmp_path / "d")],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "2"}).stdout
    before, imported, built, during, after = out.split("\n")[-2].split("|")
    assert before.startswith("([2], "), out  # the environment's BLAS setting, and torch's
    assert imported == before and built == before, out  # importing and building: none
    assert during == "[1]" and after == "[2]", out  # the tuning, while the app runs
