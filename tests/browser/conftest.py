"""Browser tests: Playwright drives Debian's headless Chromium against the platform running
as real processes (uvicorn and an RQ worker). Screenshots are saved to tests/artifacts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from dispatch.core.jobs import QueueName
from tests.processes import Platform, running_platform

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is not installed: `apt-get install chromium` (.ci/run does it)")
    return path


# Per module, not per session: Playwright's sync API holds an event loop in the main thread
# while it runs, and every later `asyncio.run` of the session would be refused.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.fixture
def platform(env: dict[str, str], tmp_path: Path) -> Iterator[Platform]:
    """The API under uvicorn and a matching worker (with RQ's scheduler), on the test's database."""
    with running_platform({**env, "OFFER_TTL_SECONDS": "60"}, tmp_path) as p:
        p.start_api()
        p.start_worker(QueueName.MATCH.value)
        yield p


def new_context(browser: Browser, platform: Platform, **options: object) -> BrowserContext:
    defaults: dict[str, object] = {
        "base_url": platform.base,
        "locale": "zh-CN",
        "timezone_id": "Asia/Shanghai",
    }
    context = browser.new_context(**{**defaults, **options})  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def desk(
    browser: Browser, platform: Platform, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page at an office screen size (1366x768)."""
    context = new_context(browser, platform, viewport={"width": 1366, "height": 768})
    page = context.new_page()
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        page.screenshot(path=str(artifacts / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)
