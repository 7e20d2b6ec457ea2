"""The per-request CSV export, and who may read statistics at all (bad input answers 4xx)."""

from __future__ import annotations

import csv
import io

import pytest

from dispatch.core.auth import Role
from tests.helpers import ELDER, Api, make_user
from tests.stats.dataset import FIRST, LAST, Dataset, build

WEEK = f"from={FIRST}&to={LAST}"


@pytest.fixture
def d(api: Api) -> Dataset:
    return build(api)


def test_export_has_one_row_per_request_and_no_personal_details(d: Dataset) -> None:
    response = d.api.call("GET", f"/api/stats/export.csv?{WEEK}", d.manager)
    assert response.status_code == 200 and response.text.startswith("\ufeff")
    assert 'filename="requests_2026-11-02_2026-11-08.csv"' in response.headers["content-disposition"]
    rows = {
        int(r["request_id"]): r for r in csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff")))
    }
    assert sorted(rows) == sorted(d.requests.values())
    r1, r4, r6 = (rows[d.requests[k]] for k in ("r1", "r4", "r6"))
    assert (r1["kind"], r1["status"], r1["seconds_to_assign"], r1["seconds_to_arrival"]) == (
        "meal", "completed", "30.0", "600.0")  # fmt: skip
    assert (r1["visit_outcome"], r1["verified"], r1["rating"], r1["provider_kind"]) == (
        "completed",
        "1",
        "5",
        "canteen",
    )
    assert r1["created_at"] == "2026-11-02T09:00:00+08:00"
    assert (r4["visit_outcome"], r4["verified"], r4["status"]) == ("not_home", "0", "cancelled")
    assert (r6["escalation_reason"], r6["provider_id"], r6["assigned_at"]) == ("not_placed_in_time", "", "")
    text = response.text
    assert ELDER["name"] not in text and ELDER["address"] not in text and ELDER["phone"] not in text
    township = d.api.call("GET", f"/api/stats/export.csv?{WEEK}&township=独流镇", d.manager)
    assert len(township.text.strip().splitlines()) == 1 + 3


def test_statistics_are_for_managers_and_admin_only(d: Dataset) -> None:
    admin = make_user(Role.ADMIN)
    family = make_user(Role.FAMILY)
    paths = ["/api/stats/summary", "/api/stats/breakdown", "/api/stats/distribution", "/api/stats/indicators",
             "/api/stats/export.csv", "/api/stats/ledger", "/api/stats/ledger/elders", "/api/stats/ledger.csv"]  # fmt: skip
    for path in paths:
        assert d.api.call("GET", path, admin).status_code == 200, path
        for user in (d.operator, family, "staff-C1"):
            assert d.api.call("GET", path, user).status_code == 403, (path, user)
        assert d.api.call("GET", path).status_code == 401, path


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("from=2026-11-09&to=2026-11-02", "after"),
        ("from=2020-01-01&to=2026-01-01", "at most"),
        ("from=1900-01-01", "between"),
        ("to=9999-12-31", "between"),
        ("from=yesterday", "date"),
        ("township=火星镇", "township"),
        ("by=week", "by"),
        ("metric=mood", "metric"),
    ],
)
def test_bad_periods_and_groupings_are_422_with_a_reason(d: Dataset, query: str, why: str) -> None:
    path = "/api/stats/distribution" if "metric" in query else "/api/stats/breakdown"
    response = d.api.call("GET", f"{path}?{query}", d.manager)
    assert response.status_code == 422 and why in response.text, response.text


@pytest.mark.parametrize("month", ["2026-13", "26-11", "1999-12", "2026-1", "november"])
def test_bad_months_are_422(d: Dataset, month: str) -> None:
    assert d.api.call("GET", f"/api/stats/ledger?month={month}", d.manager).status_code == 422
