"""The manager page in headless Chromium against the real API process, on a demo district with a
synthetic history: the charts really drew (pixels on every canvas), the indicator tiles show
their targets, the overdue list and the ledger match the API, the filters and the CSV download
work, and the English switch relabels everything. Screenshots: tests/artifacts/manager-*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from dispatch.core.db import session_scope
from dispatch.demo.history import seed_history
from dispatch.demo.seed import seed_demo
from tests.processes import Platform

pytestmark = pytest.mark.browser

CHARTS = ("chart-daily", "chart-township", "chart-assign", "chart-utilization")
# Share of a canvas's pixels that must be painted for a chart to count as drawn (axes, bars, lines).
PAINTED = """(id) => {
  const canvas = document.getElementById(id);
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
  return { painted: painted / (canvas.width * canvas.height), width: canvas.width, height: canvas.height,
           points: Manager.charts[id].data.datasets.reduce((n, d) => n + d.data.filter((v) => v > 0).length, 0) };
}"""


@pytest.fixture
def district(platform: Platform) -> Platform:
    with session_scope() as session:
        seed_demo(session, elders=400)
        seed_history(session, days=45)
    return platform


def _api(platform: Platform, path: str) -> Any:
    http = httpx.Client(base_url=platform.base, timeout=30)
    token = http.post("/api/auth/token", data={"username": "manager", "password": "demo-manager"}).json()
    response = http.get(path, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 200, response.text
    return response.json()


def _sign_in(page: Page) -> list[str]:
    problems: list[str] = []

    def note(message: Any) -> None:  # Chromium asks for /favicon.ico on its own; there is none
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"{message.text} {message.location}")

    page.on("console", note)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto("/")
    page.fill("#username", "manager")
    page.fill("#password", "demo-manager")
    page.click("#signin-submit")
    page.wait_for_url("**/manager")
    expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=60_000)
    return problems


def test_the_dashboard_draws_its_charts_tiles_and_lists(
    district: Platform, desk: Page, artifacts: Path
) -> None:
    problems = _sign_in(desk)
    for chart in CHARTS:
        drawn = desk.evaluate(PAINTED, chart)
        assert drawn["width"] > 200 and drawn["height"] > 150, (chart, drawn)
        assert drawn["painted"] > 0.02 and drawn["points"] > 0, (chart, drawn)
    tiles = desk.locator("#indicator-tiles .tile")
    expect(tiles).to_have_count(5)
    expect(tiles.first).to_contain_text("目标")
    expect(desk.locator("[data-tile=meal_township_share]")).to_contain_text("助餐服务覆盖镇")
    summary = _api(
        district, f"/api/stats/summary?from={desk.input_value('#f-from')}&to={desk.input_value('#f-to')}"
    )
    expect(desk.locator("[data-tile=requests] .value")).to_have_text(f"{summary['requests']['total']:,}")
    overdue = _api(district, "/api/welfare/overdue")
    expect(desk.locator("#overdue-count")).to_have_text(f"共 {overdue['total']} 人")
    expect(desk.locator("#overdue-body tr")).to_have_count(min(50, max(1, overdue["total"])))
    expect(desk.locator("#ledger-body tr").first).to_be_visible()
    desk.screenshot(path=str(artifacts / "manager-dashboard.png"), full_page=True)
    assert problems == [], problems  # no script error, no CSP refusal


def test_filters_download_and_english(district: Platform, desk: Page, artifacts: Path) -> None:
    _sign_in(desk)
    desk.select_option("#f-township", "静海镇")
    expect(desk.locator("#f-status")).to_contain_text("已更新")
    query = f"from={desk.input_value('#f-from')}&to={desk.input_value('#f-to')}&township=静海镇"
    total = _api(district, f"/api/stats/summary?{query}")["requests"]["total"]
    expect(desk.locator("[data-tile=requests] .value")).to_have_text(f"{total:,}")
    bars = desk.evaluate("() => Manager.charts['chart-township'].data.labels")
    assert bars == ["静海镇"]
    desk.click("button[data-days='7']")
    expect(desk.locator("button[data-days='7']")).to_have_class("secondary active")
    with desk.expect_download() as download:
        desk.click("#dl-requests")
    path = download.value.path()
    assert download.value.suggested_filename.startswith("requests_")
    text = Path(path).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("request_id,created_at,kind")
    desk.click("#ec-lang")
    expect(desk.locator(".ec-header h1")).to_have_text("Statistics")
    expect(desk.locator("[data-tile=meal_township_share] .label")).to_have_text(
        "Townships with meal service in use"
    )
    assert desk.evaluate("() => Manager.charts['chart-daily'].data.datasets[0].label") == "Requests"
    desk.screenshot(path=str(artifacts / "manager-dashboard-en.png"), full_page=True)


def test_only_managers_and_admin_stay_on_the_page(district: Platform, desk: Page) -> None:
    desk.goto("/")
    desk.fill("#username", "operator")
    desk.fill("#password", "demo-operator")
    desk.click("#signin-submit")
    desk.wait_for_url("**/console")
    desk.goto("/manager")
    desk.wait_for_url(f"{district.base}/")  # sent back to sign in
