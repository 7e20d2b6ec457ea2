"""The subsidy ledger on the fixed data set (November 2026): entitlements by category, draws only
for verified completed visits, the entitlement as a ceiling, and death stopping the draws."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from dispatch.core.config import get_settings
from tests.helpers import Api
from tests.stats.dataset import Dataset, build


@pytest.fixture
def d(api: Api) -> Dataset:
    return build(api)


def _ledger(d: Dataset, query: str = "") -> Any:
    return d.api.ok("GET", f"/api/stats/ledger?month=2026-11{query}", d.manager)


def test_only_verified_completed_visits_draw(d: Dataset) -> None:
    ledger = _ledger(d)
    # Entitled: e1 dibao 300, e2 tekun 600, e4 low income 200 (e3 has no assistance).
    # Drawing: r1 meal 15 and r3 home care 50 (e1), r5 day care 30 (e3: all his own payment).
    # Not drawing: r2 (unverified: checked in 1.1 km away), r4 (not home).
    assert ledger["totals"] == {
        "elders_entitled": 3, "entitlement": 1100.0, "visits_drawn": 3, "value": 95.0, "subsidy": 65.0,
        "self_pay": 30.0, "not_drawn": {"unverified": 1, "failed": 1, "deceased": 0},
    }  # fmt: skip
    lines = {p["kind"]: (p["visits"], p["value"], p["subsidy"], p["self_pay"]) for p in ledger["by_provider"]}
    assert lines == {
        "home_care": (1, 50.0, 50.0, 0.0),
        "canteen": (1, 15.0, 15.0, 0.0),
        "day_care": (1, 30.0, 0.0, 30.0),
    }
    assert [p["kind"] for p in ledger["by_provider"]] == ["home_care", "canteen", "day_care"]
    towns = {
        t["key"]: (t["elders_entitled"], t["entitlement"], t["visits"], t["subsidy"], t["self_pay"])
        for t in ledger["by_township"]
    }
    assert towns == {"静海镇": (2, 900.0, 2, 65.0, 0.0), "独流镇": (1, 200.0, 1, 0.0, 30.0)}
    categories = {c["key"]: (c["entitlement"], c["subsidy"]) for c in ledger["by_category"]}
    assert categories == {
        "dibao": (300.0, 65.0),
        "tekun": (600.0, 0.0),
        "low_income": (200.0, 0.0),
        "none": (0.0, 0.0),
    }
    elders = {e["elder_id"]: (e["entitlement"], e["subsidy"], e["remaining"]) for e in
              d.api.ok("GET", "/api/stats/ledger/elders?month=2026-11", d.manager)}  # fmt: skip
    assert elders[d.elders["e1"]] == (300.0, 65.0, 235.0) and elders[d.elders["e2"]] == (600.0, 0.0, 600.0)
    by_township = _ledger(d, "&township=独流镇")
    assert by_township["totals"]["entitlement"] == 200.0 and by_township["totals"]["subsidy"] == 0.0
    assert ledger["month"] == "2026-11" and ledger["township"] is None
    assert d.api.ok("GET", "/api/stats/ledger?month=2026-10", d.manager)["totals"]["visits_drawn"] == 0


def test_the_entitlement_is_a_ceiling(d: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBSIDY_MONTHLY_DIBAO", "40")
    get_settings.cache_clear()
    elders = {e["elder_id"]: e for e in d.api.ok("GET", "/api/stats/ledger/elders?month=2026-11", d.manager)}
    e1 = elders[d.elders["e1"]]  # meal 15 in full, then 25 of the 50 of home care
    assert (e1["entitlement"], e1["subsidy"], e1["self_pay"], e1["remaining"], e1["visits"]) == (
        40.0,
        40.0,
        25.0,
        0.0,
        2,
    )


def test_death_stops_the_draws_from_that_day(d: Dataset) -> None:
    d.api.ok("PATCH", f"/api/elders/{d.elders['e1']}", d.operator, json={"deceased_on": "2026-11-03"})
    ledger = _ledger(d)
    assert ledger["totals"]["not_drawn"]["deceased"] == 1  # r3 on 11-03; r1 on 11-02 still draws
    assert ledger["totals"]["subsidy"] == 15.0
    december = d.api.ok("GET", "/api/stats/ledger?month=2026-12", d.manager)
    assert december["totals"]["elders_entitled"] == 2  # e1 no longer has an entitlement


def test_csv_exports_of_the_ledger(d: Dataset) -> None:
    def rows(view: str) -> list[dict[str, str]]:
        response = d.api.call("GET", f"/api/stats/ledger.csv?month=2026-11&by={view}", d.manager)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        return list(csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff"))))

    providers = rows("provider")
    assert sorted(float(r["subsidy"]) for r in providers) == [0.0, 15.0, 50.0]
    visits = rows("visit")
    assert sorted(r["status"] for r in visits) == ["drawn", "drawn", "drawn", "failed", "unverified"]
    assert {r["township"]: float(r["entitlement"]) for r in rows("township")} == {
        "静海镇": 900.0,
        "独流镇": 200.0,
    }
    elders = {int(r["elder_id"]): r for r in rows("elder")}
    assert set(elders) == set(d.elders.values())  # the three entitled, and e3 who drew a visit
    assert float(elders[d.elders["e1"]]["subsidy"]) == 65.0
    assert "name" not in elders[d.elders["e1"]]  # no names in the files that leave the platform
