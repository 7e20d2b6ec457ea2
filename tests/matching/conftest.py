"""The browser rig (headless Chromium driving the real platform processes), for the console's
matching features (tests/matching/test_console.py): the same fixtures as tests/browser."""

from __future__ import annotations

from tests.browser.conftest import (  # noqa: F401
    CHROMIUM_FLAGS,
    browser,
    chromium_path,
    desk,
    platform,
    playwright,
    pytest_runtest_makereport,
)
