"""The search page in a real headless Chromium: where chromium is, the mark that skips without it
(CI sets VAULTLENS_BROWSER=required, where a missing chromium fails instead), and a signed-in page.
The browser itself is conftest.py's `browser` fixture."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from served import Served

CHROMIUM = next((p for p in (os.environ.get("VAULTLENS_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser")) if p), None)


CAPTURE = """
window.__opened = [];
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a");
  if (a && a.href.startsWith("obsidian:")) { e.preventDefault(); window.__opened.push(a.href); }
}, true);
"""


def signed_in(browser: Any, served: Served, query: str = "", **context: Any) -> Any:
    page = browser.new_context(**context).new_page()
    page.add_init_script(CAPTURE)
    page.goto(f"{served.base}/{query}#token={served.token}")
    return page


# CI sets VAULTLENS_BROWSER=required: there a missing chromium fails instead of skipping
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("VAULTLENS_BROWSER") != "required",
    reason="no chromium installed (apt-get install chromium)")
