"""The provider's phone in headless Chromium (360x640, geolocation granted and faked at the elder's
door) against the real platform processes: an offer arrives live, is accepted, the caregiver sets
off, checks in and out; the family's phone shows every step live, never reloading; the operator
reviews the flagged visit in the console. Also a day-care center marking arrivals and an absence,
a canteen's meal counts, and an offer withdrawn while on screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import new_context
from tests.helpers import ELDER, Api, wait_for
from tests.processes import Platform
from tests.visits.world import SITE, World, build, day_care_day, dinner, lunch

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 640}
AT_HOME = {"latitude": ELDER["lat"], "longitude": ELDER["lon"], "accuracy": 15}
LIVE_TIMEOUT = 20_000  # ms; the machine is shared, the page must still follow without reload


class Phones:
    """Phone-sized browser contexts, closed at the end of the test."""

    def __init__(self, browser: Browser, platform: Platform) -> None:
        self.browser, self.platform = browser, platform
        self.contexts: list[BrowserContext] = []

    def open(self, *, at: dict[str, float] | None = None, size: dict[str, int] = PHONE) -> Page:
        options: dict[str, Any] = {"viewport": size, "is_mobile": size is PHONE, "has_touch": size is PHONE}
        if at is not None:
            options.update(geolocation=at, permissions=["geolocation"])
        context = new_context(self.browser, self.platform, **options)
        self.contexts.append(context)
        return context.new_page()


@pytest.fixture
def phones(browser: Browser, platform: Platform) -> Iterator[Phones]:
    p = Phones(browser, platform)
    yield p
    for context in p.contexts:
        context.close()


@pytest.fixture
def world(platform: Platform) -> World:
    w = build(Api(httpx.Client(base_url=platform.base, timeout=20)))
    # One home-care provider takes offers, so the matcher's choice is known.
    w.api.ok("PATCH", f"/api/providers/{w.other_provider['id']}", w.manager, json={"active": False})
    return w


def sign_in(page: Page, username: str, path: str) -> None:
    page.goto("/")
    page.fill("#username", username)
    page.fill("#password", "password-123")
    page.click("#signin-submit")
    page.wait_for_url(f"**{path}")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    if path == "/console":
        expect(page.locator("#live-dot")).to_have_attribute("data-state", "up")
    else:
        expect(page.locator("body")).to_have_attribute("data-live", "up")
    page.evaluate("window.__marker = 'never reloaded'")


def shoot(page: Page, path: Path) -> None:
    """A whole-page screenshot from the top (the sticky tabs stay where they belong)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)


def never_reloaded(page: Page) -> None:
    assert page.evaluate("window.__marker") == "never reloaded"


def step(page: Page, request_id: int, name: str) -> Any:
    return page.locator(f'.req[data-request="{request_id}"] .steps li[data-step="{name}"]')


def test_offer_to_visit_live_on_the_providers_and_the_familys_phones(
    phones: Phones, world: World, platform: Platform, artifacts: Path
) -> None:
    w = world
    provider = phones.open(at=AT_HOME)
    family = phones.open()
    sign_in(provider, w.provider_user, "/provider")
    sign_in(family, w.daughter, "/family")
    expect(provider.locator("#offer-list .empty")).to_contain_text("暂无待接派单")

    rid = w.request("home_care", details={"skills": ["bathing"]}, note="请带防滑垫")["id"]
    card = provider.locator(f'.offer[data-request="{rid}"]')
    expect(card).to_be_visible(timeout=LIVE_TIMEOUT)  # arrived over the websocket
    expect(card).to_contain_text("张*英")
    expect(card).to_contain_text(ELDER["address"])
    expect(card.locator(".countdown")).to_contain_text("剩余")
    expect(provider.locator("#offers-count")).to_have_text("1")
    expect(step(family, rid, "requested")).to_be_visible(timeout=LIVE_TIMEOUT)
    expect(step(family, rid, "offered")).to_contain_text("正在联系服务机构", timeout=LIVE_TIMEOUT)
    box = card.locator("[data-accept]").bounding_box()
    assert box is not None and box["height"] >= 48 and box["width"] >= 150  # a thumb's target
    provider.screenshot(path=str(artifacts / "provider-offer.png"))

    card.locator("[data-accept]").tap()
    job = provider.locator(f'.job[data-request="{rid}"]')
    expect(job).to_have_attribute("data-status", "assigned", timeout=LIVE_TIMEOUT)
    expect(job).to_contain_text(ELDER["name"])  # the full name once the job is ours
    expect(job).to_contain_text("请带防滑垫")
    expect(job.locator("a.map")).to_have_attribute(
        "href",
        f"https://uri.amap.com/marker?position={ELDER['lon']},{ELDER['lat']}&coordinate=wgs84&callnative=1",
    )
    expect(job).not_to_contain_text("低保")  # no assistance category on a provider's phone
    expect(step(family, rid, "accepted")).to_contain_text(w.provider["name"], timeout=LIVE_TIMEOUT)

    job.locator("[data-call]").tap()  # the number is revealed on demand, for this job only
    expect(job.locator("[data-tel]")).to_have_attribute("href", f"tel:{ELDER['phone']}")

    job.locator('[data-action="field.on_the_way"]').tap()
    expect(job.locator("[data-departed]")).to_contain_text("已出发", timeout=LIVE_TIMEOUT)
    # Not a status, so no event: the family page re-reads assigned requests every 15 s.
    expect(step(family, rid, "on_the_way")).to_contain_text("已出发", timeout=40_000)

    job.locator('[data-action="field.check_in"]').tap()
    expect(job).to_have_attribute("data-status", "in_service", timeout=LIVE_TIMEOUT)
    expect(step(family, rid, "arrived")).to_be_visible(timeout=LIVE_TIMEOUT)
    job.locator("textarea").fill("协助洗澡，更换床单")
    provider.screenshot(path=str(artifacts / "provider-job.png"))
    job.locator('[data-action="field.check_out"]').tap()
    expect(job).to_have_attribute("data-status", "completed", timeout=LIVE_TIMEOUT)
    expect(job).to_contain_text("已完成")
    expect(job.locator(".flags")).to_contain_text("服务时长过短")  # checked out at once: flagged, kept

    finished = family.locator(f'.req[data-request="{rid}"]')
    expect(step(family, rid, "finished")).to_contain_text("服务已完成", timeout=LIVE_TIMEOUT)
    expect(finished.locator("[data-summary]")).to_contain_text("协助洗澡，更换床单")  # consented relative
    steps = finished.locator(".steps li").evaluate_all("(ns) => ns.map((n) => n.dataset.step)")
    assert steps == ["requested", "offered", "accepted", "on_the_way", "arrived", "finished"]
    finished.locator('[data-star="5"]').tap()
    finished.locator(".rate textarea").fill("很细心")
    finished.locator("[data-rate]").tap()
    expect(finished.locator("[data-rated]")).to_contain_text("★★★★★")
    shoot(family, artifacts / "family-live.png")
    shoot(provider, artifacts / "provider-done.png")
    never_reloaded(provider)
    never_reloaded(family)

    # The visit was positioned at the door (the faked geolocation), with the phone's own clock.
    visit = w.api.ok("GET", f"/api/requests/{rid}/visit", w.operator)
    assert visit["check_in_distance_m"] < 5 and visit["check_in_device_at"] is not None
    assert visit["flags"] == ["too_short"] and visit["summary"] == "协助洗澡，更换床单"

    # The operator reviews it in the console's visits tab and approves it with a reason.
    desk = phones.open(size={"width": 1366, "height": 768})
    sign_in(desk, w.operator, "/console")
    desk.click("#tab-visits")
    row = desk.locator(f'#visits-body tr[data-visit="{visit["id"]}"]')
    expect(row).to_contain_text("服务时长过短")
    expect(row).to_contain_text("待核查")
    row.locator("button[data-review]").click()
    dialog = desk.locator("#visit-dialog")
    expect(dialog).to_contain_text("协助洗澡，更换床单")
    dialog.locator("#correction-reason").fill("已电话回访家属，服务约40分钟，签退时误操作")
    desk.screenshot(path=str(artifacts / "console-visit-review.png"))
    dialog.locator("#correction-approve").click()
    expect(row).to_contain_text("已核准", timeout=LIVE_TIMEOUT)
    desk.screenshot(path=str(artifacts / "console-visits.png"))
    after = w.api.ok("GET", f"/api/visits/{visit['id']}", w.operator)
    assert after["verified"] is True and after["check_out_at"] == visit["check_out_at"]


def test_day_care_marks_arrivals_and_an_absence_and_a_canteen_counts_meals(
    phones: Phones, world: World, artifacts: Path
) -> None:
    w = world
    expected = []
    for _ in range(2):
        rid = w.request("day_care", **day_care_day())["id"]
        w.assign(rid, provider=w.day_care)
        expected.append(rid)
    center = {"latitude": SITE["day_care"]["lat"], "longitude": SITE["day_care"]["lon"], "accuracy": 20}
    page = phones.open(at=center)
    sign_in(page, w.day_care_user, "/provider")
    page.click("#tab-jobs")
    tiles = page.locator("#day-summary")
    expect(tiles.locator('[data-tile="expected"] strong')).to_have_text("2")
    first, second = (page.locator(f'.job[data-request="{rid}"]') for rid in expected)
    first.locator('[data-action="field.arrive"]').tap()
    expect(first).to_have_attribute("data-status", "in_service", timeout=LIVE_TIMEOUT)
    expect(tiles.locator('[data-tile="arrived"] strong')).to_have_text("1")
    second.locator('[data-action="cannot"]').tap()
    expect(page.locator("#outcome-dialog")).to_be_visible()
    page.locator("#outcome-note").fill("家属电话告知今天去医院复查")
    page.locator("#outcome-submit").tap()
    expect(second).to_have_attribute("data-status", "cancelled", timeout=LIVE_TIMEOUT)
    expect(second).to_contain_text("未能服务：老人不在家")
    expect(tiles.locator('[data-tile="absent"] strong')).to_have_text("1")
    shoot(page, artifacts / "provider-daycare.png")
    visit = w.api.ok("GET", f"/api/requests/{expected[0]}/visit", w.operator)
    assert visit["place"] == "provider_site" and visit["flags"] == []
    welfare = wait_for(
        lambda: [
            r
            for r in w.api.ok("GET", "/api/requests?status=escalated", w.operator)
            if r["details"].get("welfare")
        ],
        timeout=10,
        what="the welfare check of the absence",
    )
    assert welfare[0]["elder_id"] == w.elder["id"] and welfare[0]["escalation_reason"] == "welfare_check"

    for slot, delivery, window in (
        ("lunch", False, lunch()),
        ("lunch", True, lunch()),
        ("dinner", True, dinner()),
    ):
        rid = w.request("meal", details={"slot": slot, "delivery": delivery}, **window)["id"]
        w.assign(rid, provider=w.canteen)
    canteen = phones.open(at={"latitude": SITE["canteen"]["lat"], "longitude": SITE["canteen"]["lon"]})
    sign_in(canteen, w.canteen_user, "/provider")
    canteen.click("#tab-jobs")
    summary = canteen.locator("#day-summary")
    expect(summary.locator('[data-tile="lunch-dine_in"] strong')).to_have_text("1")
    expect(summary.locator('[data-tile="lunch-delivery"] strong')).to_have_text("1")
    expect(summary.locator('[data-tile="dinner-delivery"] strong')).to_have_text("1")
    served = canteen.locator('.job[data-status="assigned"]').filter(has_text="堂食").first
    served.locator('[data-action="field.eaten"]').tap()  # one tap: in and out at the counter
    expect(summary.locator('[data-tile="lunch-done"] strong')).to_have_text("1", timeout=LIVE_TIMEOUT)
    shoot(canteen, artifacts / "provider-canteen.png")
    never_reloaded(page)
    never_reloaded(canteen)


def test_an_offer_withdrawn_on_screen_goes_with_a_note(phones: Phones, world: World) -> None:
    w = world
    page = phones.open(at=AT_HOME)
    sign_in(page, w.provider_user, "/provider")
    rid = w.request("home_care")["id"]
    card = page.locator(f'.offer[data-request="{rid}"]')
    expect(card).to_be_visible(timeout=LIVE_TIMEOUT)
    w.api.ok("POST", f"/api/requests/{rid}/cancel", w.operator, json={"reason": "家属已取消"})
    # A withdrawal sends this provider no frame; the page re-reads pending offers every 15 s.
    expect(card).to_have_count(0, timeout=40_000)
    note = page.locator("#offer-notes .note")
    expect(note).to_contain_text(f"#{rid}")
    expect(note).to_contain_text("已撤回（服务已取消）")
    note.locator("button").tap()
    expect(note).to_have_count(0)
    never_reloaded(page)
