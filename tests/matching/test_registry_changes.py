"""The match worker keeps the providers it built (capacity.load_providers) from one run to the
next and builds them again only when the registry changed. Every change that matters to
matching — a provider deactivated, its capacity, hours, radius, place or skills, a caregiver
added, deactivated, or its skills or shift changed, the caregivers' cap, the records — is seen
by the very next run: the providers read then are those an uncached read gives."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.matching import capacity
from dispatch.matching.core import ProviderInfo
from dispatch.matching.scoring import ProviderRecord
from services.models import Caregiver, Provider
from tests.helpers import HOME_CARE, Api, drain_jobs


def _providers(**kwargs: Any) -> list[ProviderInfo]:
    """The providers as the match worker's snapshot reads them (a session of its own)."""
    with session_scope(write=False) as session:
        return capacity.load_providers(session, **kwargs)


def _uncached(**kwargs: Any) -> list[ProviderInfo]:
    """The same read without the kept providers: asked by id, they are always built afresh."""
    with session_scope(write=False) as session:
        ids = list(session.scalars(select(col(Provider.id))))
        return capacity.load_providers(session, ids, **kwargs)


def _world(api: Api) -> dict[str, Any]:
    w = api.world()
    other = api.ok("POST", "/api/providers", w["manager"], 201, json={**HOME_CARE, "name": "另一家服务社"})
    cg = api.ok(
        "POST",
        f"/api/providers/{other['id']}/caregivers",
        w["manager"],
        201,
        json={"name": "李护工", "phone": "+8613700000001", "skills": ["cleaning"]},
    )
    return {**w, "other": other, "caregiver": cg}


def test_an_unchanged_registry_is_not_built_again(api: Api) -> None:
    _world(api)
    first, second = _providers(), _providers()
    assert first == second == _uncached()
    assert all(a is b for a, b in zip(first, second, strict=True))  # kept, not rebuilt


@pytest.mark.parametrize(
    "patch",
    [
        {"active": False},
        {"capacity": 7},
        {"hours": {"open": "08:00", "close": "17:00"}},
        {"service_radius_km": 3.5},
        {"skills": ["nursing"]},
        {"lat": 38.96, "lon": 116.99},
    ],
    ids=["deactivated", "capacity", "hours", "radius", "skills", "place"],
)
def test_a_provider_changed_is_seen_by_the_next_run(api: Api, patch: dict[str, Any]) -> None:
    w = _world(api)
    before = _providers()
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json=patch)
    after = _providers()
    assert after != before and after == _uncached()
    changed = [p for p in after if p.id == w["provider"]["id"]]
    if patch.get("active") is False:
        assert changed == []
    else:
        (p,) = changed
        expected = {**patch}
        if "hours" in expected:
            hours = expected.pop("hours")
            expected.update(open_time=hours["open"], close_time=hours["close"])
        if "skills" in expected:
            expected["skills"] = frozenset(expected["skills"])
        assert {k: getattr(p, k) for k in expected} == expected
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"active": True})
    assert _providers() == _uncached()  # and back


@pytest.mark.parametrize(
    "values",
    [{"active": False}, {"skills": ["bathing", "nursing"]}, {"shift_start": "08:00", "shift_end": "12:00"}],
    ids=["deactivated", "skills", "shift"],
)
def test_a_caregiver_changed_is_seen_by_the_next_run(api: Api, values: dict[str, Any]) -> None:
    w = _world(api)
    before = _providers()
    with session_scope() as session:  # no API edits caregivers yet: the registry's own table
        cg = session.get_one(Caregiver, w["caregiver"]["id"])
        for key, value in values.items():
            setattr(cg, key, value)
    after = _providers()
    assert after != before and after == _uncached()
    (other,) = [p for p in after if p.id == w["other"]["id"]]
    if values.get("active") is False:
        assert other.caregivers == ()
    else:
        (c,) = other.caregivers
        assert (c.skills, c.shift_start, c.shift_end) == (
            frozenset(values.get("skills", ["cleaning"])),
            values.get("shift_start"),
            values.get("shift_end"),
        )


def test_a_caregiver_added_is_seen_by_the_next_run(api: Api) -> None:
    w = _world(api)
    _providers()
    api.ok(
        "POST",
        f"/api/providers/{w['other']['id']}/caregivers",
        w["manager"],
        201,
        json={"name": "王护工", "phone": "+8613700000002", "skills": ["bathing"]},
    )
    (other,) = [p for p in _providers() if p.id == w["other"]["id"]]
    assert len(other.caregivers) == 2 and _providers() == _uncached()


def test_the_caregivers_cap_and_the_records_are_seen_by_the_next_run(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(api)
    _providers()
    monkeypatch.setenv("CAREGIVER_MAX_JOBS", "9")
    get_settings.cache_clear()
    (other,) = [p for p in _providers() if p.id == w["other"]["id"]]
    assert other.caregivers[0].max_jobs == 9
    records = {w["provider"]["id"]: ProviderRecord(rating=1.5)}
    (p,) = [p for p in _providers(records=records) if p.id == w["provider"]["id"]]
    assert p.record.rating == 1.5 and _providers(records=records) == _uncached(records=records)


def test_the_matcher_offers_by_the_registry_of_its_run(api: Api) -> None:
    """Through the worker: a provider whose radius no longer reaches the elder between two runs
    gets nothing from the second, and reaching again gets the next."""
    w = api.world()
    body = {"elder_id": w["elder"]["id"], "kind": "home_care"}
    first = api.ok("POST", "/api/requests", w["operator"], 202, json=body)
    drain_jobs()
    assert api.ok("GET", f"/api/requests/{first['id']}", w["operator"])["status"] == "offered"
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"service_radius_km": 0.1})
    second = api.ok("POST", "/api/requests", w["operator"], 202, json=body)
    drain_jobs()
    final = api.ok("GET", f"/api/requests/{second['id']}", w["operator"])
    assert (final["status"], final["escalation_reason"]) == ("escalated", "no_provider_in_range")
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"service_radius_km": 10.0})
    third = api.ok("POST", "/api/requests", w["operator"], 202, json=body)
    drain_jobs()
    assert api.ok("GET", f"/api/requests/{third['id']}", w["operator"])["status"] == "offered"
