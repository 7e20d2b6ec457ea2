"""P1: canary phone numbers and care notes, and the platform's secrets, never appear where they
must not.

- API answers (every GET operation of the OpenAPI document, every role, every id it may see):
  the elder's and relatives' full numbers only for operator and admin (API.md), masked for
  everyone else; care notes only for staff (and a relative the elder consented to — none here).
- Error bodies: a refused body that carried them does not echo them back.
- Logs of real processes (uvicorn API, RQ workers, the cron scheduler) at DEBUG level, and the
  websocket frames every role receives: none of the canaries, none of the secrets (SECRET_KEY,
  TWILIO_AUTH_TOKEN, passwords, bearer tokens, the `?token=` of websocket URLs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator

from dispatch.core.auth import Role, User
from dispatch.core.db import session_scope
from dispatch.core.jobs import QueueName
from tests.helpers import ELDER, HOME_CARE, Api, make_user, wait_for
from tests.processes import EventListener, Platform, running_platform
from tests.security.world import ROLES, build_world, kind_of, operations

CANARY_PHONE = "+8613912345678"
CANARY_RELATIVE = "+8613798765432"
CANARY_NOTE = "CANARY糖尿病胰岛素每日两次7f3a"
PASSWORD = "canary-password-Qx81"
WRONG_PASSWORD = "canary-wrong-password-Zk27"
TWILIO_TOKEN = "canary-twilio-auth-token-5e1b"
PUBLIC_BASE_URL = "https://hotline.example.gov.cn"
FULL_PHONE_ROLES = {"operator", "admin"}
STAFF = {"admin", "manager", "operator"}
_PARAM = re.compile(r"{(\w+)}")


def _phone_forms(phone: str) -> list[str]:
    national = phone[3:]
    return [phone, phone[1:], national, f"{national[:3]} {national[3:7]} {national[7:]}"]


def _leaks(text: str, *, phones: bool = True, notes: bool = True, own: str = "") -> list[str]:
    """The canaries in `text`; `own` is the caller's own number (its account), not a leak."""
    found = []
    if phones:
        found += [
            form
            for p in (CANARY_PHONE, CANARY_RELATIVE)
            if p != own
            for form in _phone_forms(p)
            if form in text
        ]
    if notes and ("CANARY糖尿病" in text or "7f3a" in text):
        found.append("care notes")
    return found


# ---- API answers and error bodies (in-process) ------------------------------------------


def test_answers_show_numbers_and_notes_only_to_the_roles_that_may_see_them(
    client: TestClient, api: Api
) -> None:
    w = build_world(api)
    e1 = w.id("elder", "E1")
    api.ok(
        "PATCH", f"/api/elders/{e1}", w.users["operator"], json={"phone": CANARY_PHONE, "notes": CANARY_NOTE}
    )
    with session_scope() as session:  # family1's own number, as the caller lookup matches it
        user = session.get(User, w.ids["user"]["family1"])
        assert user is not None
        user.phone = CANARY_RELATIVE
        session.add(user)
    spec = client.get("/openapi.json").json()
    wrong, seen_full, seen_masked = [], set(), set()
    for method, path, _op in operations(spec):
        if method != "GET" or not path.startswith("/api/"):
            continue
        key = f"{method} {path}"
        params = _PARAM.findall(path)
        for role in ROLES:
            pools = [sorted(w.in_scope(kind_of(key, p), role)) for p in params]
            if any(not pool for pool in pools):
                continue
            for ids in zip(*pools, strict=False) if params else [()]:
                url = path
                for param, value in zip(params, ids, strict=True):
                    url = url.replace("{" + param + "}", str(value))
                text = w.api.call(method, url, w.users[role], params={"limit": 500}).text
                own = CANARY_RELATIVE if role == "family1" else ""
                leaks = _leaks(text, phones=role not in FULL_PHONE_ROLES, notes=role not in STAFF, own=own)
                if leaks:
                    wrong.append(f"{method} {url} as {role} shows {leaks}")
                if CANARY_PHONE in text:
                    seen_full.add(role)
                if "139****5678" in text:
                    seen_masked.add(role)
    assert not wrong, "\n".join(wrong)
    # The canaries were there to be found: full for operator and admin, masked for the others.
    assert seen_full == FULL_PHONE_ROLES, seen_full
    assert {"manager", "family1", "providerA"} <= seen_masked, seen_masked


def test_error_bodies_do_not_echo_what_was_refused(api: Api) -> None:
    w = api.world()
    op, elder = w["operator"], w["elder"]["id"]
    cases = [
        ("PATCH", f"/api/elders/{elder}", {"phone": CANARY_PHONE, "notes": CANARY_NOTE, "name": None}),
        ("POST", "/api/elders", {**ELDER, "phone": CANARY_PHONE, "notes": CANARY_NOTE, "lat": 1.0}),
        (
            "POST",
            "/api/elders",
            {**ELDER, "phone": CANARY_PHONE, "notes": CANARY_NOTE, "smuggled": CANARY_NOTE},
        ),
        ("POST", "/api/elders", {**ELDER, "phone": CANARY_PHONE + "999999", "notes": CANARY_NOTE}),
        ("POST", "/api/requests", {"elder_id": elder, "kind": "visit", "note": CANARY_NOTE * 30}),
    ]
    for method, path, body in cases:
        response = api.call(method, path, op, json=body)
        assert response.status_code == 422, response.text
        assert not _leaks(response.text), (path, response.text)
        assert response.json()["detail"], "the reason is still given"


def test_database_errors_do_not_carry_the_values(api: Api) -> None:
    """SQLAlchemy puts statement parameters in its exception text (and so in tracebacks in the
    logs) unless the engine hides them."""
    taken = make_user(Role.FAMILY)
    with pytest.raises(IntegrityError) as caught, session_scope() as session:
        session.add(User(username=taken, password_hash=CANARY_NOTE, role="family", phone=CANARY_PHONE))
        session.flush()
    assert "hidden" in str(caught.value) and not _leaks(str(caught.value)), str(caught.value)


# ---- logs and frames of real processes --------------------------------------------------


@pytest.fixture
def platform(env: dict[str, str], tmp_path: Path) -> Iterator[Platform]:
    values = {
        **env,
        "LOG_LEVEL": "DEBUG",
        "RQ_LOG_LEVEL": "DEBUG",
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "HOTLINE_OPEN": "00:00",
        "HOTLINE_CLOSE": "24:00",
    }
    with running_platform(values, tmp_path) as p:
        p.start_api()
        p.start_worker(QueueName.MATCH.value)
        p.start_worker(QueueName.NOTIFY.value)
        p.start("scheduler", "scheduler")
        yield p


class _Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=15)
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            r = self.http.post("/api/auth/token", data={"username": user, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    def call(self, method: str, path: str, user: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers={"Authorization": f"Bearer {self.token(user)}"}, **kw)

    def ok(self, method: str, path: str, user: str, expect: int = 200, **kw: Any) -> Any:
        r = self.call(method, path, user, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()


def _sign(params: dict[str, str], path: str) -> dict[str, str]:
    return {
        "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)
    }


def _register(c: _Client, users: dict[str, str]) -> int:
    elder = c.ok("POST", "/api/elders", users["operator"], 201,
                 json={**ELDER, "phone": CANARY_PHONE, "notes": CANARY_NOTE})["id"]  # fmt: skip
    c.ok("POST", f"/api/elders/{elder}/family", users["operator"], 201, json={"username": users["family"]})
    return int(elder)


def _serve_one_request(c: _Client, users: dict[str, str], elder: int) -> int:
    """Look the canary elder up (API and hotline), make some errors, file and serve a request."""
    assert c.ok("GET", "/api/elders", users["operator"], params={"phone": CANARY_PHONE[3:]})[0]["id"] == elder
    call = {"CallSid": "CA" + "5" * 32, "From": CANARY_PHONE, "To": "+862268000000"}
    assert (
        c.http.post(
            "/hotline/twilio/voice", data=call, headers=_sign(call, "/hotline/twilio/voice")
        ).status_code
        == 200
    )
    c.http.post("/api/auth/token", data={"username": users["operator"], "password": WRONG_PASSWORD})
    assert (
        c.call(
            "PATCH", f"/api/elders/{elder}", users["operator"], json={"notes": CANARY_NOTE, "name": None}
        ).status_code
        == 422
    )
    assert c.call("GET", f"/api/elders/{elder}", users["provider"]).status_code == 404
    request = c.ok(
        "POST", "/api/requests", users["family"], 202, json={"elder_id": elder, "kind": "home_care"}
    )["id"]
    offer = wait_for(lambda: next(iter(c.ok("GET", "/api/offers?status=pending", users["provider"])), None),
                     timeout=30, what="the offer")  # fmt: skip
    c.ok("POST", f"/api/offers/{offer['id']}/accept", users["provider"])
    here = {"lat": ELDER["lat"], "lon": ELDER["lon"]}
    c.ok("POST", f"/api/requests/{request}/check-in", users["provider"], json=here)
    c.ok("POST", f"/api/requests/{request}/check-out", users["provider"], json={**here, "summary": "已服务"})
    wait_for(lambda: len(c.ok("GET", f"/api/messages?request_id={request}", users["operator"])) >= 2,
             timeout=30, what="the family's SMS in the outbox")  # fmt: skip
    return int(request)


@pytest.mark.e2e
def test_logs_and_frames_of_real_processes_carry_no_canary_and_no_secret(
    platform: Platform, env: dict[str, str], tmp_path: Path
) -> None:
    users = {
        "operator": make_user(Role.OPERATOR, password=PASSWORD),
        "manager": make_user(Role.MANAGER, password=PASSWORD),
        "family": make_user(Role.FAMILY, password=PASSWORD, phone=CANARY_RELATIVE),
    }
    c = _Client(platform.base)
    provider = c.ok("POST", "/api/providers", users["manager"], 201, json=HOME_CARE)
    users["provider"] = make_user(Role.PROVIDER, password=PASSWORD, provider_id=provider["id"])
    elder = _register(c, users)  # before the relative connects: its scope is read on connecting
    ws_base = f"ws://127.0.0.1:{platform.port}/ws/events?since=0&token="
    listeners = {role: EventListener(ws_base + c.token(user)).start() for role, user in users.items()}
    try:
        _serve_one_request(c, users, elder)
        for role in ("operator", "manager", "family"):
            wait_for(lambda role=role: any(f["type"] == "request.completed" for f in listeners[role].frames),
                     timeout=30, what=f"the {role}'s console to see the visit completed")  # fmt: skip
    finally:
        for listener in listeners.values():
            listener.close()
    platform.stop_all()  # every process flushes and closes its log
    for role, listener in listeners.items():
        text = "\n".join(map(str, listener.frames))
        assert listener.frames and not _leaks(text), (role, _leaks(text))
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    assert set(logs) >= {
        "api.log",
        "worker-eldercare-match.log",
        "worker-eldercare-notify.log",
        "scheduler.log",
    }
    secrets = {
        "SECRET_KEY": env["SECRET_KEY"],
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "a password": PASSWORD,
        "a wrong password": WRONG_PASSWORD,
        **{f"{user}'s bearer token": token for user, token in c.tokens.items()},
    }
    for name, text in logs.items():
        assert not _leaks(text), (name, _leaks(text))
        found = [what for what, value in secrets.items() if value in text]
        assert not found, (name, found)
    # The logs were really written at DEBUG and did meet the dangerous lines, scrubbed.
    api_log = logs["api.log"]
    assert "/ws/events?since=0&token=[redacted]" in api_log and "[accepted]" in api_log, api_log[-3000:]
    assert "DEBUG" in api_log and "DEBUG" in logs["worker-eldercare-match.log"]
    assert sum(len(t) for t in logs.values()) > 5000
