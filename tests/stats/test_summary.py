"""Statistics against figures computed by hand on the fixed data set of tests/stats/dataset.py,
live and again from the daily rollups (which must agree to the last digit)."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.core.db import session_scope
from dispatch.stats import rollup
from tests.helpers import Api
from tests.stats.dataset import FIRST, LAST, Dataset, build

WEEK = f"from={FIRST}&to={LAST}"


@pytest.fixture
def d(api: Api) -> Dataset:
    return build(api)


def _get(d: Dataset, path: str) -> Any:
    return d.api.ok("GET", path, d.manager)


def _roll_up() -> None:
    with session_scope() as session:
        assert rollup.refresh(session, rollup.days_between(FIRST, LAST)) == 7


def test_summary_matches_the_hand_computed_figures(d: Dataset) -> None:
    s = _get(d, f"/api/stats/summary?{WEEK}")
    assert (s["from"], s["to"], s["township"]) == ("2026-11-02", "2026-11-08", None)
    assert s["requests"] == {
        "total": 7,
        "by_kind": {"meal": 3, "home_care": 2, "day_care": 1, "visit": 1},
        "by_status": {"completed": 4, "cancelled": 2, "escalated": 1},
        "by_township": {"静海镇": 4, "独流镇": 3},
        "by_channel": {"hotline": 7},
    }
    assert s["served"] == 4
    # assign: 30, 60, 90, 120, 300 s -> p50 90; p90 at rank 3.6 = 120 + 0.6 x 180
    assert s["seconds_to_assign"] == {"p50": 90.0, "p90": 228.0, "count": 5}
    # arrival: 600, 900, 1200, 300, 0 s -> p50 600; p90 = 900 + 0.6 x 300
    assert s["seconds_to_arrival"] == {"p50": 600.0, "p90": 1080.0, "count": 5}
    assert (s["completion_rate"], s["escalation_rate"]) == (0.5714, 0.1429)
    assert s["escalations"] == {"total": 1, "by_reason": {"not_placed_in_time": 1}}
    assert s["failed_visits"] == {"total": 1, "by_outcome": {"not_home": 1}}
    assert s["welfare_checks"] == {"total": 0, "by_reason": {}}
    assert s["average_rating"] == 3.67 and s["ratings"] == {"count": 3, "average": 3.67, "complaints": 1}
    # 7 days. Canteen 2 meals / (10 x 2 slots x 7); home care 1.5 h / (2 x 10 h x 7); day care 1 / (5 x 7).
    by_kind = {p["kind"]: (p["jobs"], p["served"], p["utilization"]) for p in s["providers"]}
    assert by_kind == {"canteen": (2, 2, 0.0143), "home_care": (2, 1, 0.0107), "day_care": (1, 1, 0.0286)}
    assert s["utilization_by_kind"] == {"canteen": 0.0143, "day_care": 0.0286, "home_care": 0.0107}


def test_a_township_filter_counts_its_requests_and_its_providers(d: Dataset) -> None:
    s = _get(d, f"/api/stats/summary?{WEEK}&township=独流镇")
    assert s["requests"]["total"] == 3 and s["requests"]["by_kind"] == {"day_care": 1, "visit": 1, "meal": 1}
    assert s["seconds_to_assign"] == {"p50": 300.0, "p90": 300.0, "count": 1}
    assert s["completion_rate"] == 0.3333 and s["escalation_rate"] == 0.3333
    assert [p["kind"] for p in s["providers"]] == ["day_care"]  # located in 独流镇
    empty = _get(d, f"/api/stats/summary?{WEEK}&township=王口镇")
    assert empty["requests"]["total"] == 0 and empty["completion_rate"] is None
    assert empty["seconds_to_assign"] == {"p50": None, "p90": None, "count": 0}


def test_breakdowns_by_day_hour_township_provider_and_kind(d: Dataset) -> None:
    def rows(by: str) -> dict[str, dict[str, Any]]:
        return {r["key"]: r for r in _get(d, f"/api/stats/breakdown?{WEEK}&by={by}")["rows"]}

    days = rows("day")
    assert list(days) == ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
    assert [(r["requests"], r["served"], r["escalations"]) for r in days.values()] == [
        (2, 2, 0), (2, 1, 0), (1, 1, 0), (2, 0, 1)]  # fmt: skip
    assert days["2026-11-02"]["seconds_to_assign_p50"] == 60.0 and days["2026-11-02"]["average_rating"] == 3.5
    assert days["2026-11-03"]["failed_visits"] == 1
    assert days["2026-11-05"]["escalation_reasons"] == {"not_placed_in_time": 1}
    hours = rows("hour")
    assert {k: r["requests"] for k, r in hours.items()} == {
        "07": 1,
        "08": 1,
        "09": 1,
        "10": 2,
        "14": 1,
        "16": 1,
    }
    towns = rows("township")
    assert list(towns) == ["静海镇", "独流镇"] and towns["静海镇"]["completion_rate"] == 0.75
    kinds = rows("kind")
    assert [(k, r["requests"], r["served"]) for k, r in kinds.items()] == [
        ("meal", 3, 2), ("home_care", 2, 1), ("day_care", 1, 1), ("visit", 1, 0)]  # fmt: skip
    providers = {r["kind"]: r for r in rows("provider").values()}
    assert providers["canteen"]["requests"] == 2 and providers["canteen"]["complaints"] == 1
    assert (
        providers["canteen"]["seconds_to_assign_p50"] == 60.0
        and providers["canteen"]["utilization"] == 0.0143
    )
    assert providers["home_care"]["failed_visits"] == 1 and providers["home_care"]["utilization"] == 0.0107
    assert providers["home_care"]["seconds_to_arrival_p90"] == 1110.0  # 300, 1200 -> 300 + 0.9 x 900


def test_the_waiting_time_distribution(d: Dataset) -> None:
    dist = _get(d, f"/api/stats/distribution?{WEEK}")
    counts = {b["upper_seconds"]: b["count"] for b in dist["buckets"]}
    assert dist["count"] == 5 and sum(counts.values()) == 5
    assert (counts[30.0], counts[60.0], counts[120.0], counts[300.0], counts[600.0]) == (0, 1, 2, 1, 1)
    arrival = _get(d, f"/api/stats/distribution?{WEEK}&metric=seconds_to_arrival")
    assert {b["upper_seconds"]: b["count"] for b in arrival["buckets"]}[15.0] == 1  # r5 arrived on the dot


def test_indicators_with_their_targets(d: Dataset) -> None:
    found = _get(d, f"/api/stats/indicators?{WEEK}")
    ind = {i["key"]: i for i in found["indicators"]}
    assert (ind["meal_township_share"]["numerator"], ind["meal_township_share"]["denominator"]) == (1, 18)
    assert ind["meal_township_share"]["value"] == 0.0556 and ind["meal_township_share"]["met"] is False
    assert ind["day_care_township_share"]["numerator"] == 1  # D1 in 独流镇 served r5
    # e1 lives alone; last visit ended 11-03, six days before the period's end: on rhythm.
    assert (ind["visited_on_rhythm_share"]["value"], ind["visited_on_rhythm_share"]["denominator"]) == (
        1.0,
        1,
    )
    assert ind["average_rating"]["value"] == 3.6667 and ind["average_rating"]["target"] == 4.5
    assert ind["complaint_rate"]["value"] == 0.3333 and ind["complaint_rate"]["met"] is False
    assert not ind["complaint_rate"]["higher_is_better"]
    quality = {q["kind"]: (q["ratings"], q["average_rating"], q["complaints"]) for q in found["providers"]}
    assert quality == {"canteen": (2, 3.5, 1), "home_care": (1, 4.0, 0)}


def test_the_rollups_give_the_same_figures_as_the_live_queries(d: Dataset) -> None:
    paths = [f"/api/stats/summary?{WEEK}", f"/api/stats/summary?{WEEK}&township=静海镇",
             f"/api/stats/indicators?{WEEK}", f"/api/stats/distribution?{WEEK}"]  # fmt: skip
    paths += [f"/api/stats/breakdown?{WEEK}&by={by}" for by in ("day", "township", "provider", "kind")]
    live = [_get(d, p) for p in paths]
    _roll_up()
    for path, before in zip(paths, live, strict=True):
        after = _get(d, path)
        after.pop("as_of", None)
        before.pop("as_of", None)
        assert after == before, path


def test_a_late_rating_reaches_a_rolled_up_day(d: Dataset) -> None:
    from workers.stats import refresh_stats

    _roll_up()
    d.api.ok("POST", f"/api/requests/{d.requests['r5']}/feedback", d.operator, 201, json={"rating": 1})
    assert _get(d, f"/api/stats/summary?{WEEK}")["ratings"]["count"] == 3  # rolled: one run behind
    assert refresh_stats() >= 1  # the cron job sees the rating and redoes 11-04
    assert _get(d, f"/api/stats/summary?{WEEK}")["ratings"] == {"count": 4, "average": 3.0, "complaints": 2}


def test_an_escalation_reason_the_rollups_do_not_know_is_kept(d: Dataset) -> None:
    from sqlalchemy import update
    from sqlmodel import col

    from dispatch.orders.models import ServiceRequest

    with session_scope() as session:  # a reason a later matcher might give
        session.execute(
            update(ServiceRequest)
            .where(col(ServiceRequest.id) == d.requests["r7"])
            .values(escalation_reason="provider_on_strike")
        )
    live = _get(d, f"/api/stats/summary?{WEEK}")["escalations"]
    _roll_up()
    assert _get(d, f"/api/stats/summary?{WEEK}")["escalations"] == live
    assert live == {"total": 2, "by_reason": {"not_placed_in_time": 1, "provider_on_strike": 1}}
