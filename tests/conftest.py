"""Fixtures for every test: a headless Chromium (Debian's, driven by Playwright) for the
browser tests. Playwright's own browser download is not used."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import hypothesis  # noqa: F401 - imported early: a late import at exit can fail (CPython 3.11)
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# Module scope: while Playwright's sync API is open, the main thread counts as running an
# event loop (asyncio.run() refuses), so it must not outlive the browser tests' module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (a ``playwright.sync_api.Browser``)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver "
                    "(.ci/run does that)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
