"""Debian's Chromium driven by playwright (no browser download), shared by the browser tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser; the test fails (not skips) when it cannot be started."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y --no-install-recommends chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]' (no browser download)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch(page: Any) -> Any:
    """``page`` with ``page.problems``: every console message, page error and request to
    anything but a local file (a report must load nothing from the network)."""
    page.problems = []
    page.on("console", lambda m: page.problems.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    page.on("request", lambda r: r.url.startswith("file:") or page.problems.append(r.url))
    return page


def open_report(page: Any, url: str, *, javascript: bool = True) -> Any:
    """Load a report in ``page`` (watched) and wait until its script has decoded the tables
    (asynchronous: DecompressionStream)."""
    watch(page).goto(url)
    page.wait_for_load_state("load")
    if javascript:
        page.wait_for_function("document.documentElement.classList.contains('js')")
    return page
