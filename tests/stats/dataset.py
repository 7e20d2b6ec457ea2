"""A small fixed data set whose statistics are computed by hand in the tests.

Built through the real services (API: intake, manual dispatch, check-in/out, feedback, cancel;
the sweeper for the escalation), then moved onto a fixed week — Monday 2 to Sunday 8 November
2026, Asia/Shanghai — by setting the timestamps the services wrote. Seven requests:

| req | day   | elder (township, help) | kind      | provider | created | assigned | window      | check-in | out   | ends      | rating |
| r1  | 11-02 | e1 (静海镇, dibao, alone) | meal      | C1       | 09:00   | +30 s    | 11:00-12:30 | 11:10    | 11:40 | completed | 5 |
| r2  | 11-02 | e2 (静海镇, tekun)        | meal      | C1       | 10:00   | +90 s    | 11:00-12:30 | 11:15 far| 11:45 | completed, unverified | 2 |
| r3  | 11-03 | e1                        | home_care | H1       | 08:00   | +60 s    | 09:00-11:00 | 09:20    | 10:50 | completed | 4 |
| r4  | 11-03 | e2                        | home_care | H1       | 14:00   | +120 s   | 14:00-16:00 | 14:05    | 14:10 | not home: cancelled | - |
| r5  | 11-04 | e3 (独流镇, none)          | day_care  | D1       | 07:00   | +300 s   | 08:00-17:00 | 08:00    | 16:00 | completed | - |
| r6  | 11-05 | e4 (独流镇, low income)    | visit     | -        | 10:00   | -        | 10:00-12:00 | -        | -     | escalated (not placed in time) | - |
| r7  | 11-05 | e3                        | meal      | -        | 16:00   | -        | 17:00-18:30 | -        | -     | cancelled | - |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from dispatch.core.auth import Role
from dispatch.core.clock import LOCAL_TZ
from dispatch.core.db import session_scope
from dispatch.elders.models import Elder
from dispatch.orders import sweep
from dispatch.orders.models import ServiceRequest
from dispatch.visits.models import Feedback, Visit
from tests.helpers import ELDER, Api, make_user

FIRST, LAST = date(2026, 11, 2), date(2026, 11, 8)
PROVIDER = {"address": "", "skills": ["meal_delivery", "cleaning", "bathing"], "service_radius_km": 30.0}
C1 = {**PROVIDER, "name": "静海镇老人家食堂", "kind": "canteen", "township": "静海镇", "lat": 38.95, "lon": 116.975,
      "phone": "+8613610000001", "capacity": 10, "hours": {"open": "00:00", "close": "24:00"}}  # fmt: skip
H1 = {**PROVIDER, "name": "静海康乐居家养老服务社", "kind": "home_care", "township": "静海镇", "lat": 38.95,
      "lon": 116.97, "phone": "+8613620000001", "capacity": 2, "hours": {"open": "08:00", "close": "18:00"}}  # fmt: skip
D1 = {**PROVIDER, "name": "独流镇老年日间照料服务中心", "kind": "day_care", "township": "独流镇", "lat": 39.0,
      "lon": 116.93, "phone": "+8613600000009", "capacity": 5, "hours": {"open": "07:30", "close": "18:00"}}  # fmt: skip
ELDERS = {
    "e1": {**ELDER},
    "e2": {**ELDER, "name": "王桂兰", "phone": "+8613800000002", "lives_alone": False, "assistance": "tekun"},
    "e3": {
        **ELDER,
        "name": "李德明",
        "phone": "+8613800000003",
        "township": "独流镇",
        "lat": 39.005,
        "lon": 116.925,
        "lives_alone": False,
        "assistance": "none",
    },  # fmt: skip
    "e4": {
        **ELDER,
        "name": "赵淑珍",
        "phone": "+8613800000004",
        "township": "独流镇",
        "lat": 39.006,
        "lon": 116.926,
        "lives_alone": False,
        "assistance": "low_income",
    },  # fmt: skip
}


def at(day: int, hhmm: str, seconds: float = 0) -> datetime:
    hours, minutes = hhmm.split(":")
    return datetime(2026, 11, day, int(hours), int(minutes), tzinfo=LOCAL_TZ) + timedelta(seconds=seconds)


@dataclass
class Dataset:
    api: Api
    manager: str
    operator: str
    providers: dict[str, int]
    elders: dict[str, int]
    requests: dict[str, int]


def _request(
    api: Api, operator: str, elder: int, kind: str, window: tuple[datetime, datetime], **details: Any
) -> int:
    body: dict[str, Any] = {"elder_id": elder, "kind": kind, "window_start": window[0].isoformat(),
                            "window_end": window[1].isoformat()}  # fmt: skip
    if details:
        body["details"] = details
    return int(api.ok("POST", "/api/requests", operator, 202, json=body)["id"])


def _serve(api: Api, d: Dataset, rid: int, provider: str, *, far: bool = False, done: bool = True) -> None:
    """Manual dispatch, then the provider's phone checks in (and out) at the elder's door."""
    api.ok("POST", f"/api/requests/{rid}/assign", d.operator, json={"provider_id": d.providers[provider]})
    user = f"staff-{provider}"
    where = {"lat": ELDER["lat"] + (0.01 if far else 0.0), "lon": ELDER["lon"]}
    elder = api.ok("GET", f"/api/requests/{rid}", d.operator)["elder_id"]
    if elder in (d.elders["e3"], d.elders["e4"]):
        where = {"lat": ELDERS["e3"]["lat"], "lon": ELDERS["e3"]["lon"]}
    api.ok("POST", f"/api/requests/{rid}/check-in", user, json=where)
    if done:
        api.ok("POST", f"/api/requests/{rid}/check-out", user, json={**where, "summary": "完成"})


def _move(rid: int, *, created: datetime, assigned: float | None, window: tuple[datetime, datetime],
          visit: tuple[datetime, datetime] | None = None, verified: bool | None = None, outcome: str = "completed") -> None:  # fmt: skip
    """Put a request (and its visit and rating) on the fixed week."""
    closed = visit[1] if visit else created + timedelta(minutes=30)
    values: dict[str, Any] = {"created_at": created, "updated_at": closed, "due_at": created + timedelta(minutes=2),
                              "window_start": window[0], "window_end": window[1]}  # fmt: skip
    if assigned is not None:
        values["assigned_at"] = created + timedelta(seconds=assigned)
    with session_scope() as session:
        request = session.get(ServiceRequest, rid)
        assert request is not None
        if request.closed_at is not None:
            values["closed_at"] = closed
        session.execute(update(ServiceRequest).where(col(ServiceRequest.id) == rid).values(**values))
        if visit is not None:
            # The verification as it stands for these (moved) times: completed with no open flag.
            session.execute(update(Visit).where(col(Visit.request_id) == rid).values(
                check_in_at=visit[0], check_out_at=visit[1], created_at=visit[0], check_in_device_at=visit[0],
                check_out_device_at=visit[1], outcome=outcome, verified=bool(verified)))  # fmt: skip
        session.execute(
            update(Feedback)
            .where(col(Feedback.request_id) == rid)
            .values(created_at=closed + timedelta(hours=1))
        )


def build(api: Api) -> Dataset:
    manager, operator = make_user(Role.MANAGER), make_user(Role.OPERATOR)
    providers = {}
    for key, body in (("C1", C1), ("H1", H1), ("D1", D1)):
        providers[key] = api.ok("POST", "/api/providers", manager, 201, json=body)["id"]
        make_user(Role.PROVIDER, username=f"staff-{key}", provider_id=providers[key])
    elders = {
        key: api.ok("POST", "/api/elders", operator, 201, json=body)["id"] for key, body in ELDERS.items()
    }
    d = Dataset(api, manager, operator, providers, elders, {})
    e1, e2, e3, e4 = (elders[k] for k in ("e1", "e2", "e3", "e4"))
    lunch = (at(2, "11:00"), at(2, "12:30"))
    r = d.requests
    r["r1"] = _request(api, operator, e1, "meal", lunch, slot="lunch", delivery=False)
    r["r2"] = _request(api, operator, e2, "meal", lunch, slot="lunch", delivery=False)
    r["r3"] = _request(api, operator, e1, "home_care", (at(3, "09:00"), at(3, "11:00")), skills=["cleaning"])
    r["r4"] = _request(api, operator, e2, "home_care", (at(3, "14:00"), at(3, "16:00")), skills=["cleaning"])
    r["r5"] = _request(api, operator, e3, "day_care", (at(4, "08:00"), at(4, "17:00")))
    r["r6"] = _request(api, operator, e4, "visit", (at(5, "10:00"), at(5, "12:00")))
    r["r7"] = _request(api, operator, e3, "meal", (at(5, "17:00"), at(5, "18:30")), slot="dinner")
    _serve(api, d, r["r1"], "C1")
    _serve(api, d, r["r2"], "C1", far=True)
    _serve(api, d, r["r3"], "H1")
    _serve(api, d, r["r4"], "H1", done=False)  # nobody opened the door: issue 4's check-out cancels it
    api.ok("POST", f"/api/requests/{r['r4']}/cancel", operator, json={"reason": "not_home"})
    _serve(api, d, r["r5"], "D1")
    api.ok("POST", f"/api/requests/{r['r7']}/cancel", operator, json={"reason": "家属取消"})
    for key, rating in (("r1", 5), ("r2", 2), ("r3", 4)):
        api.ok("POST", f"/api/requests/{r[key]}/feedback", operator, 201, json={"rating": rating})
    with session_scope() as session:  # r6: nobody was found in time; the sweeper escalates it
        session.execute(
            update(ServiceRequest).where(col(ServiceRequest.id) == r["r6"]).values(due_at=at(5, "10:02"))
        )
        assert sweep.escalate_overdue(session) == 1
        session.execute(update(Elder).values(created_at=datetime(2026, 10, 1, tzinfo=LOCAL_TZ)))
    _move(
        r["r1"],
        created=at(2, "09:00"),
        assigned=30,
        window=lunch,
        visit=(at(2, "11:10"), at(2, "11:40")),
        verified=True,
    )
    _move(
        r["r2"],
        created=at(2, "10:00"),
        assigned=90,
        window=lunch,
        visit=(at(2, "11:15"), at(2, "11:45")),
        verified=False,
    )
    _move(r["r3"], created=at(3, "08:00"), assigned=60, window=(at(3, "09:00"), at(3, "11:00")),
          visit=(at(3, "09:20"), at(3, "10:50")), verified=True)  # fmt: skip
    _move(r["r4"], created=at(3, "14:00"), assigned=120, window=(at(3, "14:00"), at(3, "16:00")),
          visit=(at(3, "14:05"), at(3, "14:10")), verified=False, outcome="not_home")  # fmt: skip
    _move(r["r5"], created=at(4, "07:00"), assigned=300, window=(at(4, "08:00"), at(4, "17:00")),
          visit=(at(4, "08:00"), at(4, "16:00")), verified=True)  # fmt: skip
    _move(r["r6"], created=at(5, "10:00"), assigned=None, window=(at(5, "10:00"), at(5, "12:00")))
    _move(r["r7"], created=at(5, "16:00"), assigned=None, window=(at(5, "17:00"), at(5, "18:30")))
    return d
