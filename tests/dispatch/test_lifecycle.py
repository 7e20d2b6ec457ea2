"""The state machine: every illegal transition is refused and leaves no event."""

from __future__ import annotations

import itertools

import pytest
from sqlmodel import select

from dispatch.core.db import session_scope
from dispatch.core.errors import Conflict, InvalidTransition
from dispatch.core.events import Event
from dispatch.orders.lifecycle import ALLOWED, OPEN_STATUSES, RequestStatus, can_transition, transition
from dispatch.orders.models import ServiceRequest
from tests.helpers import Api

ALL_PAIRS = list(itertools.product(RequestStatus, RequestStatus))
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if not can_transition(a, b)]
LEGAL = [(a, b) for a, b in ALL_PAIRS if can_transition(a, b)]


def _request_in(status: RequestStatus, api: Api) -> int:
    w = api.world()
    req = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "visit"}
    )
    with session_scope() as session:
        row = session.get(ServiceRequest, req["id"])
        assert row is not None
        row.status = status.value  # set up the starting state directly: this test is about the table
        session.add(row)
    return int(req["id"])


def _events(request_id: int) -> list[str]:
    with session_scope(write=False) as session:
        return list(session.exec(select(Event.type).where(Event.request_id == request_id)).all())


def test_the_table_is_the_documented_lifecycle() -> None:
    s = RequestStatus
    assert ALLOWED[s.QUEUED] == {s.OFFERED, s.ESCALATED, s.ASSIGNED, s.CANCELLED}
    assert ALLOWED[s.OFFERED] == {s.ASSIGNED, s.QUEUED, s.ESCALATED, s.CANCELLED}
    assert ALLOWED[s.ASSIGNED] == {s.IN_SERVICE, s.CANCELLED}
    assert ALLOWED[s.IN_SERVICE] == {s.COMPLETED, s.CANCELLED}
    assert ALLOWED[s.ESCALATED] == {s.ASSIGNED, s.CANCELLED}
    assert not ALLOWED[s.COMPLETED] and not ALLOWED[s.CANCELLED]
    assert all(s.CANCELLED in ALLOWED[o] for o in OPEN_STATUSES)


@pytest.mark.parametrize(("start", "target"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_illegal_transition_is_refused_without_event(
    api: Api, start: RequestStatus, target: RequestStatus
) -> None:
    request_id = _request_in(start, api)
    before = _events(request_id)
    with session_scope() as session:
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        with pytest.raises(InvalidTransition):
            transition(session, row, target, event_type="request.declined")
    assert _events(request_id) == before
    with session_scope(write=False) as session:
        assert session.get(ServiceRequest, request_id).status == start.value  # type: ignore[union-attr]


@pytest.mark.parametrize(("start", "target"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_legal_transition_writes_one_event(api: Api, start: RequestStatus, target: RequestStatus) -> None:
    request_id = _request_in(start, api)
    before = _events(request_id)
    reason = "request.declined" if target == RequestStatus.QUEUED else None
    with session_scope() as session:
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        event = transition(session, row, target, event_type=reason)
        assert event.status == target.value
    assert len(_events(request_id)) == len(before) + 1


def test_requeue_must_say_why(api: Api) -> None:
    request_id = _request_in(RequestStatus.OFFERED, api)
    with session_scope() as session:
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        with pytest.raises(InvalidTransition):
            transition(session, row, RequestStatus.QUEUED)


def test_stale_version_loses_and_leaves_no_event(api: Api) -> None:
    """Two writers read the same version; the second one's compare-and-set fails."""
    request_id = _request_in(RequestStatus.OFFERED, api)
    with session_scope() as session:
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        stale_version = row.version
        transition(session, row, RequestStatus.ESCALATED, escalation_reason="x")
    before = _events(request_id)
    with session_scope() as session:
        row = session.get(ServiceRequest, request_id)
        assert row is not None
        row_copy = ServiceRequest.model_validate(row.model_dump())
        row_copy.status, row_copy.version = RequestStatus.OFFERED.value, stale_version
        with pytest.raises(Conflict):
            transition(session, row_copy, RequestStatus.ASSIGNED, provider_id=None)
    assert _events(request_id) == before
