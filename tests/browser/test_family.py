"""The family's phone in headless Chromium (360x640) against the real platform processes: two
relatives of one elder follow the same visit live, without reload; only the one the elder consented
to reads the visit's summary. A relative asks for a meal from the page and watches it placed; the
English switch; a relative of another elder sees none of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_provider import LIVE_TIMEOUT, Phones, never_reloaded, shoot, sign_in, step
from tests.helpers import Api
from tests.processes import Platform
from tests.visits.world import HOME, World, build

pytestmark = pytest.mark.browser

SUMMARY = "协助洗澡；血压偏高，已提醒按时服药"


@pytest.fixture
def phones(browser: Browser, platform: Platform) -> Iterator[Phones]:
    p = Phones(browser, platform)
    yield p
    for context in p.contexts:
        context.close()


@pytest.fixture
def world(platform: Platform) -> World:
    return build(Api(httpx.Client(base_url=platform.base, timeout=20)))


def test_two_relatives_follow_one_visit_and_only_the_consented_one_reads_its_notes(
    phones: Phones, world: World, artifacts: Path
) -> None:
    w = world
    daughter, son, outsider = phones.open(), phones.open(), phones.open()
    for page, user in ((daughter, w.daughter), (son, w.son), (outsider, w.outsider)):
        sign_in(page, user, "/family")
    expect(son.locator(".consent")).to_contain_text("服务记录需老人授权后可见")
    expect(daughter.locator(".consent")).to_contain_text("可查看服务进度和服务记录")

    job = w.job()
    for page in (daughter, son):
        expect(step(page, job, "accepted")).to_contain_text(w.provider["name"], timeout=LIVE_TIMEOUT)
    w.api.ok("POST", f"/api/requests/{job}/check-in", w.provider_user, json=HOME)
    for page in (daughter, son):
        expect(step(page, job, "arrived")).to_be_visible(timeout=LIVE_TIMEOUT)
    w.api.ok("POST", f"/api/requests/{job}/check-out", w.provider_user, json={**HOME, "summary": SUMMARY})
    for page in (daughter, son):
        expect(step(page, job, "finished")).to_be_visible(timeout=LIVE_TIMEOUT)
        expect(page.locator(f'.req[data-request="{job}"] [data-status]')).to_have_text("已完成")
    expect(daughter.locator(f'[data-summary="{job}"]')).to_contain_text(SUMMARY)
    expect(son.locator(f'.req[data-request="{job}"] .withheld')).to_contain_text("仅对获老人授权的家属可见")
    assert SUMMARY not in son.content()  # not hidden by the page: never sent to it
    shoot(son, artifacts / "family-status-only.png")

    # The other elder's relative saw nothing of this.
    expect(outsider.locator(".elder h2")).to_have_text(f"{w.stranger['name']} · 静海镇")
    expect(outsider.locator(".req")).to_have_count(0)
    assert outsider.evaluate("window.__familySeqs.length") == 0
    for page in (daughter, son, outsider):
        never_reloaded(page)


def test_asking_for_a_meal_from_the_page_and_watching_it_placed(
    phones: Phones, world: World, artifacts: Path
) -> None:
    w = world
    page = phones.open()
    sign_in(page, w.daughter, "/family")
    page.locator(f'[data-ask-open="{w.elder["id"]}"]').tap()
    form = page.locator(f'form[data-ask="{w.elder["id"]}"]')
    form.locator('select[name="kind"]').select_option("meal")
    form.locator('select[name="slot"]').select_option("dinner")
    form.locator('input[name="delivery"]').check()
    form.locator("textarea").fill("少盐")
    form.locator('button[type="submit"]').tap()
    card = page.locator(".req").first
    expect(card).to_contain_text("助餐（晚餐）", timeout=LIVE_TIMEOUT)
    rid = int(card.get_attribute("data-request") or 0)
    filed = w.api.ok("GET", f"/api/requests/{rid}", w.operator)
    details = filed["details"]
    assert filed["channel"] == "app" and (details["slot"], details["delivery"]) == ("dinner", True)
    assert filed["note"] == "少盐"
    # The same pipeline as the hotline's: the matcher offers it, a provider accepts.
    expect(step(page, rid, "offered")).to_be_visible(timeout=LIVE_TIMEOUT)
    offer = next(
        (o, user)
        for user in (w.canteen_user, w.provider_user, w.other_user)
        for o in w.api.ok("GET", "/api/field/offers", user)
        if o["request_id"] == rid
    )
    w.api.ok("POST", f"/api/offers/{offer[0]['id']}/accept", offer[1])
    expect(step(page, rid, "accepted")).to_be_visible(timeout=LIVE_TIMEOUT)
    expect(card.locator("[data-status]")).to_have_text("已接单")

    page.click("#ec-lang")
    expect(step(page, rid, "requested")).to_contain_text("Requested")
    expect(card.locator("[data-status]")).to_have_text("Assigned")
    shoot(page, artifacts / "family-ask.png")
    never_reloaded(page)
