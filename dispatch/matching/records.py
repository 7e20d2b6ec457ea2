"""Providers' records, read in a few grouped queries for every provider at once (never one
query per provider), and kept for `MATCH_RECORD_CACHE_SECONDS`: a record moves slowly, and a
batch matcher running every second need not read 90 days of offers each time.

What is counted:
- acceptance rate: of the matcher's offers (not manual dispatches) answered in the last
  RECORD_DAYS days, the share accepted; an offer withdrawn (the request was cancelled or
  placed elsewhere) is no answer and does not count;
- completion rate: of the jobs it was bound to whose window lies in the last RECORD_DAYS days
  and is over, the share completed (a job completed with a visit outcome other than
  `completed` — elder not home, refused, in hospital — is not counted either way), against
  the completed plus the no-shows;
- average rating: of families' and operators' feedback (1-5) in the last RATING_DAYS days;
- recent no-shows: see NO_SHOW below, in the last NO_SHOW_DAYS days.

NO_SHOW — a job the provider was bound to (the request assigned to it) for a service at the
elder's door (home care, a visit, an emergency, a delivered meal), whose window ended more than
NO_SHOW_GRACE ago without a check-in (no visit record), and that was not cancelled before its
window began (a cancellation during or after the window, once the elder waited, still counts).
Dine-in meals and day care are not counted: there the elder comes to the provider.

Each rate is smoothed towards a prior (scoring.smoothed) so that one early refusal does not
brand a new provider.
"""

from __future__ import annotations

import time
import weakref
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import Engine, and_, func, or_
from sqlmodel import Session, col, select

from dispatch.core.clock import utcnow
from dispatch.matching.scoring import (
    PRIOR_ACCEPTANCE,
    PRIOR_COMPLETION,
    PRIOR_RATING,
    ProviderRecord,
    smoothed,
)
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from dispatch.visits.models import Feedback, Visit

RECORD_DAYS = 90
RATING_DAYS = 180
NO_SHOW_DAYS = 30
NO_SHOW_GRACE = timedelta(minutes=30)
AT_THE_DOOR = ("home_care", "visit", "emergency")

_CACHE: weakref.WeakKeyDictionary[Engine, tuple[float, dict[int, ProviderRecord]]] = (
    weakref.WeakKeyDictionary()
)


def load_records(session: Session, *, max_age_seconds: float = 0.0) -> dict[int, ProviderRecord]:
    """Every provider's record (providers with no history are left out: they get the priors).
    Cached per database engine for `max_age_seconds`."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    cached = _CACHE.get(engine)
    if cached is not None and time.monotonic() - cached[0] < max_age_seconds:
        return cached[1]
    records = compute_records(session)
    _CACHE[engine] = (time.monotonic(), records)
    return records


def compute_records(session: Session) -> dict[int, ProviderRecord]:
    now = utcnow()
    answers = _answers(session, now - timedelta(days=RECORD_DAYS))
    completed = _completed(session, now - timedelta(days=RECORD_DAYS), now)
    no_shows_long = no_shows(session, since=now - timedelta(days=RECORD_DAYS), now=now)
    no_shows_recent = no_shows(session, since=now - timedelta(days=NO_SHOW_DAYS), now=now)
    ratings = _ratings(session, now - timedelta(days=RATING_DAYS))
    out: dict[int, ProviderRecord] = {}
    for pid in set(answers) | set(completed) | set(no_shows_long) | set(ratings):
        accepted, answered = answers.get(pid, (0, 0))
        done, missed = completed.get(pid, 0), no_shows_long.get(pid, 0)
        total, count = ratings.get(pid, (0.0, 0))
        out[pid] = ProviderRecord(
            acceptance_rate=round(smoothed(accepted, answered, PRIOR_ACCEPTANCE), 4),
            completion_rate=round(smoothed(done, done + missed, PRIOR_COMPLETION), 4),
            rating=round(smoothed(total, count, PRIOR_RATING), 3),
            no_shows=no_shows_recent.get(pid, 0),
        )
    return out


def _answers(session: Session, since: object) -> dict[int, tuple[int, int]]:
    rows = session.exec(
        select(Offer.provider_id, Offer.status, func.count())
        .where(
            col(Offer.manual).is_(False),
            col(Offer.created_at) >= since,
            col(Offer.status).in_([OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.EXPIRED]),
        )
        .group_by(col(Offer.provider_id), col(Offer.status))
    ).all()
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for pid, status, n in rows:
        out[pid][1] += n
        if status == OfferStatus.ACCEPTED:
            out[pid][0] += n
    return {pid: (a, b) for pid, (a, b) in out.items()}


def _completed(session: Session, since: object, now: object) -> dict[int, int]:
    rows = session.exec(
        select(ServiceRequest.provider_id, func.count())
        .outerjoin(Visit, col(Visit.request_id) == ServiceRequest.id)
        .where(
            col(ServiceRequest.status) == "completed",
            col(ServiceRequest.window_start) >= since,
            or_(col(Visit.id).is_(None), col(Visit.outcome) == "completed"),
        )
        .group_by(col(ServiceRequest.provider_id))
    ).all()
    return {pid: n for pid, n in rows if pid is not None}


def no_shows(session: Session, *, since: object, now: object) -> dict[int, int]:
    """No-shows per provider (see NO_SHOW in the module docstring)."""
    due = now - NO_SHOW_GRACE  # type: ignore[operator]
    at_door = or_(
        col(ServiceRequest.kind).in_(AT_THE_DOOR),
        and_(col(ServiceRequest.kind) == "meal", ServiceRequest.details["delivery"].as_boolean().is_(True)),  # type: ignore[index]
    )
    rows = session.exec(
        select(ServiceRequest.provider_id, func.count())
        .outerjoin(Visit, col(Visit.request_id) == ServiceRequest.id)
        .where(
            col(ServiceRequest.provider_id).is_not(None),
            col(ServiceRequest.window_end) >= since,
            col(ServiceRequest.window_end) < due,
            col(Visit.id).is_(None),
            at_door,
            or_(
                col(ServiceRequest.status) == "assigned",
                and_(
                    col(ServiceRequest.status) == "cancelled",
                    col(ServiceRequest.closed_at) >= col(ServiceRequest.window_start),
                ),
            ),
        )
        .group_by(col(ServiceRequest.provider_id))
    ).all()
    return {pid: n for pid, n in rows if pid is not None}


def _ratings(session: Session, since: object) -> dict[int, tuple[float, int]]:
    rows = session.exec(
        select(Feedback.provider_id, func.sum(Feedback.rating), func.count())
        .where(col(Feedback.provider_id).is_not(None), col(Feedback.created_at) >= since)
        .group_by(col(Feedback.provider_id))
    ).all()
    return {pid: (float(total or 0), n) for pid, total, n in rows if pid is not None}
