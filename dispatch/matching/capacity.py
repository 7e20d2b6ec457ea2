"""From the database to the matcher's plain data: providers (with caregivers and records),
requests, and the capacity in use (assigned jobs and pending offers)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Engine,
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlmodel import Session, col

from dispatch.core import jsontext
from dispatch.core.clock import utcnow
from dispatch.core.config import get_settings
from dispatch.matching.core import CaregiverInfo, Holding, ProviderInfo, RequestInfo
from dispatch.matching.scoring import ProviderRecord
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from services.models import Caregiver, Provider

# Daily capacity looks this far back: a window that started yesterday still counts today.
_DAILY_LOOKBACK = timedelta(days=2)


# What the matcher reads of the registry: every column a ProviderInfo or CaregiverInfo is built
# from, and nothing else (skills as their JSON text, decoded only when something changed).
_PROVIDER_COLUMNS = (
    col(Provider.id),
    col(Provider.kind),
    col(Provider.lat),
    col(Provider.lon),
    col(Provider.capacity),
    col(Provider.service_radius_km),
    cast(col(Provider.skills), Text),
    col(Provider.open_time),
    col(Provider.close_time),
)
_CAREGIVER_COLUMNS = (
    col(Caregiver.id),
    col(Caregiver.provider_id),
    cast(col(Caregiver.skills), Text),
    col(Caregiver.shift_start),
    col(Caregiver.shift_end),
)


@dataclass(frozen=True)
class _Built:
    """Providers built from exactly these rows, caregivers' cap and records."""

    rows: list[tuple[Any, ...]]
    caregiver_rows: list[tuple[Any, ...]]
    max_jobs: int
    records: Mapping[int, ProviderRecord] | None
    providers: list[ProviderInfo]

    def built_from(
        self,
        rows: list[tuple[Any, ...]],
        caregiver_rows: list[tuple[Any, ...]],
        max_jobs: int,
        records: Mapping[int, ProviderRecord] | None,
    ) -> bool:
        return (
            self.records is records
            and self.max_jobs == max_jobs
            and self.rows == rows
            and self.caregiver_rows == caregiver_rows
        )


# The last providers built, per database engine. The registry changes rarely, but building its
# ~400 providers with their caregivers cost the match worker more than the rest of its snapshot.
_BUILT: weakref.WeakKeyDictionary[Engine, _Built] = weakref.WeakKeyDictionary()


def load_providers(
    session: Session,
    ids: Collection[int] | None = None,
    *,
    records: Mapping[int, ProviderRecord] | None = None,
) -> list[ProviderInfo]:
    """Active providers with their active caregivers (two queries), and their records if given.

    The rows are read every time, as plain tuples of the columns that matter, so that a change
    (a provider deactivated, its capacity, hours, radius, place or skills, a caregiver's skills or
    shift) is seen by the very next call; only the building of the providers from them is
    skipped when the rows, the caregivers' cap and the records are those of the last call."""
    max_jobs = get_settings().caregiver_max_jobs
    stmt = select(*_PROVIDER_COLUMNS).where(col(Provider.active).is_(True)).order_by(col(Provider.id))
    cg_stmt = select(*_CAREGIVER_COLUMNS).where(col(Caregiver.active).is_(True)).order_by(col(Caregiver.id))
    if ids is not None:
        stmt = stmt.where(col(Provider.id).in_(list(ids)))
        cg_stmt = cg_stmt.where(col(Caregiver.provider_id).in_(list(ids)))
    rows = [tuple(r) for r in session.execute(stmt)]
    caregiver_rows = [tuple(r) for r in session.execute(cg_stmt)]
    engine = session.get_bind()
    if ids is not None or not isinstance(engine, Engine):
        return _build(rows, caregiver_rows, max_jobs, records)
    built = _BUILT.get(engine)
    if built is None or not built.built_from(rows, caregiver_rows, max_jobs, records):
        built = _Built(
            rows, caregiver_rows, max_jobs, records, _build(rows, caregiver_rows, max_jobs, records)
        )
        _BUILT[engine] = built
    return list(built.providers)


def _build(
    rows: list[tuple[Any, ...]],
    caregiver_rows: list[tuple[Any, ...]],
    max_jobs: int,
    records: Mapping[int, ProviderRecord] | None,
) -> list[ProviderInfo]:
    by_provider: dict[int, list[CaregiverInfo]] = {}
    for cid, provider_id, skills, shift_start, shift_end in caregiver_rows:
        by_provider.setdefault(provider_id, []).append(
            CaregiverInfo(cid, _skills(skills), shift_start, shift_end, max_jobs)
        )
    records = records or {}
    return [
        ProviderInfo(
            id=pid,
            kind=kind,
            lat=lat,
            lon=lon,
            capacity=capacity,
            service_radius_km=radius,
            skills=_skills(skills),
            open_time=open_time,
            close_time=close_time,
            caregivers=tuple(by_provider.get(pid, ())),
            record=records.get(pid, ProviderRecord()),
        )
        for pid, kind, lat, lon, capacity, radius, skills, open_time, close_time in rows
    ]


def _skills(raw: str | None) -> frozenset[str]:
    return frozenset(jsontext.loads(raw) or ()) if raw else frozenset()


class RequestFields(Protocol):
    """What the matcher reads of a request: a ServiceRequest, or a RequestRow of its columns."""

    @property
    def id(self) -> int | None: ...
    @property
    def version(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def window_start(self) -> datetime: ...
    @property
    def window_end(self) -> datetime: ...
    @property
    def details(self) -> dict[str, Any]: ...
    @property
    def elder_id(self) -> int: ...


class RequestRow(NamedTuple):
    """A request's columns the matcher reads, without the ORM object (the match worker reads a
    whole batch of them every run)."""

    id: int | None
    version: int
    kind: str
    priority: str
    created_at: datetime
    window_start: datetime
    window_end: datetime
    details: dict[str, Any]
    elder_id: int


# In RequestRow's order, so that a row of them is one.
REQUEST_COLUMNS = tuple(getattr(ServiceRequest, name) for name in RequestRow._fields)


def request_info(
    r: RequestFields,
    lat: float,
    lon: float,
    excluded: Collection[int],
    *,
    refused: Collection[int] = (),
    served_by: Collection[int] = (),
    served_by_caregivers: Collection[int] = (),
) -> RequestInfo:
    """A request as the matcher sees it (an emergency is always urgent)."""
    assert r.id is not None
    return RequestInfo(
        id=r.id,
        version=r.version,
        kind=r.kind,
        priority="urgent" if r.kind == "emergency" else r.priority,
        created_at=r.created_at,
        lat=lat,
        lon=lon,
        window_start=r.window_start,
        window_end=r.window_end,
        slot=r.details.get("slot"),
        delivery=bool(r.details.get("delivery")),
        skills=frozenset(r.details.get("skills") or ()),
        excluded=frozenset(excluded),
        elder_id=r.elder_id,
        refused=frozenset(refused),
        served_by=frozenset(served_by),
        served_by_caregivers=frozenset(served_by_caregivers),
    )


def load_holdings(
    session: Session, provider_ids: Collection[int] | None = None, *, exclude_offer_id: int | None = None
) -> list[Holding]:
    """Assigned, in-service and (recent) completed jobs, and pending offers (but
    `exclude_offer_id`), counted in SQL: one row per group of holdings that take the same unit
    of capacity, so that the matcher's cost follows the district's pools, not its open jobs.

    Holdings of a home-care provider are one pool whatever their window; other providers'
    pools are per day, so their holdings are grouped by their exact window start (any start
    of a group gives its day)."""
    job_queries, pending = _holdings_statements(
        session.get_bind().dialect.name, provider_ids is not None, exclude_offer_id is not None
    )
    params: dict[str, Any] = {"since": utcnow() - _DAILY_LOOKBACK}
    if provider_ids is not None:
        params["provider_ids"] = list(provider_ids)
    if exclude_offer_id is not None:
        params["exclude_offer_id"] = exclude_offer_id
    out = [
        Holding(provider_id, caregiver_id, kind, start, slot_, status, count)
        for query in job_queries
        for provider_id, caregiver_id, kind, start, slot_, status, count in session.execute(query, params)
    ]
    out += [
        Holding(provider_id, caregiver_id, kind, start, slot_, "pending", count)
        for provider_id, caregiver_id, kind, start, slot_, count in session.execute(pending, params)
    ]
    return out


_Statements = tuple[list[Select[Any]], Select[Any]]
_HOLDINGS_STATEMENTS: dict[tuple[str, bool, bool], _Statements] = {}


def _holdings_statements(dialect: str, some_providers: bool, exclude_offer: bool) -> _Statements:
    """load_holdings()'s statements, built once per shape with their values bound (`since`,
    `provider_ids`, `exclude_offer_id`): SQLAlchemy keeps a statement's cache key on the object,
    and building these anew each call cost the match worker ~5 % of its CPU in cache keys."""
    key = (dialect, some_providers, exclude_offer)
    if key not in _HOLDINGS_STATEMENTS:
        _HOLDINGS_STATEMENTS[key] = _build_holdings_statements(dialect, some_providers, exclude_offer)
    return _HOLDINGS_STATEMENTS[key]


def _build_holdings_statements(dialect: str, some_providers: bool, exclude_offer: bool) -> _Statements:
    r, p = ServiceRequest, Provider
    since = bindparam("since", type_=ServiceRequest.__table__.c.window_start.type)  # type: ignore[attr-defined]
    providers: BindParameter[Any] = bindparam("provider_ids", expanding=True)
    # Only a canteen's pools are per meal slot: the JSON is read for its holdings alone.
    json_slot = _json_text(dialect, f"{r.__tablename__}.details", "slot")
    slot: ColumnElement[Any] = literal_column(
        f"CASE WHEN {p.__tablename__}.kind = 'canteen' THEN {json_slot} END"
    )
    window = case((col(p.kind) == "home_care", None), else_=col(r.window_start))
    jobs = (
        select(
            r.provider_id,
            r.caregiver_id,
            r.kind,
            func.min(r.window_start),
            slot,
            r.status,
            func.count(),
        )  # type: ignore[call-overload]
        .join(p, col(p.id) == r.provider_id)
        .group_by(r.caregiver_id, r.provider_id, r.kind, slot, r.status, window)
    )
    open_jobs = col(r.status).in_(["assigned", "in_service"])
    # Written out, so that the partial index ix_request_completed_window can serve it.
    completed = col(r.status) == literal_column("'completed'")
    if some_providers:
        # A few providers: both kinds of job by seeks in ix_request_provider_status.
        recent = completed & (col(r.window_start) >= since)
        job_queries = [jobs.where(or_(open_jobs, recent), col(r.provider_id).in_(providers))]
    else:
        # Every provider: the open jobs by status, the recent completed ones by their window.
        # Without statistics SQLite takes the status index for an equality on status, and so
        # walked every request ever completed to keep the last two days' (migration 0008):
        # likelihood() tells it that most requests are completed.
        if dialect == "sqlite":
            completed = func.likelihood(completed, literal_column("0.9"))
        job_queries = [jobs.where(open_jobs), jobs.where(completed & (col(r.window_start) >= since))]
    # The pending offers are few, the offers ever made many: status = 'pending' is written out
    # so that SQLite may read them from the partial index uq_offer_one_pending (a bound value
    # cannot be proven to match its WHERE), and the groups do not lead with provider_id, for
    # which SQLite would rather walk every offer in ix_offer_provider_status to skip a sort.
    pending = (
        select(Offer.provider_id, Offer.caregiver_id, r.kind, func.min(r.window_start), slot, func.count())  # type: ignore[call-overload]
        .join(r, col(r.id) == Offer.request_id)
        .join(p, col(p.id) == Offer.provider_id)
        .where(col(Offer.status) == literal_column(f"'{OfferStatus.PENDING.value}'"))
        .group_by(Offer.caregiver_id, Offer.provider_id, r.kind, slot, window)
    )
    if some_providers:
        pending = pending.where(col(Offer.provider_id).in_(providers))
    if exclude_offer:
        pending = pending.where(col(Offer.id) != bindparam("exclude_offer_id"))
    return job_queries, pending


@dataclass
class _Known:
    read_at: float  # time.monotonic() of the full read
    holdings: list[Holding]


_KNOWN: weakref.WeakKeyDictionary[Engine, _Known] = weakref.WeakKeyDictionary()


def snapshot_holdings(session: Session, *, max_age_seconds: float) -> tuple[list[Holding], bool]:
    """The capacity in use for a matcher's snapshot, and whether it was read just now.

    Within `max_age_seconds` of this process's last full read, the holdings as it last knew
    them: that read, with each batch it applied since (`note_applied`: the capacity of the
    batch's providers as read under the write lock, and the offers it made). What others did
    since (an accept, a decline, an expiry, a cancellation, an operator's direct order) is not
    in it, so a snapshot decided on it may think a unit taken that came free, or free that was
    taken: the apply re-checks every offer against the capacity read under the lock, and the
    matcher reads afresh before it lets any verdict other than an offer stand
    (`needs_fresh_holdings`). What is left is a provider's load a second old in its score.
    The full read walks every open job of the district: 11-13 ms of a 50-request batch's
    ~15 ms snapshot with 5,000 open jobs (bench/match_cpu.py), and it grows with the jobs open."""
    engine = session.get_bind()
    known = _KNOWN.get(engine) if isinstance(engine, Engine) else None
    if known is not None and time.monotonic() - known.read_at < max_age_seconds:
        return list(known.holdings), False
    read_at = time.monotonic()
    holdings = load_holdings(session)
    if isinstance(engine, Engine):
        _KNOWN[engine] = _Known(read_at, holdings)
    return list(holdings), True


def note_applied(
    engine: Any, provider_ids: Collection[int], read: Collection[Holding], made: Collection[Holding]
) -> None:
    """A batch committed: its providers' holdings are now those read under the write lock plus
    the offers it made (kept only if a full read is known to this process)."""
    known = _KNOWN.get(engine) if isinstance(engine, Engine) else None
    if known is None or not provider_ids:
        return
    ids = set(provider_ids)
    known.holdings = [h for h in known.holdings if h.provider_id not in ids] + list(read) + list(made)


def known_age(engine: Any) -> float | None:
    """Seconds since this process last read every provider's capacity in use; None: unknown."""
    known = _KNOWN.get(engine) if isinstance(engine, Engine) else None
    return None if known is None else time.monotonic() - known.read_at


def forget_holdings(engine: Any) -> None:
    """The next snapshot reads the capacity in use afresh (an apply found some taken meanwhile)."""
    if isinstance(engine, Engine):
        _KNOWN.pop(engine, None)


def _json_text(dialect: str, column: str, key: str) -> str:
    """The JSON `column`'s `key` as text, written out in the SQL rather than bound as a
    parameter, so that PostgreSQL sees the same expression in SELECT and GROUP BY."""
    assert key.isidentifier()
    if dialect == "postgresql":
        return f"{column}->>'{key}'"
    return f"json_extract({column}, '$.{key}')"


def lock_providers(session: Session, provider_ids: Collection[int]) -> None:
    """Serialise capacity decisions per provider. SQLite already has one writer at a time;
    PostgreSQL locks the provider rows, in id order so that two lockers cannot deadlock.

    FOR NO KEY UPDATE, not FOR UPDATE: every row written that refers to a provider (an offer
    inserted, a request assigned) takes a KEY SHARE lock on it for its foreign key, which FOR
    UPDATE blocks. An accept batch holding the event-order lock then waited for the matcher's
    provider rows while the matcher waited for the event-order lock: a deadlock PostgreSQL
    broke by failing one of them (bench/drive.py on PostgreSQL, stop 20). Lockers still
    exclude each other."""
    if not provider_ids or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT id FROM provider WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE"),
        {"ids": sorted(provider_ids)},
    )
