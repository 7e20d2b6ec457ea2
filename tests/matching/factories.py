"""Plain-data districts for the pure matching tests: providers, caregivers, requests."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from dispatch.core.clock import LOCAL_TZ
from dispatch.matching.core import CaregiverInfo, Holding, ProviderInfo, RequestInfo

_ids = itertools.count(1)
# Monday 2 March 2026, local time: lunch at 11:00, the working day from 08:00.
DAY = datetime(2026, 3, 2, tzinfo=LOCAL_TZ)
HOME = (38.947, 116.974)  # the elder's home, 静海镇
KM_LAT = 1 / 111.0  # one km north, in degrees of latitude


def at(hour: float, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hour)


def provider(
    kind: str = "home_care",
    *,
    north_km: float = 1.0,
    capacity: int = 5,
    radius: float = 10.0,
    skills: tuple[str, ...] = ("bathing", "cleaning", "nursing", "meal_delivery"),
    hours: tuple[str, str] = ("00:00", "24:00"),
    caregivers: tuple[CaregiverInfo, ...] = (),
    pid: int | None = None,
    **extra: object,
) -> ProviderInfo:
    return ProviderInfo(
        id=pid or next(_ids),
        kind=kind,
        lat=HOME[0] + north_km * KM_LAT,
        lon=HOME[1],
        capacity=capacity,
        service_radius_km=radius,
        skills=frozenset(skills),
        open_time=hours[0],
        close_time=hours[1],
        caregivers=caregivers,
        **extra,  # type: ignore[arg-type]
    )


def caregiver(
    *skills: str, shift: tuple[str, str] | None = None, max_jobs: int = 3, cid: int | None = None
) -> CaregiverInfo:
    return CaregiverInfo(
        id=cid or next(_ids),
        skills=frozenset(skills),
        shift_start=shift[0] if shift else None,
        shift_end=shift[1] if shift else None,
        max_jobs=max_jobs,
    )


def request(
    kind: str = "home_care",
    *,
    north_km: float = 0.0,
    start: float = 9.0,
    hours: float = 2.0,
    day: int = 0,
    priority: str = "normal",
    skills: tuple[str, ...] = (),
    rid: int | None = None,
    **extra: object,
) -> RequestInfo:
    rid = rid or next(_ids)
    return RequestInfo(
        id=rid,
        version=0,
        kind=kind,
        priority=priority,
        created_at=at(7, day) + timedelta(seconds=rid),
        lat=HOME[0] + north_km * KM_LAT,
        lon=HOME[1],
        window_start=at(start, day),
        window_end=at(start + hours, day),
        skills=frozenset(skills),
        **extra,  # type: ignore[arg-type]
    )


def meal(slot: str = "lunch", *, delivery: bool = False, **extra: object) -> RequestInfo:
    start = 11.0 if slot == "lunch" else 17.0
    return request("meal", start=start, hours=1.5, slot=slot, delivery=delivery, **extra)  # type: ignore[arg-type]


def held(
    p: ProviderInfo, r: RequestInfo, status: str = "assigned", caregiver_id: int | None = None
) -> Holding:
    return Holding(p.id, caregiver_id, r.kind, r.window_start, r.slot, status)
