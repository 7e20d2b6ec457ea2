"""The rules of electronic visit verification, as pure functions over plain values: where a
visit must happen, and which facts flag it for an operator. A flag never refuses a check-in or
check-out (the caregiver at the door must always be able to record what happened); it keeps
the visit out of `verified` until an operator has looked at it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dispatch.core.config import Settings
from dispatch.core.geo import haversine_km
from dispatch.visits.models import CorrectionDecision, VisitFlag, VisitOutcome, VisitPlace, VisitReview

FLAG_ORDER = (VisitFlag.LOCATION_MISMATCH, VisitFlag.CLOCK_SKEW, VisitFlag.TOO_SHORT)


@dataclass(frozen=True)
class Place:
    kind: VisitPlace
    lat: float
    lon: float

    def distance_m(self, lat: float, lon: float) -> float:
        return round(haversine_km(self.lat, self.lon, lat, lon) * 1000, 1)


@dataclass(frozen=True)
class Limits:
    max_distance_m: float
    max_clock_skew: timedelta
    min_minutes: Mapping[str, int]

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        kinds = ("meal", "day_care", "home_care", "visit", "emergency")
        return cls(
            max_distance_m=settings.evv_max_distance_m,
            max_clock_skew=timedelta(seconds=settings.evv_max_clock_skew_seconds),
            min_minutes={k: int(getattr(settings, f"evv_min_minutes_{k}")) for k in kinds},
        )


def place_kind(kind: str, details: Mapping[str, Any]) -> VisitPlace:
    """Day care happens at the center, and a meal not delivered is eaten in the canteen; every
    other service (home care, visits, emergencies, delivered meals) at the elder's home."""
    if kind == "day_care":
        return VisitPlace.PROVIDER_SITE
    if kind == "meal" and not details.get("delivery"):
        return VisitPlace.PROVIDER_SITE
    return VisitPlace.ELDER_HOME


def place_for(
    kind: str, details: Mapping[str, Any], *, home: tuple[float, float], site: tuple[float, float]
) -> Place:
    where = place_kind(kind, details)
    lat, lon = home if where == VisitPlace.ELDER_HOME else site
    return Place(where, lat, lon)


def skew(device_at: datetime | None, server_at: datetime) -> timedelta | None:
    """How far the phone's clock was from the server's (None when the phone sent no time)."""
    return None if device_at is None else device_at - server_at


@dataclass(frozen=True)
class Facts:
    """What the visit recorded, as far as it got."""

    kind: str
    outcome: str
    check_in_at: datetime
    check_in_distance_m: float
    check_in_device_at: datetime | None
    check_out_at: datetime | None = None
    check_out_distance_m: float | None = None
    check_out_device_at: datetime | None = None


def flags_for(facts: Facts, limits: Limits) -> list[str]:
    """Every flag the facts raise, in a stable order."""
    raised: set[VisitFlag] = set()
    distances = [facts.check_in_distance_m, facts.check_out_distance_m]
    if any(d is not None and d > limits.max_distance_m for d in distances):
        raised.add(VisitFlag.LOCATION_MISMATCH)
    skews = [skew(facts.check_in_device_at, facts.check_in_at)]
    if facts.check_out_at is not None:
        skews.append(skew(facts.check_out_device_at, facts.check_out_at))
    if any(s is not None and abs(s) > limits.max_clock_skew for s in skews):
        raised.add(VisitFlag.CLOCK_SKEW)
    # Only a service that happened can be too short; a door nobody opened is over quickly.
    minimum = timedelta(minutes=limits.min_minutes.get(facts.kind, 0))
    served = facts.outcome == VisitOutcome.COMPLETED and facts.check_out_at is not None
    if served and minimum and facts.check_out_at - facts.check_in_at < minimum:  # type: ignore[operator]
        raised.add(VisitFlag.TOO_SHORT)
    return [f.value for f in FLAG_ORDER if f in raised]


def review_of(flags: Sequence[str], decision: str | None) -> VisitReview:
    """clean (no flag), open (flagged, not yet reviewed), or the latest correction's decision."""
    if decision == CorrectionDecision.APPROVE:
        return VisitReview.APPROVED
    if decision == CorrectionDecision.REJECT:
        return VisitReview.REJECTED
    return VisitReview.OPEN if flags else VisitReview.CLEAN


def is_verified(outcome: str, review: VisitReview, *, closed: bool) -> bool:
    """What the subsidy ledger draws on: a completed visit with no open flag (clean), or one an
    operator approved. A visit that could not happen, or was rejected, is never verified."""
    if not closed or outcome != VisitOutcome.COMPLETED:
        return False
    return review in (VisitReview.CLEAN, VisitReview.APPROVED)
