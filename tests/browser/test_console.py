"""The operator console in headless Chromium against the real platform processes: look up a
caller, file a request, watch it move live (never reloading), dispatch an escalation by hand,
read the outbox; and a restarted API that the board resumes from without a gap or duplicate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import col, select

from dispatch.core.auth import Principal, Role, User
from dispatch.core.db import session_scope
from dispatch.core.events import Event
from dispatch.core.jobs import QueueName
from dispatch.orders import service as request_service
from dispatch.orders.schemas import RequestCreate
from tests.helpers import ELDER, HOME_CARE, make_user, wait_for
from tests.processes import Platform

pytestmark = pytest.mark.browser

FAMILY_PHONE = "+8613900000088"


class Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=10)
        self.tokens: dict[str, str] = {}

    def ok(self, method: str, path: str, user: str, expect_status: int = 200, **kw: Any) -> Any:
        if user not in self.tokens:
            r = self.http.post("/api/auth/token", data={"username": user, "password": "password-123"})
            self.tokens[user] = r.json()["access_token"]
        r = self.http.request(method, path, headers={"Authorization": f"Bearer {self.tokens[user]}"}, **kw)
        assert r.status_code == expect_status, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()


def _world(c: Client) -> dict[str, Any]:
    operator, manager = make_user(Role.OPERATOR), make_user(Role.MANAGER)
    provider = c.ok("POST", "/api/providers", manager, 201, json=HOME_CARE)
    provider_user = make_user(Role.PROVIDER, provider_id=provider["id"])
    elder = c.ok("POST", "/api/elders", operator, 201, json=ELDER)
    daughter = make_user(Role.FAMILY, phone=FAMILY_PHONE)
    c.ok(
        "POST",
        f"/api/elders/{elder['id']}/family",
        operator,
        201,
        json={"username": daughter, "relation": "女儿"},
    )
    return {"operator": operator, "provider": provider, "provider_user": provider_user, "elder": elder}


def _sign_in(page: Page, username: str) -> None:
    page.goto("/")
    page.fill("#username", username)
    page.fill("#password", "password-123")
    page.click("#signin-submit")
    page.wait_for_url("**/console")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(page.locator("#live-dot")).to_have_attribute("data-state", "up")
    page.evaluate("window.__marker = 'never reloaded'")


def _shortcut(page: Page, key: str) -> None:
    """A shortcut as an operator types it: with no form field focused."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)


def _pending_offer(c: Client, user: str, request_id: int) -> dict[str, Any]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: next(
            (o for o in c.ok("GET", "/api/offers?status=pending", user) if o["request_id"] == request_id),
            None,
        ),
        timeout=20,
        what=f"an offer of request {request_id}",
    )


def _file_home_care(page: Page, c: Client, w: dict[str, Any], known: set[int]) -> int:
    """Submit the intake form from the keyboard; return the new request's id."""
    page.select_option("#intake-kind", "home_care")
    expect(page.locator("#intake-skills")).to_be_visible()
    page.press("#intake-kind", "Enter")

    def filed() -> list[int]:
        rows = c.ok("GET", f"/api/requests?elder_id={w['elder']['id']}", w["operator"])
        return [r["id"] for r in rows if r["id"] not in known]

    (new,) = wait_for(filed, timeout=10, what="the request filed from the console")
    expect(page.get_by_text(f"已登记服务 #{new}")).to_be_visible()
    known.add(new)
    return int(new)


def test_operator_files_watches_and_dispatches_without_reload(
    desk: Page, platform: Platform, artifacts: Path
) -> None:
    platform.start_worker(QueueName.NOTIFY.value)  # so the outbox shows delivery status
    c = Client(platform.base)
    w = _world(c)
    _sign_in(desk, w["operator"])

    # Caller lookup from the keyboard: "/" focuses the number, Enter looks it up.
    _shortcut(desk, "/")
    expect(desk.locator("#lookup-phone")).to_be_focused()
    desk.keyboard.type("138 0000 0001")
    desk.keyboard.press("Enter")
    card = desk.locator("#elder-card")
    expect(card.locator("h3")).to_contain_text("张秀英")
    expect(card).to_contain_text("半失能")  # care level partial
    expect(card).to_contain_text("独居")
    expect(card).to_contain_text("低保")
    expect(card).to_contain_text("静海镇胜利路12号")
    expect(card.locator("a.tel").first).to_have_attribute("href", "tel:+8613800000001")
    expect(card.locator(".family")).to_contain_text(FAMILY_PHONE)
    expect(desk.locator("#intake-delivery")).to_be_checked()  # partial care: meals are delivered

    known: set[int] = set()
    first = _file_home_care(desk, c, w, known)
    row = desk.locator(f'#board-body tr[data-request="{first}"]')
    expect(row).to_contain_text("张秀英")
    offer = _pending_offer(c, w["provider_user"], first)
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "offered")
    c.ok("POST", f"/api/offers/{offer['id']}/accept", w["provider_user"])
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "assigned")
    expect(row).to_contain_text(HOME_CARE["name"])
    recent = card.locator(f'.recent li[data-request="{first}"] .badge')
    expect(recent).to_have_text("已接单")  # the caller's card follows the board live

    # A second request is declined by the only provider: escalated, pinned above the board.
    second = _file_home_care(desk, c, w, known)
    offer = _pending_offer(c, w["provider_user"], second)
    c.ok("POST", f"/api/offers/{offer['id']}/decline", w["provider_user"], json={"reason": "人手不足"})
    pinned = desk.locator(f'#escalation-list .escalation[data-request="{second}"]')
    expect(pinned).to_contain_text("所有机构均已拒绝")
    expect(pinned.locator(".age")).to_contain_text("已等待")
    expect(pinned.locator("a.tel")).to_have_attribute("href", "tel:+8613800000001")
    board_top = desk.locator("#board-table").bounding_box()
    pinned_box = pinned.bounding_box()
    assert pinned_box is not None and board_top is not None and pinned_box["y"] < board_top["y"]
    desk.screenshot(path=str(artifacts / "console-board.png"))

    # "e" jumps to the first escalation's dispatch button; the dialog lists the matcher's choice.
    _shortcut(desk, "e")
    expect(pinned.locator("button")).to_be_focused()
    desk.keyboard.press("Enter")
    dialog = desk.locator("#dispatch-dialog")
    expect(dialog).to_contain_text(HOME_CARE["name"])
    expect(dialog).to_contain_text("曾拒绝")
    expect(dialog.locator("tbody button").first).to_be_focused()
    desk.keyboard.press("Enter")
    expect(desk.locator(".ec-toast-ok").last).to_contain_text(f"#{second}")
    expect(pinned).to_have_count(0)
    expect(desk.locator(f'#board-body tr[data-request="{second}"] [data-status]')).to_have_attribute(
        "data-status", "assigned"
    )
    expect(desk.locator("#escalation-list")).to_contain_text("暂无需人工处理的服务")

    # The outbox: the provider's offers and the family's texts, with delivery status (the notify
    # worker hands them to the outbox-only gateway: no SMS provider is configured here).
    wait_for(
        lambda: all(m["status"] == "outbox_only" for m in c.ok("GET", "/api/messages", w["operator"])),
        timeout=30,
        what="the notify worker to process every message",
    )
    _shortcut(desk, "o")
    outbox = desk.locator("#outbox-body")
    expect(outbox.locator("tr").first).to_be_visible()
    expect(outbox).to_contain_text("派单通知")
    expect(outbox).to_contain_text(FAMILY_PHONE)
    expect(outbox.locator('[data-status="outbox_only"]').first).to_be_visible()
    desk.screenshot(path=str(artifacts / "console-outbox.png"))

    assert desk.evaluate("window.__marker") == "never reloaded"
    # English on request, without reloading either.
    desk.click("#ec-lang")
    expect(desk.locator("#tab-board")).to_have_text("Live board")
    assert desk.evaluate("window.__marker") == "never reloaded"


def test_board_resumes_after_an_api_restart_without_gaps_or_duplicates(
    desk: Page, platform: Platform
) -> None:
    c = Client(platform.base)
    w = _world(c)
    _sign_in(desk, w["operator"])
    body = {"elder_id": w["elder"]["id"], "kind": "home_care"}
    before = c.ok("POST", "/api/requests", w["operator"], 202, json=body)
    expect(desk.locator(f'#board-body tr[data-request="{before["id"]}"]')).to_be_visible()

    platform.stop("api")
    expect(desk.locator("#ec-live-banner")).to_be_visible()
    # While no API runs, a request still commits (here through the service layer directly).
    with session_scope() as session:
        user = session.exec(select(User).where(User.username == w["operator"])).one()
        during, _ = request_service.create_request(
            session=session,
            principal=Principal.of(user),
            request_in=RequestCreate(elder_id=w["elder"]["id"], kind="meal"),  # type: ignore[arg-type]
        )
    platform.start_api()

    row = desk.locator(f'#board-body tr[data-request="{during.id}"]')
    expect(row).to_be_visible(timeout=30_000)
    expect(desk.locator("#ec-live-banner")).to_be_hidden()
    expect(row).to_contain_text("张秀英")
    after = c.ok("POST", "/api/requests", w["operator"], 202, json={**body, "kind": "visit"})
    expect(desk.locator(f'#board-body tr[data-request="{after["id"]}"]')).to_be_visible()

    seqs: list[int] = desk.evaluate("window.__consoleSeqs")
    assert seqs == sorted(set(seqs)), "every event applied once, in order"
    with session_scope(write=False) as session:
        stored = list(
            session.exec(select(Event.seq).where(col(Event.seq) >= seqs[0]).order_by(col(Event.seq)))
        )
    assert [s for s in stored if s <= seqs[-1]] == seqs, "nothing missed across the restart"
    assert desk.evaluate("window.__marker") == "never reloaded"


def test_an_unknown_caller_is_registered_and_served(desk: Page, platform: Platform) -> None:
    c = Client(platform.base)
    w = _world(c)
    _sign_in(desk, w["operator"])
    desk.fill("#lookup-phone", "022-6800 1234")
    desk.press("#lookup-phone", "Enter")
    expect(desk.locator("#register-form")).to_contain_text("未找到使用该号码的老人")
    expect(desk.locator("#reg-name")).to_be_focused()
    desk.keyboard.type("李建国")
    desk.select_option("#reg-township", "独流镇")
    expect(desk.locator("#reg-lat")).to_have_value("39.005")  # the township's centre by default
    desk.fill("#reg-address", "独流镇东大街3号")
    desk.select_option("#reg-care", "full")
    desk.check("#reg-alone")
    desk.press("#reg-address", "Enter")
    card = desk.locator("#elder-card")
    expect(card.locator("h3")).to_contain_text("李建国")
    expect(card).to_contain_text("失能")
    expect(card.locator("a.tel")).to_have_attribute("href", "tel:+862268001234")
    expect(desk.locator("#intake-kind")).to_be_focused()
    expect(desk.locator("#intake-delivery")).to_be_checked()  # cannot walk to a canteen
    found = c.ok("GET", "/api/elders?phone=%2B862268001234", w["operator"])
    assert [(e["name"], e["township"], e["care_level"], e["lives_alone"]) for e in found] == [
        ("李建国", "独流镇", "full", True)
    ]
    desk.press("#intake-kind", "Enter")  # a delivered lunch, the defaults
    row = desk.locator("#board-body tr", has_text="李建国")
    expect(row).to_contain_text("助餐")
    assert desk.evaluate("window.__marker") == "never reloaded"
