"""The browser rig (headless Chromium driving the real platform processes), for the console's
matching features (tests/matching/test_console.py). Playwright is started per module here, not
per session: its sync API holds an event loop in the main thread, which would refuse every
later `asyncio.run` of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path, desk, platform, pytest_runtest_makereport  # noqa: F401


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()
