"""Flagged visits listed for the operators; a correction approved (or rejected) with a reason is
a record of its own, audited, and never overwrites what the visit recorded. The list and its CSV
export are scoped by role."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from dispatch.core.audit import AuditEntry
from dispatch.core.clock import local, utcnow
from dispatch.core.db import session_scope
from dispatch.visits import service as visit_service
from dispatch.visits.models import VisitCorrection
from tests.helpers import ELDER, Api
from tests.visits.test_evv import Clock
from tests.visits.world import FAR, HOME, World, build


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    monkeypatch.setattr(visit_service, "utcnow", c)
    yield c


@pytest.fixture
def w(api: Api) -> World:
    return build(api)


def _visit(
    w: World, clock: Clock, *, minutes: float, at: dict[str, float] = HOME, caregiver: int = 0
) -> dict[str, Any]:
    job = w.job(caregiver=caregiver)
    w.api.ok("POST", f"/api/requests/{job}/check-in", w.provider_user, json=HOME)
    clock.advance(minutes=minutes)
    return w.api.ok("POST", f"/api/requests/{job}/check-out", w.provider_user, json={**at, "summary": "打扫"})  # type: ignore[no-any-return]


def _correct(w: World, visit_id: int, user: str | None = None, expect: int = 201, **body: Any) -> Any:
    return w.api.ok("POST", f"/api/visits/{visit_id}/corrections", user or w.operator, expect, json=body)


def test_flagged_visits_are_listed_for_the_operator(w: World, clock: Clock) -> None:
    short = _visit(w, clock, minutes=5)
    clean = _visit(w, clock, minutes=40)
    far = _visit(w, clock, minutes=40, at=FAR)
    flagged = w.api.ok("GET", "/api/visits?flagged=true", w.operator)
    assert [v["id"] for v in flagged] == [far["id"], short["id"]]  # newest check-in first
    assert [v["id"] for v in w.api.ok("GET", "/api/visits?flagged=false", w.operator)] == [clean["id"]]
    waiting = w.api.ok("GET", "/api/visits?review=open", w.operator)
    assert {v["id"] for v in waiting} == {short["id"], far["id"]}
    row = next(v for v in flagged if v["id"] == short["id"])
    assert row["elder_name"] == ELDER["name"] and row["provider_name"] == w.provider["name"]
    assert row["caregiver_name"] == "王芳" and row["township"] == "静海镇" and row["duration_minutes"] == 5.0
    with session_scope(write=False) as session:
        reads = session.exec(select(AuditEntry).where(AuditEntry.what == "visits")).all()
    assert {a.elder_id for a in reads} == {w.elder["id"]}  # who read the elders' visits is on record


def test_an_approved_correction_keeps_the_original(w: World, clock: Clock) -> None:
    visit = _visit(w, clock, minutes=5)
    assert visit["flags"] == ["too_short"] and visit["verified"] is False
    real_start = datetime.fromisoformat(visit["check_in_at"]) - timedelta(minutes=40)
    correction = _correct(
        w, visit["id"], decision="approve", reason="家属电话确认服务45分钟，签到时手机无信号",
        corrected_check_in_at=real_start.isoformat(),
    )  # fmt: skip
    assert correction["verified_before"] is False and correction["verified_after"] is True
    assert correction["flags_reviewed"] == ["too_short"] and correction["by"] == w.operator
    after = w.api.ok("GET", f"/api/visits/{visit['id']}", w.operator)
    for fact in ("check_in_at", "check_out_at", "check_in_lat", "check_out_distance_m", "flags", "summary"):
        assert after[fact] == visit[fact], fact  # the recorded facts are as they were
    assert after["review"] == "approved" and after["verified"] is True
    assert datetime.fromisoformat(after["effective_check_in_at"]) == real_start
    assert after["duration_minutes"] == 45.0 and len(after["corrections"]) == 1
    with session_scope(write=False) as session:
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "visit_correction")).all()
    assert len(audit) == 1 and audit[0].elder_id == w.elder["id"] and "approved" in audit[0].what
    assert audit[0].actor_role == "operator"


def test_a_later_rejection_decides_and_both_stay(w: World, clock: Clock) -> None:
    visit = _visit(w, clock, minutes=40, at=FAR)
    _correct(w, visit["id"], decision="approve", reason="小区门口签退，已电话核实")
    _correct(w, visit["id"], w.admin, decision="reject", reason="复核：老人表示当天无人上门")
    after = w.api.ok("GET", f"/api/requests/{visit['request_id']}/visit", w.operator)
    assert after["review"] == "rejected" and after["verified"] is False
    assert [c["decision"] for c in after["corrections"]] == ["approve", "reject"]
    assert after["corrections"][1]["verified_before"] is True
    assert after["effective_check_in_at"] == after["check_in_at"]  # a rejection corrects no time
    assert [v["id"] for v in w.api.ok("GET", "/api/visits?review=rejected", w.operator)] == [visit["id"]]


def test_rejecting_a_clean_visit_after_a_complaint(w: World, clock: Clock) -> None:
    visit = _visit(w, clock, minutes=40)
    assert visit["verified"] is True
    _correct(w, visit["id"], decision="reject", reason="家属投诉：未上门服务")
    assert w.api.ok("GET", f"/api/visits/{visit['id']}", w.manager)["verified"] is False


def test_corrections_are_append_only_in_the_database(w: World, clock: Clock) -> None:
    visit = _visit(w, clock, minutes=5)
    _correct(w, visit["id"], decision="approve", reason="电话核实无误")
    for statement in ("UPDATE visit_correction SET reason = 'changed'", "DELETE FROM visit_correction"):
        with pytest.raises(DBAPIError, match="append-only"), session_scope() as session:
            session.execute(text(statement))
    with session_scope(write=False) as session:
        (row,) = session.exec(select(VisitCorrection)).all()
    assert row.reason == "电话核实无误"


def test_bad_corrections_are_refused_and_change_nothing(w: World, clock: Clock) -> None:
    visit = _visit(w, clock, minutes=5)
    vid = visit["id"]
    now = utcnow()
    for body in (
        {"decision": "approve"},
        {"decision": "approve", "reason": "  "},
        {"decision": "approve", "reason": "ok"},
        {"decision": "maybe", "reason": "电话核实无误"},
        {"decision": "approve", "reason": "电话核实无误", "verified": True},
        {"decision": "approve", "reason": "电话核实无误", "corrected_check_in_at": "2026-12-01T09:00:00"},
        {"decision": "approve", "reason": "电话核实无误",
         "corrected_check_in_at": now.isoformat(), "corrected_check_out_at": (now - timedelta(hours=1)).isoformat()},
    ):  # fmt: skip
        assert (
            w.api.call("POST", f"/api/visits/{vid}/corrections", w.operator, json=body).status_code == 422
        ), body
    future = (now + timedelta(days=1)).isoformat()
    body = {"decision": "approve", "reason": "电话核实无误", "corrected_check_out_at": future}
    assert w.api.call("POST", f"/api/visits/{vid}/corrections", w.operator, json=body).status_code == 422
    late_start = (datetime.fromisoformat(visit["check_out_at"]) + timedelta(minutes=1)).isoformat()
    body = {"decision": "approve", "reason": "电话核实无误", "corrected_check_in_at": late_start}
    assert w.api.call("POST", f"/api/visits/{vid}/corrections", w.operator, json=body).status_code == 422
    ok = {"decision": "approve", "reason": "电话核实无误"}
    for user, status in ((w.provider_user, 403), (w.manager, 403), (w.daughter, 403), (w.operator, 201)):
        assert w.api.call("POST", f"/api/visits/{vid}/corrections", user, json=ok).status_code == status
    assert w.api.call("POST", "/api/visits/999999/corrections", w.operator, json=ok).status_code == 404
    assert len(w.api.ok("GET", f"/api/visits/{vid}", w.operator)["corrections"]) == 1


def test_a_visit_in_service_cannot_be_corrected_yet(w: World) -> None:
    job = w.job()
    visit = w.api.ok("POST", f"/api/requests/{job}/check-in", w.provider_user, json=FAR)
    body = {"decision": "approve", "reason": "电话核实无误"}
    assert (
        w.api.call("POST", f"/api/visits/{visit['id']}/corrections", w.operator, json=body).status_code == 409
    )


def test_list_filters_by_local_day_and_provider(w: World, clock: Clock) -> None:
    visit = _visit(w, clock, minutes=40)
    day = local(datetime.fromisoformat(visit["check_in_at"])).date()
    before, after = day - timedelta(days=1), day + timedelta(days=1)
    pid = w.provider["id"]

    def ids(query: str) -> list[int]:
        return [v["id"] for v in w.api.ok("GET", f"/api/visits?{query}", w.operator)]

    assert ids(f"from={day}&to={day}") == [visit["id"]]
    assert ids(f"from={after}") == [] and ids(f"to={before}") == []
    assert ids(f"provider_id={pid}") == [visit["id"]] and ids(f"provider_id={w.other_provider['id']}") == []
    assert ids("kind=home_care") == [visit["id"]] and ids("kind=meal") == []
    bad_queries = ("from=yesterday", "flagged=perhaps", "review=closed", "provider_id=0", "limit=0",
                   "from=0001-01-01", "to=9999-12-31")  # fmt: skip
    for bad in bad_queries:
        assert w.api.call("GET", f"/api/visits?{bad}", w.operator).status_code == 422, bad


def test_providers_see_only_their_own_visits(w: World, clock: Clock) -> None:
    first = _visit(w, clock, minutes=40, caregiver=0)
    second = _visit(w, clock, minutes=40, caregiver=1)
    mine = w.api.ok("GET", "/api/visits", w.provider_user)
    assert {v["id"] for v in mine} == {first["id"], second["id"]}
    assert mine[0]["elder_name"] == "张*英"  # masked for providers
    assert w.api.ok("GET", "/api/visits", w.other_user) == []
    for path in ("/api/visits", "/api/visits/export.csv"):  # another provider's id: as if none existed
        assert w.api.call("GET", f"{path}?provider_id={w.provider['id']}", w.other_user).status_code == 404
    assert w.api.call("GET", f"/api/visits/{first['id']}", w.other_user).status_code == 404
    assert w.api.call("GET", f"/api/requests/{first['request_id']}/visit", w.other_user).status_code == 404
    # An account bound to a caregiver sees that caregiver's visits only.
    assert [v["id"] for v in w.api.ok("GET", "/api/visits", w.caregiver_users[1])] == [second["id"]]
    assert w.api.call("GET", f"/api/visits/{first['id']}", w.caregiver_users[1]).status_code == 404
    for family in (w.daughter, w.son):
        assert w.api.call("GET", "/api/visits", family).status_code == 403
        assert w.api.call("GET", f"/api/visits/{first['id']}", family).status_code == 403


def _csv(w: World, user: str, query: str = "") -> list[dict[str, str]]:
    r = w.api.call("GET", f"/api/visits/export.csv{query}", user)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def test_csv_export_scoped_with_corrections_and_no_personal_details(w: World, clock: Clock) -> None:
    visit = _visit(w, clock, minutes=5)
    _visit(w, clock, minutes=40)
    _correct(w, visit["id"], decision="approve", reason='=HYPERLINK("http://evil")电话核实')
    rows = _csv(w, w.operator, "?flagged=true")
    assert len(rows) == 1
    row = rows[0]
    assert row["visit_id"] == str(visit["id"]) and row["flags"] == "too_short" and row["review"] == "approved"
    assert row["verified"] == "true" and row["corrections"] == "1" and row["place"] == "elder_home"
    assert row["last_correction_reason"].startswith("'=")  # not run as a formula by a spreadsheet
    assert row["check_in_at"].endswith("+08:00")  # local time, with its offset
    text_all = "".join(",".join(r.values()) for r in _csv(w, w.operator))
    assert ELDER["name"] not in text_all and ELDER["phone"] not in text_all and "打扫" not in text_all
    assert len(_csv(w, w.manager)) == 2 and len(_csv(w, w.provider_user)) == 2
    assert _csv(w, w.other_user) == [] and len(_csv(w, w.caregiver_users[0])) == 2
    assert w.api.call("GET", "/api/visits/export.csv", w.daughter).status_code == 403
    assert len(_csv(w, w.operator, f"?from={date.today() + timedelta(days=2)}")) == 0
