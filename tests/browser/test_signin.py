"""The sign-in page: Chinese first, English on request, each role sent to its own page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from dispatch.core.auth import Role
from tests.helpers import make_user

pytestmark = pytest.mark.browser


def test_sign_in_in_chinese_then_english_and_role_redirect(desk: Page) -> None:
    family = make_user(Role.FAMILY)
    desk.goto("/")
    expect(desk.locator("h2")).to_have_text("静海区养老服务调度平台")
    desk.fill("#username", family)
    desk.fill("#password", "wrong-password")
    desk.click("#signin-submit")
    expect(desk.locator("#signin-error")).to_have_text("用户名或密码错误")
    desk.click("#lang-toggle")
    expect(desk.locator("#signin-submit")).to_have_text("Sign in")
    expect(desk.locator("#signin-error")).to_have_text("Wrong username or password")
    desk.fill("#password", "password-123")
    desk.click("#signin-submit")
    desk.wait_for_url("**/family")
    assert desk.evaluate("sessionStorage.getItem('ec.role')") == "family"


def test_pages_carry_a_strict_content_security_policy(desk: Page) -> None:
    response = desk.goto("/")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
