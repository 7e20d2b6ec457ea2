"""A year (or any number of days) of synthetic service history for the demo district, so that the
manager page has something to show: plans and their occurrences, requests with their dispatch
times, visit records (a few flagged or failed), ratings and welfare checks.

Deterministic (seeded random), fast (bulk inserts, one transaction per day), and run once: a
second run finds the history account's requests and adds nothing. Every request it writes is
terminal (completed or cancelled), written without events, and the history ends two days
before today, so that the operators' live board (which replays the last 24-72 hours) never
meets a request without a timeline.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Table, func, insert, select, text, update
from sqlmodel import Session

from dispatch.core.auth import Role, User
from dispatch.core.clock import LOCAL_TZ, local, utcnow
from dispatch.elders.models import Elder
from dispatch.orders.models import ServiceRequest
from dispatch.plans.calendar import MEAL_SLOTS, PlanRule, clock, occurs_on
from dispatch.plans.models import PlanOccurrence, PlanStatus, ServicePlan
from dispatch.stats import rollup
from dispatch.stats.rollup import ranges
from dispatch.visits.models import Feedback, Visit
from dispatch.welfare.models import WelfareCheck
from services.models import Caregiver, Provider

SEED = 20261205
HISTORY_USERNAME = "demo-history"
GAP_DAYS = 2  # the history ends this many days before today
ACTIVE_PLANS = 12  # plans left running after the history, so the live demo schedules something
R: Table = ServiceRequest.__table__  # type: ignore[attr-defined]
V: Table = Visit.__table__  # type: ignore[attr-defined]
F: Table = Feedback.__table__  # type: ignore[attr-defined]
O: Table = PlanOccurrence.__table__  # type: ignore[attr-defined]  # noqa: E741
W: Table = WelfareCheck.__table__  # type: ignore[attr-defined]
PL: Table = ServicePlan.__table__  # type: ignore[attr-defined]
EL: Table = Elder.__table__  # type: ignore[attr-defined]
PR: Table = Provider.__table__  # type: ignore[attr-defined]
CG: Table = Caregiver.__table__  # type: ignore[attr-defined]
# Townships where providers answer slowly and more requests go to the operators.
HARD_TOWNSHIPS = {"梁头镇": 0.14, "王口镇": 0.09, "台头镇": 0.08}
FAILED = (("not_home", 0.012), ("refused", 0.004), ("in_hospital", 0.004))
RATINGS = (1, 2, 3, 4, 5)
RATING_WEIGHTS = (2, 3, 10, 35, 50)
Progress = Callable[[str, int, int], None]


@dataclass
class HistoryReport:
    days: int = 0
    plans: int = 0
    requests: int = 0
    visits: int = 0
    ratings: int = 0
    welfare_checks: int = 0
    skipped: bool = False


@dataclass
class World:
    elders: list[Any]
    canteens: dict[str, list[Any]]
    day_care: dict[str, list[Any]]
    home_care: list[Any]
    caregivers: dict[int, list[int]]
    user_id: int
    lapsed: dict[int, date] = field(default_factory=dict)  # elder -> no service after this day
    deceased: dict[int, date] = field(default_factory=dict)
    by_id: dict[int, Any] = field(default_factory=dict)
    near: dict[int, list[Any]] = field(default_factory=dict)

    def stopped(self, elder_id: int, day: date) -> bool:
        """No service on `day`: the elder fell behind (lapsed) or died before."""
        lapsed, died = self.lapsed.get(elder_id), self.deceased.get(elder_id)
        return (lapsed is not None and day > lapsed) or (died is not None and day >= died)


def _at(day: date, hhmm: str, minutes: float = 0.0) -> datetime:
    return datetime.combine(day, clock(hhmm), LOCAL_TZ) + timedelta(minutes=minutes)


def _history_user(session: Session) -> int:
    user = session.scalars(select(User).where(User.username == HISTORY_USERNAME)).first()  # type: ignore[arg-type]
    if user is None:
        user = User(username=HISTORY_USERNAME, password_hash="!no-sign-in", role=Role.OPERATOR,
                    display_name="演示历史数据", active=False)  # fmt: skip
        session.add(user)
        session.flush()
    assert user.id is not None
    return user.id


def _world(session: Session, rng: random.Random, first: date) -> World:
    elders = list(session.execute(select(EL).order_by(EL.c.id)).all())
    providers = list(session.execute(select(PR).where(PR.c.active).order_by(PR.c.id)).all())
    canteens: dict[str, list[Any]] = {}
    day_care: dict[str, list[Any]] = {}
    for p in providers:
        if p.kind == "canteen":
            canteens.setdefault(p.township, []).append(p)
        elif p.kind == "day_care":
            day_care.setdefault(p.township, []).append(p)
    caregivers: dict[int, list[int]] = {}
    for cid, pid in session.execute(select(CG.c.id, CG.c.provider_id).order_by(CG.c.id)).all():
        caregivers.setdefault(pid, []).append(cid)
    # Most townships use three or four of their day-care centers; a few use none (an indicator
    # the bureau watches).
    idle = set(rng.sample(sorted(day_care), k=min(3, len(day_care))))
    day_care = {t: rng.sample(c, k=min(4, len(c))) for t, c in day_care.items() if t not in idle}
    world = World(elders, canteens, day_care, [p for p in providers if p.kind == "home_care"], caregivers,
                  _history_user(session))  # fmt: skip
    last = local(utcnow()).date() - timedelta(days=GAP_DAYS)
    for e in elders:
        world.by_id[e.id] = e
        if (e.lives_alone or e.assistance == "tekun") and rng.random() < 0.05:
            # Fell behind their rhythm lately: the overdue list and the welfare guarantee show them.
            world.lapsed[e.id] = last - timedelta(days=rng.randint(6, 28))
        elif e.deceased_on is None and rng.random() < 0.004:
            world.deceased[e.id] = first + timedelta(days=rng.randint(30, max(31, (last - first).days)))
    for elder_id, died in world.deceased.items():
        session.execute(update(EL).where(EL.c.id == elder_id).values(deceased_on=died))
    # The demo's elders have been registered since before the history begins.
    registered = _at(first - timedelta(days=30), "09:00")
    session.execute(update(EL).where(EL.c.created_at > registered).values(created_at=registered))
    return world


def _plans(session: Session, rng: random.Random, world: World, first: date, last: date) -> list[Any]:
    """Regular services: weekday lunches, weekly home care, day care, visits for those living alone."""
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for e in world.elders:
        base = {"elder_id": e.id, "starts_on": first + timedelta(days=rng.randint(0, 20)), "ends_on": last,
                "status": PlanStatus.ENDED, "status_reason": "演示历史", "note": "", "created_by": world.user_id,
                "created_at": now, "updated_at": now, "every_days": None}  # fmt: skip
        if e.lives_alone or e.assistance == "tekun":
            # Phased so that the last visit of the history is at most three days before its end:
            # the live demo starts with these elders on rhythm.
            phase = rng.randint(0, 3)
            starts = last - timedelta(days=7 * (((last - first).days - phase) // 7) + phase)
            rows.append({**base, "kind": "visit", "weekdays": [], "every_days": 7, "details": {}, "starts_on": starts,
                         "start_time": "09:00", "end_time": "11:00"})  # fmt: skip
        if rng.random() < 0.12 and e.township in world.canteens:
            slot = "lunch" if rng.random() < 0.85 else "dinner"
            rows.append({**base, "kind": "meal", "weekdays": [1, 2, 3, 4, 5] if rng.random() < 0.8 else list(range(1, 8)),
                         "details": {"slot": slot, "delivery": e.care_level != "self_care"},
                         "start_time": MEAL_SLOTS[slot][0], "end_time": MEAL_SLOTS[slot][1]})  # fmt: skip
        if rng.random() < 0.05:
            skills = {"self_care": ["cleaning"], "partial": ["bathing"], "full": ["bathing", "nursing"]}[
                e.care_level
            ]
            start = rng.choice(("09:00", "14:00"))
            rows.append({**base, "kind": "home_care", "weekdays": sorted(rng.sample(range(1, 8), 2)),
                         "details": {"skills": skills}, "start_time": start, "end_time": f"{int(start[:2]) + 2:02d}:00"})  # fmt: skip
        if rng.random() < 0.05 and e.care_level != "full" and e.township in world.day_care:
            rows.append({**base, "kind": "day_care", "weekdays": [1, 3, 5], "details": {},
                         "start_time": "08:00", "end_time": "17:00"})  # fmt: skip
    for row in rows:
        died = world.deceased.get(row["elder_id"])
        if died is not None:
            row.update(ends_on=max(row["starts_on"], died), status_reason="deceased")
    living = [r for r in rows if r["elder_id"] not in world.deceased and r["elder_id"] not in world.lapsed]
    for row in rng.sample(living, k=min(ACTIVE_PLANS, len(living))):
        row.update(status=PlanStatus.ACTIVE, status_reason="", ends_on=None)
    ids = session.execute(insert(PL).returning(PL.c.id, sort_by_parameter_order=True), rows).scalars().all()
    for row, pid in zip(rows, ids, strict=True):
        row["id"] = pid
    return rows


def _provider_for(rng: random.Random, world: World, e: Any, kind: str) -> tuple[Any, int | None]:
    if kind == "meal":
        options = world.canteens.get(e.township) or [p for c in world.canteens.values() for p in c]
        return rng.choice(options), None
    if kind == "day_care":
        options = world.day_care.get(e.township) or [p for c in world.day_care.values() for p in c]
        return rng.choice(options), None
    near = world.near.get(e.id)
    if near is None:  # the four nearest home-care providers, once per elder
        near = world.near[e.id] = sorted(
            world.home_care, key=lambda p: (p.lat - e.lat) ** 2 + (p.lon - e.lon) ** 2
        )[:4]
    provider = rng.choice(near)
    staff = world.caregivers.get(provider.id)
    return provider, rng.choice(staff) if staff else None


DURATION_MIN = {
    "meal": (5, 20),
    "day_care": (300, 480),
    "home_care": (60, 120),
    "visit": (20, 45),
    "emergency": (30, 90),
}


def _request(rng: random.Random, world: World, e: Any, kind: str, *, channel: str,
             window: tuple[datetime, datetime], created: datetime, details: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """One terminal request with its (optional) visit, rating and welfare check, as rows."""
    escalate = rng.random() < 0.035 + HARD_TOWNSHIPS.get(e.township, 0.0)
    assign_s = min(rng.lognormvariate(math.log(40), 0.9), 1500.0)
    reason = None
    if escalate:
        reason = rng.choices(("all_declined", "not_placed_in_time", "no_provider_in_range"), (5, 4, 1))[0]
        assign_s = rng.uniform(180, 2400)
    row: dict[str, Any] = {
        "elder_id": e.id, "kind": kind, "priority": "urgent" if kind == "emergency" else "normal",
        "channel": channel, "version": 4, "details": details, "window_start": window[0], "window_end": window[1],
        "note": "", "township": e.township, "created_by": world.user_id, "escalation_reason": reason,
        "due_at": created + timedelta(seconds=30 if kind == "emergency" else 120), "created_at": created,
        "provider_id": None, "caregiver_id": None, "assigned_at": None,
    }  # fmt: skip
    if rng.random() < (0.25 if escalate else 0.025):  # cancelled by the family before anyone came
        closed = created + timedelta(seconds=assign_s * 0.8)
        return {**row, "status": "cancelled", "updated_at": closed, "closed_at": closed}
    provider, caregiver = _provider_for(rng, world, e, kind)
    assigned = created + timedelta(seconds=assign_s)
    row.update(provider_id=provider.id, caregiver_id=caregiver, assigned_at=assigned)
    lo, hi = DURATION_MIN[kind]
    start = max(window[0], assigned) + timedelta(
        minutes=rng.uniform(-5, 35) if kind != "emergency" else rng.uniform(8, 40)
    )
    end = start + timedelta(minutes=rng.uniform(lo, hi))
    outcome = "completed"
    if kind in ("home_care", "visit", "meal"):
        for name, p in FAILED:
            if rng.random() < p:
                outcome, end = name, start + timedelta(minutes=rng.uniform(3, 10))
                break
    flagged = outcome == "completed" and rng.random() < 0.03
    far = 420.0 if flagged else rng.uniform(5, 120)
    row.update(status="completed" if outcome == "completed" else "cancelled", updated_at=end, closed_at=end)
    on_site = kind == "day_care" or (kind == "meal" and not details.get("delivery"))
    lat, lon = (provider.lat, provider.lon) if on_site else (e.lat, e.lon)
    row["_visit"] = {
        "elder_id": e.id, "provider_id": provider.id, "caregiver_id": caregiver, "kind": kind,
        "check_in_at": start, "check_in_lat": lat, "check_in_lon": lon, "check_in_distance_m": far,
        "check_out_at": end, "check_out_lat": lat, "check_out_lon": lon, "check_out_distance_m": far,
        "summary": "", "flags": ["location_mismatch"] if flagged else [], "check_in_device_at": start,
        "check_out_device_at": end, "outcome": outcome,
        "verified": outcome == "completed" and (not flagged or rng.random() < 0.6), "created_at": start,
    }  # fmt: skip
    if outcome == "completed" and rng.random() < 0.25:
        weights = RATING_WEIGHTS if provider.id % 17 else (10, 15, 25, 30, 20)  # a few providers do worse
        row["_rating"] = rng.choices(RATINGS, weights)[0]
    if outcome != "completed":
        row["_welfare"] = f"failed_visit:{outcome}"
    return row


def _day_requests(rng: random.Random, world: World, plans: list[Any], day: date) -> list[dict[str, Any]]:
    rows = []
    for plan in plans:
        rule = PlanRule(plan["kind"], tuple(plan["weekdays"]), plan["every_days"], plan["start_time"],
                        plan["end_time"], plan["starts_on"], plan["ends_on"])  # fmt: skip
        e = world.by_id[plan["elder_id"]]
        if not occurs_on(rule, day) or world.stopped(e.id, day):
            continue
        window = (_at(day, plan["start_time"]), _at(day, plan["end_time"]))
        created = window[0] - timedelta(hours=rng.uniform(18, 24))
        booked = {**plan["details"], "plan_id": plan["id"], "occurs_on": day.isoformat()}
        row = _request(
            rng, world, e, plan["kind"], channel="scheduled", window=window, created=created, details=booked
        )
        row["_plan"] = (plan["id"], day)
        rows.append(row)
    return rows + _walk_ins(rng, world, day)


def _walk_ins(rng: random.Random, world: World, day: date) -> list[dict[str, Any]]:
    """The day's calls and app requests: fewer at weekends, more in winter."""
    rows = []
    weekend = day.isoweekday() >= 6
    winter = 1.0 + 0.25 * math.cos((day.timetuple().tm_yday - 15) / 365 * 2 * math.pi)
    for _ in range(int(rng.gauss(22 if weekend else 38, 5) * winter)):
        e = rng.choice(world.elders)
        if world.stopped(e.id, day):
            continue
        kind = rng.choices(("home_care", "meal", "day_care", "visit", "emergency"), (38, 30, 14, 12, 6))[0]
        if kind == "day_care" and e.township not in world.day_care:
            kind = "home_care"
        hour = min(19.5, max(7.0, rng.gauss(10.5 if rng.random() < 0.6 else 15.0, 1.6)))
        created = _at(day, "00:00", hour * 60)
        asked: dict[str, Any] = {}
        if kind == "meal":
            slot = "lunch" if hour < 13 else "dinner"
            asked = {"slot": slot, "delivery": e.care_level != "self_care"}
            window = (_at(day, MEAL_SLOTS[slot][0]), _at(day, MEAL_SLOTS[slot][1]))
            created = min(created, window[0] - timedelta(minutes=30))
        elif kind == "day_care":
            window = (_at(day, "08:00"), _at(day, "17:00"))
            created = min(created, window[0] - timedelta(hours=1))
        else:
            window = (created, created + timedelta(minutes=30 if kind == "emergency" else 120))
        channel = rng.choices(("hotline", "app", "ivr"), (60, 25, 15))[0]
        rows.append(
            _request(rng, world, e, kind, channel=channel, window=window, created=created, details=asked)
        )
    return rows


class _Ids:
    """Request ids handed out here, so that a day's visits, ratings and checks can refer to them
    without a round trip per row (the write lock, or LOCK TABLE on PostgreSQL, keeps them ours)."""

    def __init__(self, session: Session) -> None:
        if _dialect(session) == "postgresql":
            session.execute(text("LOCK TABLE service_request IN SHARE ROW EXCLUSIVE MODE"))
        self.next = int(session.execute(select(func.max(R.c.id))).scalar() or 0) + 1

    def take(self) -> int:
        self.next += 1
        return self.next - 1


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _bulk(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """One executemany straight to the driver: values are converted here once, instead of by
    every column type for every row (what made the ORM path take minutes for a year)."""
    if not rows:
        return
    pg = _dialect(session) == "postgresql"
    columns = list(rows[0])
    json_columns = {c.name for c in table.c if isinstance(c.type, JSON)}

    def value(v: Any) -> Any:
        if isinstance(v, datetime):  # SQLite: the naive UTC text UTCDateTime stores
            return v.astimezone(UTC) if pg else v.astimezone(UTC).isoformat(" ", "microseconds")[:26]
        if isinstance(v, date):
            return v if pg else v.isoformat()
        if isinstance(v, dict | list):
            return json.dumps(v)
        return v

    mark = "%s" if pg else "?"
    marks = ", ".join(f"CAST({mark} AS JSON)" if pg and c in json_columns else mark for c in columns)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
    session.connection().exec_driver_sql(sql, [tuple(value(r.get(c)) for c in columns) for r in rows])


def _insert_day(session: Session, world: World, rows: list[dict[str, Any]], report: HistoryReport) -> None:
    if not rows:
        return
    ids = _Ids(session)
    requests, visits, ratings, occurrences, checks = [], [], [], [], []
    for row in rows:
        rid = ids.take()
        requests.append({"id": rid, **{k: v for k, v in row.items() if not k.startswith("_")}})
        if "_visit" in row:
            visits.append({**row["_visit"], "request_id": rid})
        if "_rating" in row:
            ratings.append({"request_id": rid, "provider_id": row["provider_id"], "user_id": world.user_id,
                            "rating": row["_rating"], "comment": "", "created_at": row["closed_at"] + timedelta(hours=2)})  # fmt: skip
        if "_plan" in row:
            occurrences.append({"plan_id": row["_plan"][0], "occurs_on": row["_plan"][1], "request_id": rid,
                                "created_at": row["created_at"]})  # fmt: skip
        if "_welfare" in row:
            check_id = ids.take()
            requests.append(_welfare_request(row, check_id))
            checks.append({"elder_id": row["elder_id"], "request_id": check_id, "reason": row["_welfare"],
                           "source_request_id": rid, "dedupe_key": f"failed-visit:{rid}",
                           "created_at": requests[-1]["created_at"]})  # fmt: skip
    for table, batch in ((R, requests), (V, visits), (F, ratings), (O, occurrences), (W, checks)):
        _bulk(session, table, batch)
    report.requests += len(requests)
    report.visits, report.ratings = report.visits + len(visits), report.ratings + len(ratings)
    report.welfare_checks += len(checks)


def _welfare_request(row: dict[str, Any], request_id: int) -> dict[str, Any]:
    """A failed visit's welfare check: an urgent visit, escalated, then looked after."""
    raised = row["closed_at"] + timedelta(minutes=1)
    done = raised + timedelta(minutes=90)
    return {"id": request_id, **{k: v for k, v in row.items() if not k.startswith("_")}, "kind": "visit",
            "priority": "urgent", "channel": "scheduled", "details": {"welfare": True, "reason": row["_welfare"]},
            "window_start": raised, "window_end": raised + timedelta(hours=4), "escalation_reason": "welfare_check",
            "status": "completed", "created_at": raised, "due_at": raised, "assigned_at": raised + timedelta(minutes=12),
            "updated_at": done, "closed_at": done, "note": f"welfare check: {row['_welfare']}"}  # fmt: skip


def _resync_ids(session: Session) -> None:
    """PostgreSQL's sequence must move past the ids handed out here."""
    if _dialect(session) == "postgresql":
        session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('service_request', 'id'), (SELECT max(id) FROM service_request))"
            )
        )


def seed_history(session: Session, *, days: int, progress: Progress | None = None) -> HistoryReport:
    """Seed `days` days of history ending GAP_DAYS before today (the demo district must exist)."""
    note = progress or (lambda _stage, _done, _total: None)
    report = HistoryReport(days=days)
    user_id = _history_user(session)
    if session.execute(select(func.count()).select_from(R).where(R.c.created_by == user_id)).scalar():
        report.skipped = True
        return report
    rng = random.Random(SEED)
    last = local(utcnow()).date() - timedelta(days=GAP_DAYS)
    first = last - timedelta(days=days - 1)
    world = _world(session, rng, first)
    if not world.elders or not world.home_care or not world.canteens:
        raise ValueError("seed the demo district first (eldercare seed --demo)")
    plans = _plans(session, rng, world, first, last)
    report.plans = len(plans)
    session.commit()
    for n in range(days):
        day = first + timedelta(days=n)
        _insert_day(session, world, _day_requests(rng, world, plans, day), report)
        session.commit()
        note("history", n + 1, days)
    _resync_ids(session)
    # Roll the statistics of the history up at once, so the manager page is fast from the start.
    for n, (start, end) in enumerate(ranges(rollup.days_between(first, last)), 1):
        rollup.refresh(session, rollup.days_between(start, end))
        session.commit()
        note("statistics", n, (days + rollup.CHUNK_DAYS - 1) // rollup.CHUNK_DAYS)
    return report
