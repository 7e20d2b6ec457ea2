"""The console's plans tab in headless Chromium against the real API: an operator looks up a
caller, creates a visit plan for them from the keyboard, pauses and resumes it, and sees who is
overdue; the board's own tabs still work. Screenshot: tests/artifacts/console-plans.png."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from dispatch.welfare.service import raise_welfare_check
from tests.helpers import ELDER, make_user
from tests.processes import Platform

pytestmark = pytest.mark.browser


def test_operator_manages_plans_and_sees_who_is_overdue(
    platform: Platform, desk: Page, artifacts: Path
) -> None:
    operator = make_user(Role.OPERATOR)
    http = httpx.Client(base_url=platform.base, timeout=30)
    token = http.post("/api/auth/token", data={"username": operator, "password": "password-123"}).json()
    elder = http.post(
        "/api/elders", json=ELDER, headers={"Authorization": f"Bearer {token['access_token']}"}
    ).json()
    with session_scope() as session:  # as a failed visit's check-out raises it
        raise_welfare_check(session, elder_id=elder["id"], reason="failed_visit:not_home", dedupe_key="t:1")

    desk.goto("/")
    desk.fill("#username", operator)
    desk.fill("#password", "password-123")
    desk.click("#signin-submit")
    desk.wait_for_url("**/console")
    expect(desk.locator("body")).to_have_attribute("data-ready", "1")
    desk.fill("#lookup-phone", ELDER["phone"])
    desk.press("#lookup-phone", "Enter")
    expect(desk.locator("#elder-card")).to_contain_text(ELDER["name"])

    desk.evaluate("document.activeElement && document.activeElement.blur()")
    desk.keyboard.press("p")
    expect(desk.locator("#plans-panel")).to_be_visible()
    expect(desk.locator("#board-panel")).to_be_hidden()
    expect(desk.locator("#overdue-list li").first).to_contain_text("上门未成功")
    expect(desk.locator("#plan-for")).to_have_text(f"服务对象：{ELDER['name']}")

    desk.select_option("#plan-kind", "visit")
    desk.fill("#plan-every", "5")
    desk.click("#plan-submit")
    row = desk.locator("#plans-body tr[data-plan]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("每5天")
    expect(row).to_contain_text("执行中")
    desk.fill("#plans-reason", "住院一周")
    row.locator("button[data-action=pause]").click()
    expect(row).to_contain_text("已暂停")
    expect(row).to_contain_text("住院一周")
    desk.screenshot(path=str(artifacts / "console-plans.png"), full_page=True)
    row.locator("button[data-action=resume]").click()
    expect(row).to_contain_text("执行中")

    desk.evaluate("document.activeElement && document.activeElement.blur()")
    desk.keyboard.press("b")  # console.js's own shortcut: the plans panel steps aside
    expect(desk.locator("#board-panel")).to_be_visible()
    expect(desk.locator("#plans-panel")).to_be_hidden()
    expect(desk.locator("#tab-plans")).to_have_attribute("aria-selected", "false")
