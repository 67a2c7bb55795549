"""Real Chromium with the network blocked, for the tests of nnsee's pages: static ones opened from disk, and the
live page on loopback.

``offline_page()`` launches Debian's Chromium (Playwright drives it; never ``playwright install``), aborts every
request that is not ``file:`` or ``data:`` (counted in ``blocked``) and collects page errors and console errors (in
``errors``). A missing Playwright skips with a reason naming it, which fails the run under CI=true
(tests/required_resources.py); a missing Chromium likewise through ``needs_chromium``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium missing: apt-get install chromium "
                                    "(done by .ci/run)")


@dataclass
class Offline:
    """The open page, the URLs it asked for that were aborted, and its page and console errors."""

    page: Any
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def offline_page(width: int = 1280, height: int = 900, *, console: bool = True,
                 loopback: bool = False) -> Iterator[Offline]:
    """A page of a fresh headless Chromium whose requests other than ``file:``/``data:`` (and, with ``loopback``,
    ``http://127.0.0.1``: the live page's server) are aborted and counted; ``console``: console errors count as
    errors too (page errors always do)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright missing (pip install playwright)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            seen = Offline(page)

            allowed = ("file:", "data:", "http://127.0.0.1:", "http://127.0.0.1/") if loopback else ("file:", "data:")

            def route(r: Any) -> None:
                if r.request.url.startswith(allowed):
                    r.continue_()
                else:
                    seen.blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
            if console:
                page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
            yield seen
        finally:
            browser.close()
