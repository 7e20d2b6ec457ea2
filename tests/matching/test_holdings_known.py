"""The match worker knows the capacity in use between its full reads (capacity.snapshot_holdings,
MATCH_HOLDINGS_CACHE_SECONDS): it reads every provider's holdings at most that often and keeps
them in between from its own batches. What others changed meanwhile never costs a request:
a unit that came free is read afresh before a request is kept waiting or escalated, and a unit
taken by hand is caught by the apply's check under the write lock, then read afresh."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import col, select

from dispatch.core.config import get_settings
from dispatch.core.db import get_engine, session_scope
from dispatch.matching import capacity
from dispatch.orders.models import Offer, ServiceRequest
from tests.helpers import HOME_CARE, Api
from workers import matching


@pytest.fixture
def full_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Known capacity for a minute (longer than any test here), and a count of the full reads
    of the capacity in use (every provider's, not the few a batch's apply re-checks)."""
    monkeypatch.setenv("MATCH_HOLDINGS_CACHE_SECONDS", "60")
    get_settings.cache_clear()
    reads: list[int] = []
    real = capacity.load_holdings

    def counted(session: Any, provider_ids: Any = None, **kwargs: Any) -> Any:
        if provider_ids is None:
            reads.append(1)
        return real(session, provider_ids, **kwargs)

    monkeypatch.setattr(capacity, "load_holdings", counted)
    yield reads
    get_settings.cache_clear()


def _world(api: Api, capacity_: int) -> dict[str, Any]:
    w = api.world()
    body = {**HOME_CARE, "name": "静海小单位服务社", "phone": "+8613600000077", "capacity": capacity_}
    w["small"] = api.ok("POST", "/api/providers", w["manager"], 201, json=body)
    # The world's own provider leaves the district: only the small one serves these elders.
    api.ok("PATCH", f"/api/providers/{w['provider']['id']}", w["manager"], json={"active": False})
    return w


def _file(api: Api, w: dict[str, Any]) -> int:
    body = {"elder_id": w["elder"]["id"], "kind": "visit"}
    return int(api.ok("POST", "/api/requests", w["operator"], 202, json=body)["id"])


def _status(request_id: int) -> str:
    with session_scope(write=False) as session:
        request = session.get(ServiceRequest, request_id)
        assert request is not None
        return request.status


def _open_units(provider_id: int) -> int:
    """Pending offers and assigned jobs of a provider: what its capacity bounds."""
    with session_scope(write=False) as session:
        pending = session.exec(
            select(Offer).where(Offer.provider_id == provider_id, col(Offer.status) == "pending")
        ).all()
        assigned = session.exec(
            select(ServiceRequest).where(
                ServiceRequest.provider_id == provider_id, col(ServiceRequest.status) == "assigned"
            )
        ).all()
    return len(pending) + len(assigned)


def test_runs_in_between_full_reads_use_what_the_matcher_knows(api: Api, full_reads: list[int]) -> None:
    w = _world(api, 5)
    first = _file(api, w)
    assert matching.match_pending()["offered"] == 1 and full_reads == [1]
    second = _file(api, w)
    assert matching.match_pending()["offered"] == 1
    assert full_reads == [1]  # the second run decided on the capacity it knew
    assert {_status(first), _status(second)} == {"offered"}


def test_every_run_reads_afresh_when_turned_off(
    api: Api, full_reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATCH_HOLDINGS_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    w = _world(api, 5)
    for expected in (1, 2):
        _file(api, w)
        assert matching.match_pending()["offered"] == 1
        assert len(full_reads) == expected


def test_a_unit_that_came_free_since_is_offered_not_kept_waiting(api: Api, full_reads: list[int]) -> None:
    w = _world(api, 1)
    first = _file(api, w)
    assert matching.match_pending()["offered"] == 1  # the small provider's one unit, held
    # Meanwhile the operator cancels it: the unit is free, the matcher still knows it held.
    api.ok("POST", f"/api/requests/{first}/cancel", w["operator"], json={"reason": "不需要了"})
    second = _file(api, w)
    result = matching.match_pending()
    # Decided on what it knew, the request would wait for a full provider; read afresh, it is offered.
    assert result["offered"] == 1 and result["waiting"] == 0
    assert len(full_reads) == 2
    assert _status(second) == "offered" and _open_units(w["small"]["id"]) == 1


def test_a_unit_taken_by_hand_since_is_not_offered_twice(api: Api, full_reads: list[int]) -> None:
    w = _world(api, 2)
    small = w["small"]["id"]
    first = _file(api, w)
    assert matching.match_pending()["offered"] == 1  # known: one of two units held
    # Meanwhile an operator dispatches another request to the small provider by hand: it is full.
    by_hand = _file(api, w)
    api.ok("POST", f"/api/requests/{by_hand}/assign", w["operator"], json={"provider_id": small})
    third = _file(api, w)
    result = matching.match_pending()
    # Decided on what it knew (a unit left), the offer fails the check under the write lock.
    assert result["offered"] == 0 and result["skipped"] == 1
    assert _open_units(small) == 2 and _status(third) == "queued"
    # The next run reads afresh: the provider is full of a unit an offer only holds, so it waits.
    result = matching.match_pending()
    assert result["offered"] == 0 and result["waiting"] == 1
    assert len(full_reads) == 2 and _open_units(small) == 2
    assert (_status(first), _status(by_hand), _status(third)) == ("offered", "assigned", "queued")


def test_knowledge_about_to_expire_is_read_again_while_the_window_gathers(
    api: Api, full_reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _world(api, 5)
    _file(api, w)
    assert matching.match_pending()["offered"] == 1 and full_reads == [1]
    reader = get_engine(write=False)
    capacity._KNOWN[reader].read_at -= 120  # two minutes old: past MATCH_HOLDINGS_CACHE_SECONDS
    reads_when_waiting: list[int] = []
    real_wait = matching._wait_for_batch_window

    def wait(conn: Any, window: float) -> None:
        reads_when_waiting.append(len(full_reads))
        real_wait(conn, window)

    monkeypatch.setattr(matching, "_wait_for_batch_window", wait)
    _file(api, w)
    assert matching.match_pending()["offered"] == 1
    # Read again before the window, not in the run; the run decided on that read.
    assert reads_when_waiting == [2] and len(full_reads) == 2
    age = capacity.known_age(reader)
    assert age is not None and age < 60
