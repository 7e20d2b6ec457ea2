"""Electronic visit verification: the flags for distance (measured from where the service
happens), for the phone's clock and for visits too short, through the real check-in/out API,
plus the pure rules themselves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.events import timeline as events_of
from dispatch.visits import evv
from dispatch.visits import service as visit_service
from dispatch.visits.models import VisitPlace, VisitReview
from tests.helpers import Api
from tests.visits.world import FAR, HOME, SITE, World, build


class Clock:
    """The visit service's clock, moved by the test (visit times are the server's own)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    monkeypatch.setattr(visit_service, "utcnow", c)
    yield c


@pytest.fixture
def w(api: Api) -> World:
    return build(api)


def _in(w: World, request_id: int, user: str | None = None, **body: Any) -> dict[str, Any]:
    return w.api.ok("POST", f"/api/requests/{request_id}/check-in", user or w.provider_user, json=body)  # type: ignore[no-any-return]


def _out(w: World, request_id: int, user: str | None = None, **body: Any) -> dict[str, Any]:
    return w.api.ok("POST", f"/api/requests/{request_id}/check-out", user or w.provider_user, json=body)  # type: ignore[no-any-return]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


# ---- through the API ----------------------------------------------------------------------


def test_clean_home_care_visit_is_verified(w: World, clock: Clock) -> None:
    job = w.job()
    visit = _in(w, job, **HOME, device_at=_iso(clock.now))
    assert visit["flags"] == [] and visit["place"] == "elder_home" and visit["check_out_at"] is None
    assert visit["verified"] is False  # not before it has ended
    clock.advance(minutes=45)
    visit = _out(w, job, **HOME, summary="洗澡、打扫", device_at=_iso(clock.now + timedelta(seconds=20)))
    assert visit["flags"] == [] and visit["review"] == "clean" and visit["verified"] is True
    assert visit["duration_minutes"] == 45.0 and visit["check_out_skew_seconds"] == 20.0
    assert w.api.ok("GET", f"/api/requests/{job}", w.operator)["status"] == "completed"


def test_far_from_home_at_either_end_is_kept_and_flagged(w: World, clock: Clock) -> None:
    job = w.job()
    visit = _in(w, job, **HOME)
    assert visit["check_in_distance_m"] < 5
    clock.advance(minutes=40)
    visit = _out(w, job, **FAR)
    assert visit["check_out_distance_m"] == pytest.approx(1112, abs=5)
    assert (visit["check_out_lat"], visit["check_out_lon"]) == (FAR["lat"], FAR["lon"])  # kept as sent
    assert visit["flags"] == ["location_mismatch"] and visit["flagged"] is True
    assert visit["review"] == "open" and visit["verified"] is False
    # Still completed: a flag is for an operator to look at, never a refusal at the door.
    assert w.api.ok("GET", f"/api/requests/{job}", w.operator)["status"] == "completed"


def test_location_limit_is_300_m(w: World, clock: Clock) -> None:
    near, beyond = w.job(), w.job()
    # 0.0025 degrees of latitude = 278 m; 0.0029 = 322 m.
    _in(w, near, lat=HOME["lat"] + 0.0025, lon=HOME["lon"])
    assert _in(w, beyond, lat=HOME["lat"] + 0.0029, lon=HOME["lon"])["flags"] == ["location_mismatch"]
    clock.advance(minutes=31)
    assert _out(w, near, **HOME)["flags"] == []


def test_device_clock_more_than_five_minutes_off_is_flagged(w: World, clock: Clock) -> None:
    honest, skewed = w.job(), w.job()
    _in(w, honest, **HOME, device_at=_iso(clock.now - timedelta(minutes=4)))
    # Offline for ten minutes and synced later, or a phone set back: the device time says so.
    visit = _in(w, skewed, **HOME, device_at=_iso(clock.now - timedelta(minutes=10)))
    assert visit["flags"] == ["clock_skew"] and visit["check_in_skew_seconds"] == -600.0
    assert visit["check_in_device_at"] is not None
    clock.advance(minutes=35)
    assert _out(w, honest, **HOME, device_at=_iso(clock.now + timedelta(minutes=4)))["flags"] == []
    assert _out(w, skewed, **HOME, device_at=_iso(clock.now))["flags"] == ["clock_skew"]  # kept at check-out


def test_a_phone_reset_to_1970_is_kept_and_flagged(w: World, clock: Clock) -> None:
    job = w.job()
    visit = _in(w, job, **HOME, device_at="1970-01-01T08:00:00+08:00")
    assert visit["flags"] == ["clock_skew"] and visit["check_in_device_at"].startswith("1970-01-01")


def test_clock_skew_at_check_out_alone_flags(w: World, clock: Clock) -> None:
    job = w.job()
    _in(w, job, **HOME, device_at=_iso(clock.now))
    clock.advance(minutes=40)
    ahead = clock.now + timedelta(minutes=6)
    assert _out(w, job, **HOME, device_at=_iso(ahead))["flags"] == ["clock_skew"]


def test_shorter_than_the_kinds_minimum_is_flagged(w: World, clock: Clock) -> None:
    assert get_settings().evv_min_minutes_home_care == 30 and get_settings().evv_min_minutes_visit == 10
    short_care, long_care, visit_job = w.job(), w.job(), w.job("visit")
    for job in (short_care, long_care, visit_job):
        _in(w, job, **HOME)
    clock.advance(minutes=12)
    assert _out(w, short_care, **HOME)["flags"] == ["too_short"]  # home care needs 30 minutes
    assert _out(w, visit_job, **HOME)["flags"] == []  # a visit needs 10
    clock.advance(minutes=20)
    assert _out(w, long_care, **HOME)["flags"] == []


def test_minimums_come_from_settings(w: World, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVV_MIN_MINUTES_HOME_CARE", "90")
    get_settings.cache_clear()
    job = w.job()
    _in(w, job, **HOME)
    clock.advance(minutes=60)
    assert _out(w, job, **HOME)["flags"] == ["too_short"]


def test_every_flag_at_once_in_a_stable_order(w: World, clock: Clock) -> None:
    job = w.job()
    _in(w, job, **FAR, device_at=_iso(clock.now + timedelta(hours=1)))
    clock.advance(minutes=1)
    assert _out(w, job, **FAR)["flags"] == ["location_mismatch", "clock_skew", "too_short"]


def test_day_care_is_verified_at_the_center_not_at_home(w: World, clock: Clock) -> None:
    at_center, at_home = (w.request("day_care")["id"] for _ in range(2))
    for rid in (at_center, at_home):
        w.assign(rid, provider=w.day_care)
    visit = _in(w, at_center, w.day_care_user, **SITE["day_care"])
    assert visit["place"] == "provider_site" and visit["flags"] == []
    # Marking the elder "arrived" from the elder's doorstep, 1.4 km away, is what gets flagged.
    assert _in(w, at_home, w.day_care_user, **HOME)["flags"] == ["location_mismatch"]
    clock.advance(hours=6)
    assert _out(w, at_center, w.day_care_user, **SITE["day_care"])["verified"] is True


def test_meals_are_verified_at_the_canteen_when_eaten_in_and_at_home_when_delivered(
    w: World, clock: Clock
) -> None:
    dine_in = w.request("meal", details={"slot": "lunch", "delivery": False})["id"]
    delivered = w.request("meal", details={"slot": "lunch", "delivery": True})["id"]
    for rid in (dine_in, delivered):
        w.assign(rid, provider=w.canteen)
    assert _in(w, dine_in, w.canteen_user, **SITE["canteen"])["place"] == "provider_site"
    assert _in(w, delivered, w.canteen_user, **SITE["canteen"])["flags"] == ["location_mismatch"]
    # A meal has no minimum: handing it over at the door takes a minute.
    assert _out(w, dine_in, w.canteen_user, **SITE["canteen"])["flags"] == []
    assert _out(w, delivered, w.canteen_user, **HOME)["flags"] == [
        "location_mismatch"
    ]  # the check-in stays flagged


def test_place_is_fixed_at_check_in(w: World, clock: Clock) -> None:
    """An address edited during the visit does not move where it is measured from."""
    job = w.job()
    _in(w, job, **HOME)
    w.api.ok("PATCH", f"/api/elders/{w.elder['id']}", w.operator, json=FAR)
    clock.advance(minutes=31)
    visit = _out(w, job, **HOME)
    assert visit["flags"] == [] and visit["check_out_distance_m"] < 5


def test_events_carry_flags_but_no_text(w: World, clock: Clock) -> None:
    job = w.job()
    _in(w, job, **FAR)
    clock.advance(minutes=31)
    _out(w, job, **HOME, summary="今天情绪低落")
    timeline = w.api.ok("GET", f"/api/requests/{job}", w.operator)["timeline"]
    assert [t["type"] for t in timeline][-2:] == ["request.in_service", "request.completed"]
    with session_scope(write=False) as session:
        data = {e.type: e.data for e in events_of(session, job)}
    assert data["request.in_service"]["flags"] == ["location_mismatch"]
    assert data["request.completed"] == {
        "visit_id": data["request.in_service"]["visit_id"],
        "location_mismatch": True,
        "flags": ["location_mismatch"],
        "verified": False,
    }


def test_bad_bodies_are_refused_with_nothing_recorded(w: World) -> None:
    job = w.job()
    for body in (
        {**HOME, "device_at": "yesterday"},
        {**HOME, "device_at": "2026-12-01T10:00:00"},  # no offset: which clock?
        {**HOME, "device_at": "0001-01-01T00:00:00+14:00"},  # no clock shows that
        {"lat": 10.0, "lon": 116.97},
        {**HOME, "extra": 1},
    ):
        r = w.api.call("POST", f"/api/requests/{job}/check-in", w.provider_user, json=body)
        assert r.status_code == 422, body
    assert w.api.ok("GET", f"/api/requests/{job}/visit", w.operator) is None  # nothing recorded
    r = w.api.call(
        "POST", f"/api/requests/{job}/check-out", w.provider_user, json={**HOME, "outcome": "lost"}
    )
    assert r.status_code == 422
    r = w.api.call("POST", f"/api/requests/{job}/check-out", w.provider_user, json=HOME)
    assert r.status_code == 409  # a completed check-out needs a check-in first
    assert w.api.ok("GET", f"/api/requests/{job}", w.operator)["status"] == "assigned"


# ---- the rules themselves -------------------------------------------------------------------


LIMITS = evv.Limits(max_distance_m=300, max_clock_skew=timedelta(minutes=5), min_minutes={"home_care": 30})
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _facts(**changes: Any) -> evv.Facts:
    base: dict[str, Any] = {
        "kind": "home_care", "outcome": "completed", "check_in_at": T0, "check_in_distance_m": 10.0,
        "check_in_device_at": None, "check_out_at": T0 + timedelta(minutes=40), "check_out_distance_m": 12.0,
    }  # fmt: skip
    return evv.Facts(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "flags"),
    [
        ({}, []),
        ({"check_in_distance_m": 300.0}, []),
        ({"check_in_distance_m": 300.1}, ["location_mismatch"]),
        ({"check_out_distance_m": 5000.0}, ["location_mismatch"]),
        ({"check_in_device_at": T0 + timedelta(minutes=5)}, []),
        ({"check_in_device_at": T0 + timedelta(minutes=5, seconds=1)}, ["clock_skew"]),
        ({"check_out_device_at": T0 - timedelta(hours=2)}, ["clock_skew"]),
        ({"check_out_at": T0 + timedelta(minutes=29)}, ["too_short"]),
        ({"check_out_at": T0 + timedelta(minutes=29), "outcome": "not_home"}, []),
        ({"check_out_at": None, "check_out_distance_m": None}, []),
        ({"kind": "meal", "check_out_at": T0}, []),
    ],
)
def test_flags_for(changes: dict[str, Any], flags: list[str]) -> None:
    assert evv.flags_for(_facts(**changes), LIMITS) == flags


def test_place_kind_by_service() -> None:
    home, site = VisitPlace.ELDER_HOME, VisitPlace.PROVIDER_SITE
    assert evv.place_kind("home_care", {}) == home and evv.place_kind("visit", {}) == home
    assert evv.place_kind("emergency", {}) == home and evv.place_kind("day_care", {}) == site
    assert evv.place_kind("meal", {"delivery": True}) == home
    assert evv.place_kind("meal", {"delivery": False}) == site and evv.place_kind("meal", {}) == site


def test_verified_only_for_completed_visits_that_are_clean_or_approved() -> None:
    assert evv.is_verified("completed", VisitReview.CLEAN, closed=True)
    assert evv.is_verified("completed", VisitReview.APPROVED, closed=True)
    assert not evv.is_verified("completed", VisitReview.OPEN, closed=True)
    assert not evv.is_verified("completed", VisitReview.REJECTED, closed=True)
    assert not evv.is_verified("completed", VisitReview.CLEAN, closed=False)
    assert not evv.is_verified("not_home", VisitReview.APPROVED, closed=True)
    assert evv.review_of(["too_short"], None) == VisitReview.OPEN
    assert evv.review_of([], None) == VisitReview.CLEAN
    assert evv.review_of(["too_short"], "approve") == VisitReview.APPROVED
