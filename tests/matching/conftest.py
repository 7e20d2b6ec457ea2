"""The browser rig (headless Chromium driving the real platform processes), for the console's
matching features (tests/matching/test_console.py)."""

from tests.browser.conftest import browser, desk, platform, playwright, pytest_runtest_makereport  # noqa: F401
