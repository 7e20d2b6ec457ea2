"""Intake in batches (dispatch/orders/intake.py, batcher.py): a batch stores every acceptable
request and only those, each refusal is the one a single request would get, and the batcher
really commits what arrives together in one transaction."""

from __future__ import annotations

import asyncio
import threading
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, Role, User
from dispatch.core.db import session_scope
from dispatch.core.errors import BadRequest, Conflict, NotFound, Unprocessable
from dispatch.core.events import Event
from dispatch.core.outbox import OutboxJob
from dispatch.elders.models import Elder
from dispatch.orders import batcher as batcher_module
from dispatch.orders import intake
from dispatch.orders.intake import IntakeItem, take_requests
from dispatch.orders.models import IdempotencyRecord, ServiceRequest
from dispatch.orders.schemas import RequestCreate
from tests.helpers import ELDER, Api, make_user


def _principal(username: str) -> Principal:
    with session_scope(write=False) as session:
        return Principal.of(session.exec(select(User).where(User.username == username)).one())


def _count(session: Session, table: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
def people(api: Api) -> dict[str, Any]:
    operator = make_user(Role.OPERATOR)
    family = make_user(Role.FAMILY)
    mine = api.ok("POST", "/api/elders", operator, 201, json=ELDER)
    other = api.ok("POST", "/api/elders", operator, 201, json={**ELDER, "phone": "+8613800000002"})
    gone = api.ok("POST", "/api/elders", operator, 201, json={**ELDER, "phone": "+8613800000003"})
    api.ok("POST", f"/api/elders/{mine['id']}/family", operator, 201, json={"username": family})
    with session_scope() as session:
        elder = session.get(Elder, gone["id"])
        assert elder is not None
        elder.deceased_on = date(2026, 11, 1)
    return {
        "operator": _principal(operator),
        "family": _principal(family),
        "mine": mine["id"],
        "other": other["id"],
        "gone": gone["id"],
    }


def test_a_batch_stores_the_good_and_refuses_the_rest_alone(people: dict[str, Any]) -> None:
    op, fam = people["operator"], people["family"]

    def item(principal: Principal, elder_id: int, key: str | None = None, note: str = "") -> IntakeItem:
        return IntakeItem(principal, RequestCreate(elder_id=elder_id, kind="visit", note=note), key)

    with session_scope() as session:  # a key used before, in an earlier transaction
        take_requests(session, [item(op, people["mine"], "used-before", note="first")])
    batch = [
        item(op, people["mine"]),  # 0 stored
        item(op, 999_999),  # 1 unknown elder
        item(fam, people["other"]),  # 2 a family's unlinked elder: answered as unknown
        item(fam, people["mine"], "fam-1"),  # 3 stored
        item(op, people["gone"]),  # 4 deceased
        item(op, people["mine"], "bad key with spaces"),  # 5 400
        item(op, people["mine"], "used-before", note="another body"),  # 6 422
        item(op, people["mine"], "used-before", note="first"),  # 7 replay of the earlier answer
        item(op, people["mine"], "twice"),  # 8 stored
        item(op, people["mine"], "twice"),  # 9 the same key again in this batch: 409
    ]
    with session_scope() as session:
        before = {t: _count(session, t) for t in (ServiceRequest, Event, IdempotencyRecord, OutboxJob)}
        outcomes = take_requests(session, batch)
    errors = [type(o.error) if o.error else None for o in outcomes]
    assert errors == [
        None,
        NotFound,
        NotFound,
        None,
        Conflict,
        BadRequest,
        Unprocessable,
        None,
        None,
        Conflict,
    ]
    assert [o.replayed for o in outcomes] == [False] * 7 + [True, False, False]
    stored = [o.read.id for i, o in enumerate(outcomes) if o.read and i in (0, 3, 8)]
    with session_scope(write=False) as session:
        after = {t: _count(session, t) for t in (ServiceRequest, Event, IdempotencyRecord, OutboxJob)}
        rows = session.exec(select(ServiceRequest).where(col(ServiceRequest.id).in_(stored))).all()
        created = session.exec(select(Event).where(col(Event.request_id).in_(stored))).all()
    assert after[ServiceRequest] - before[ServiceRequest] == 3
    assert after[Event] - before[Event] == 3 and {e.type for e in created} == {"request.created"}
    assert after[IdempotencyRecord] - before[IdempotencyRecord] == 2  # fam-1 and twice
    assert after[OutboxJob] - before[OutboxJob] == 1  # one wake-up of the matcher for the batch
    assert {r.channel for r in rows} == {"hotline", "app"}  # a family's request comes from the app
    assert outcomes[7].read is not None and outcomes[7].read.note == "first"
    # The answer is what a later read says, timeline included.
    for outcome in (outcomes[0], outcomes[3], outcomes[8]):
        assert outcome.read is not None
        assert outcome.read.timeline[0].seq in {e.seq for e in created}


def test_the_batcher_commits_what_arrives_together_in_one_batch(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request's write is held; the 40 that arrive meanwhile go in the next batch."""
    sizes: list[int] = []
    release = threading.Event()
    real = batcher_module._write_on_loop

    async def held(items: list[IntakeItem]) -> Any:
        sizes.append(len(items))
        if len(sizes) == 1:
            assert await asyncio.to_thread(release.wait, 30), "never released"
        return await real(items)

    monkeypatch.setattr(batcher_module, "_write_on_loop", held)
    op = people["operator"]

    async def scenario() -> list[Any]:
        b = batcher_module.IntakeBatcher()
        await b.start()
        first = asyncio.create_task(
            b.submit(IntakeItem(op, RequestCreate(elder_id=people["mine"], kind="visit")))
        )
        while not sizes:
            await asyncio.sleep(0.01)
        rest = [
            asyncio.create_task(b.submit(IntakeItem(op, RequestCreate(elder_id=people["mine"], kind="meal"))))
            for _ in range(40)
        ]
        await asyncio.sleep(0)  # let them all reach the queue
        release.set()
        outcomes = await asyncio.gather(first, *rest)
        await b.stop()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert sizes == [1, 40]
    assert all(o.read is not None and o.error is None for o in outcomes)
    with session_scope(write=False) as session:
        assert _count(session, ServiceRequest) == 41


@pytest.mark.parametrize("way", ["write_batch", "batcher on the loop"])
def test_a_batch_that_fails_is_written_again_one_by_one(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """One request whose storing breaks (here: made to raise) cannot take the others with it."""
    poison = people["other"]
    real_store = intake._store

    def store(session: Session, checked: Any, fresh: list[int]) -> None:
        if any(checked.items[i].request_in.elder_id == poison for i in fresh):
            raise RuntimeError("disk full, say")
        real_store(session, checked, fresh)

    monkeypatch.setattr(intake, "_store", store)
    op = people["operator"]
    items = [
        IntakeItem(op, RequestCreate(elder_id=e, kind="visit"))
        for e in (people["mine"], poison, people["mine"])
    ]
    if way == "write_batch":
        results: list[Any] = batcher_module.write_batch(items)
    else:
        results = asyncio.run(batcher_module.IntakeBatcher()._write_async(items))
    assert isinstance(results[1], RuntimeError)
    assert all(not isinstance(r, BaseException) and r.read is not None for r in (results[0], results[2]))
    with session_scope(write=False) as session:
        assert _count(session, ServiceRequest) == 2
        assert _count(session, Event) == 2


@pytest.mark.parametrize("way", ["write_batch", "batcher on the loop"])
def test_a_key_used_before_fails_the_batch_which_is_taken_again_with_its_keys_read(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    """The batcher does not look a batch's keys up (under load nearly every key is new): a key
    used before fails the insert on its unique constraint, and the batch is taken again, in one
    transaction, with its keys read. That request gets the first use's answer (a replay), the
    others are stored once."""
    op = people["operator"]
    racing = IntakeItem(op, RequestCreate(elder_id=people["mine"], kind="visit"), "used-key")
    with session_scope() as session:
        first_use = take_requests(session, [racing])[0]
    again: list[int] = []
    real_read_first = batcher_module._read_first

    def read_first(items: Any) -> Any:
        again.append(len(items))
        return real_read_first(items)

    monkeypatch.setattr(batcher_module, "_read_first", read_first)
    items = [
        IntakeItem(op, RequestCreate(elder_id=people["other"], kind="meal")),
        racing,
        IntakeItem(op, RequestCreate(elder_id=people["mine"], kind="day_care")),
    ]
    if way == "write_batch":
        results: list[Any] = batcher_module.write_batch(items)
    else:
        results = asyncio.run(batcher_module.IntakeBatcher()._write_async(items))
    assert again == [3]  # the whole batch once more, in one transaction
    assert not any(isinstance(r, BaseException) for r in results), results
    raced = results[1]
    assert not isinstance(raced, BaseException) and raced.replayed
    assert raced.read == first_use.read
    assert all(
        not isinstance(r, BaseException) and r.read and not r.replayed for r in (results[0], results[2])
    )
    with session_scope(write=False) as session:
        assert _count(session, ServiceRequest) == 3  # the first use and the two others, once each
        assert _count(session, IdempotencyRecord) == 1
