"""Accepts in bulk: the API's accept batcher commits every accept that arrived together.

`POST /api/offers/{id}/accept` hands its accept to the process's batcher
(`core/batching.py`), which calls `write_accepts` with everything waiting. The batch is
checked item by item against what one read of its offers and requests says (404 for an
offer the caller may not see, 409 for one no longer pending or expired, or asked twice in
the batch) and the rest is written set-wise: one compare-and-set of the offers, one of the
requests (`transition_many`), one insert each of the events, the audit rows (each naming its
own caller) and the families' texts. Each caller is answered after the one COMMIT.

Of all offers of a request at most one is ever accepted, as with one accept at a time: the
offers' compare-and-set, the requests', and the unique index all stand guard. Should a
compare-and-set lose (a concurrent writer on PostgreSQL changed an offer or a request after
it was read), the set-wise attempt is rolled back to its SAVEPOINT and the batch is taken one
accept at a time (`offers.accept`), each in a SAVEPOINT of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import anyio
from sqlalchemy import bindparam, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from dispatch.core import audit
from dispatch.core.auth import Principal
from dispatch.core.batching import GroupCommit, each_alone_if_it_fails, each_alone_if_it_fails_async
from dispatch.core.clock import utcnow
from dispatch.core.db import session_scope, write_on_loop
from dispatch.core.errors import Conflict, DomainError, NotFound
from dispatch.core.events import lock_event_order
from dispatch.notify import rules as sms_rules
from dispatch.notify.models import OwedText
from dispatch.orders import offers as offer_service
from dispatch.orders.lifecycle import RequestStatus, transition_many
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from dispatch.orders.schemas import RequestRead, TimelineEntry
from dispatch.orders.service import request_read, request_reads, timelines_of

log = logging.getLogger(__name__)

MAX_BATCH = 256


@dataclass(frozen=True)
class AcceptItem:
    principal: Principal
    offer_id: int
    client: str = ""


class _RaceLost(Exception):
    """A compare-and-set lost: someone changed an offer or a request after it was read."""


@dataclass
class Prepared:
    """A batch after its reads: the answer of each accept refused (404, 409), the offers to
    take (offer id -> index of the item), and what writing them needs, read beforehand."""

    items: Sequence[AcceptItem]
    outcomes: list[ServiceRequest | DomainError | None]
    offers: dict[int | None, Offer]
    requests: dict[int | None, ServiceRequest]
    chosen: dict[int, int]
    now: datetime
    # The families' texts, prepared for the chosen (None: notify.rules reads what it needs then).
    texts: list[OwedText] | None = None
    timelines: dict[int, list[TimelineEntry]] = field(default_factory=dict)


_OFFER_COLUMNS = Offer.__table__.c  # type: ignore[attr-defined]
# Statements built once, their values bound: built per batch, SQLAlchemy generated their cache
# keys each time (bench/api_cpu.py).
_OFFERS = select(Offer).where(col(Offer.id).in_(bindparam("ids", expanding=True)))
_REQUESTS = select(ServiceRequest).where(col(ServiceRequest.id).in_(bindparam("ids", expanding=True)))
# The caregiver may have been changed (direct_to_caregiver) after the offer was read: the
# compare-and-set returns the one it accepted.
_TAKE_OFFERS = (
    update(Offer)
    .where(col(Offer.id).in_(bindparam("ids", expanding=True)), col(Offer.status) == OfferStatus.PENDING)
    .values(
        status=OfferStatus.ACCEPTED,
        responded_at=bindparam("now", type_=_OFFER_COLUMNS.responded_at.type),
        reason="",
    )
    .returning(col(Offer.id), col(Offer.caregiver_id))
)


def prepare(session: Session, items: Sequence[AcceptItem], *, for_answers: bool = False) -> Prepared:
    """Read the batch's offers and requests once and judge each accept as it would be alone.
    With `for_answers`, also prepare the families' texts and the timelines, so that the write
    transaction has nothing left to read (the batcher does this before taking the write lock;
    the compare-and-sets in it then check that nothing changed since)."""
    offer_ids = sorted({i.offer_id for i in items})
    offers = {o.id: o for o in session.exec(_OFFERS, params={"ids": offer_ids})}
    request_ids = sorted({o.request_id for o in offers.values()})
    requests = {r.id: r for r in session.exec(_REQUESTS, params={"ids": request_ids})} if request_ids else {}
    now = utcnow()
    outcomes: list[ServiceRequest | DomainError | None] = [None] * len(items)
    chosen: dict[int, int] = {}  # offer id -> index of the item that takes it
    for index, item in enumerate(items):
        offer = offers.get(item.offer_id)
        if offer is None or not offer_service.can_see_offer(item.principal, offer):
            outcomes[index] = NotFound(f"offer {item.offer_id} not found")
        elif offer.status != OfferStatus.PENDING:
            outcomes[index] = Conflict(f"offer {item.offer_id} is {offer.status}, no longer pending")
        elif offer.expires_at <= now:
            outcomes[index] = Conflict(f"offer {item.offer_id} expired at {offer.expires_at.isoformat()}")
        elif item.offer_id in chosen or requests[offer.request_id].status != RequestStatus.OFFERED:
            outcomes[index] = Conflict(f"offer {item.offer_id} is no longer pending")
        else:
            chosen[item.offer_id] = index
    prepared = Prepared(items, outcomes, offers, requests, chosen, now)
    if for_answers and chosen:
        taken = [offers[i] for i in chosen]
        prepared.texts = sms_rules.family_messages(
            session,
            [requests[o.request_id] for o in taken],
            "assigned",
            provider_ids={o.request_id: o.provider_id for o in taken},
        )
        prepared.timelines = timelines_of(session, [o.request_id for o in taken])
    return prepared


def accept_many(session: Session, items: Sequence[AcceptItem]) -> list[ServiceRequest | DomainError]:
    """Each item's assigned request, or the error it alone would have got (all in `session`)."""
    return write_prepared(session, prepare(session, items))


def write_prepared(session: Session, prepared: Prepared) -> list[ServiceRequest | DomainError]:
    """Take the chosen offers set-wise; _RaceLost if any of them changed since it was read."""
    if prepared.chosen:
        _assign(session, prepared)
        for offer_id, index in prepared.chosen.items():
            prepared.outcomes[index] = prepared.requests[prepared.offers[offer_id].request_id]
    assert all(o is not None for o in prepared.outcomes)
    return prepared.outcomes  # type: ignore[return-value]


def _assign(session: Session, prepared: Prepared) -> None:
    offers = [prepared.offers[i] for i in prepared.chosen]
    taker: dict[int | None, AcceptItem] = {i: prepared.items[x] for i, x in prepared.chosen.items()}
    texts = prepared.texts
    now = prepared.now
    lock_event_order(session)  # before the offers' rows: the one lock order (core/events.py)
    rows = session.connection().execute(_TAKE_OFFERS, {"ids": [o.id for o in offers], "now": now}).all()
    won: dict[int | None, int | None] = dict(rows)  # offer id -> the caregiver it was accepted with
    if len(won) != len(offers):
        raise _RaceLost
    by_request: dict[int | None, Offer] = {}
    for offer in offers:
        for key, value in (
            ("status", OfferStatus.ACCEPTED.value),
            ("responded_at", now),
            ("reason", ""),
            ("caregiver_id", won[offer.id]),
        ):
            set_committed_value(offer, key, value)
        by_request[offer.request_id] = offer
    pairs = transition_many(
        session,
        [prepared.requests[o.request_id] for o in offers],
        RequestStatus.ASSIGNED,
        # The same event data and columns as offers.accept() writes for one accept.
        data=lambda r: {
            "offer_id": by_request[r.id].id,
            "provider_id": by_request[r.id].provider_id,
            "caregiver_id": by_request[r.id].caregiver_id,
        },
        event_provider_id=lambda r: by_request[r.id].provider_id,
        changes=lambda r: {
            "provider_id": by_request[r.id].provider_id,
            "caregiver_id": by_request[r.id].caregiver_id,
            "assigned_at": now,
        },
        actor=lambda r: (taker[by_request[r.id].id].principal, taker[by_request[r.id].id].client),
        texts=None if texts is None else (lambda _pairs: texts),
    )
    if len(pairs) != len(offers):
        raise _RaceLost
    for request, event in pairs:
        if request.id in prepared.timelines:
            prepared.timelines[request.id].append(
                TimelineEntry(seq=event.seq or 0, type=event.type, status=event.status, at=event.at)
            )


def _accept_one(session: Session, item: AcceptItem) -> ServiceRequest | DomainError:
    audit.bind_actor(session, item.principal, item.client)
    try:
        with session.begin_nested():
            return offer_service.accept(session, principal=item.principal, offer_id=item.offer_id)
    except DomainError as exc:
        return exc
    finally:
        session.info.pop(audit.ACTOR, None)


def _in_one_transaction(items: list[AcceptItem]) -> list[RequestRead | BaseException]:
    """The batch read, judged and written in one transaction (a lost race: one by one in it)."""
    with session_scope() as session:
        try:
            with session.begin_nested():
                outcomes = accept_many(session, items)
        except _RaceLost:
            log.info("an accept batch of %d lost a race; accepting one by one", len(items))
            # The rollback to the savepoint does not expire what the batch read and set with
            # set_committed_value (offers "accepted", requests "assigned"): read it all again.
            session.expire_all()
            outcomes = [_accept_one(session, item) for item in items]
        assigned = [o for o in outcomes if isinstance(o, ServiceRequest)]
        reads = {read.id: read for read in request_reads(session, assigned)}
    return [reads[o.id or 0] if isinstance(o, ServiceRequest) else o for o in outcomes]


def write_accepts(items: list[AcceptItem]) -> list[RequestRead | BaseException]:
    """Store a batch of accepts; if its transaction fails, each accept alone."""
    return each_alone_if_it_fails(items, _in_one_transaction, "accepts")


def _prepare(items: list[AcceptItem]) -> Prepared:
    with session_scope(write=False) as reading:
        return prepare(reading, items, for_answers=True)


async def _write_on_loop(items: list[AcceptItem]) -> list[RequestRead | BaseException]:
    """The reads on a thread, then the compare-and-sets and inserts on the loop
    (db.write_on_loop); the answers from what was read and written, without reading again.
    A lost race (anything changed since the reads) fails the batch: it is taken again one
    accept at a time, each read and written in one transaction."""
    prepared = await anyio.to_thread.run_sync(_prepare, items)
    outcomes = await write_on_loop(lambda session: write_prepared(session, prepared))
    return [
        request_read(o, prepared.timelines[o.id or 0]) if isinstance(o, ServiceRequest) else o
        for o in outcomes
    ]


class AcceptBatcher(GroupCommit[AcceptItem, RequestRead]):
    max_batch = MAX_BATCH

    def _write(self, items: list[AcceptItem]) -> list[RequestRead | BaseException]:
        return write_accepts(items)

    async def _write_async(self, items: list[AcceptItem]) -> list[RequestRead | BaseException]:
        return await each_alone_if_it_fails_async(items, _write_on_loop, "accepts", _in_one_transaction)
