"""A small district with two of everything, who may see what in it, and how to call every
endpoint of the API validly — shared by the scope (S2), mass-assignment (S3) and audit tests.

Seven accounts: admin, manager, operator, two providers (A and B, each with a provider
account) and two relatives (each linked to one elder). Elder E1 is linked to family1, E2 to
family2, E3 to nobody. Requests: R1 (E1) assigned to A, R2 (E2) assigned to B, R3 (E1) with a
pending offer to A, R4 (E2) with a pending offer to B; R5 (E1) served by A and R6 (E2) by B,
with their visits V5 and V6. No worker runs, so nothing moves.

What the tests know about the API is in two tables. A test meeting an endpoint or a path
parameter that is in neither fails and names what to add here: a new endpoint is never
skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import SQLModel

import dispatch.app  # noqa: F401  (every table registered, for the snapshots)
from dispatch.core.auth import Role
from dispatch.core.db import get_engine, session_scope
from dispatch.orders import offers
from dispatch.orders.models import ServiceRequest
from tests.helpers import ELDER, HOME_CARE, Api, make_user

ROLES = ("admin", "manager", "operator", "providerA", "providerB", "family1", "family2")
STAFF = ("admin", "manager", "operator")
MISSING_ID = 987_654_321  # exists nowhere: what an unknown id answers


@dataclass
class World:
    api: Api
    users: dict[str, str]  # role key -> username
    ids: dict[str, dict[str, int]]  # kind -> name -> id
    scope: dict[str, dict[str, set[int]]] = field(default_factory=dict)  # kind -> role -> ids

    def id(self, kind: str, name: str) -> int:
        return self.ids[kind][name]

    def in_scope(self, kind: str, role: str) -> set[int]:
        return self.scope[kind][role]

    def out_of_scope(self, kind: str, role: str) -> set[int]:
        return set(self.ids[kind].values()) - self.in_scope(kind, role)


def build_world(api: Api) -> World:
    manager = make_user(Role.MANAGER)
    users = {"admin": make_user(Role.ADMIN), "manager": manager, "operator": make_user(Role.OPERATOR)}
    provider_a = api.ok("POST", "/api/providers", manager, 201, json={**HOME_CARE, "name": "康乐A"})
    provider_b = api.ok(
        "POST", "/api/providers", manager, 201, json={**HOME_CARE, "name": "康乐B", "phone": "+8613600000002"}
    )
    users["providerA"] = make_user(Role.PROVIDER, provider_id=provider_a["id"])
    users["providerB"] = make_user(Role.PROVIDER, provider_id=provider_b["id"])
    users["family1"] = make_user(Role.FAMILY, phone="+8613700000011")
    users["family2"] = make_user(Role.FAMILY, phone="+8613700000012")
    op = users["operator"]
    elders = {
        name: api.ok("POST", "/api/elders", op, 201, json={**ELDER, "name": f"长者{name}", "phone": phone})[
            "id"
        ]
        for name, phone in (("E1", "+8613800000101"), ("E2", "+8613800000102"), ("E3", "+8613800000103"))
    }
    for family, elder in (("family1", "E1"), ("family2", "E2")):
        api.ok("POST", f"/api/elders/{elders[elder]}/family", op, 201, json={"username": users[family]})

    def new_request(elder: str) -> int:
        body = {"elder_id": elders[elder], "kind": "home_care", "details": {"skills": ["cleaning"]}}
        return int(api.ok("POST", "/api/requests", op, 202, json=body)["id"])

    requests = {
        name: new_request(elder) for name, elder in (("R1", "E1"), ("R2", "E2"), ("R3", "E1"), ("R4", "E2"))
    }
    for name, provider in (("R1", provider_a), ("R2", provider_b)):
        api.ok("POST", f"/api/requests/{requests[name]}/assign", op, json={"provider_id": provider["id"]})
    offer_ids = {}
    with session_scope() as session:  # pending offers, made as the matcher makes them
        for name, provider in (("R3", provider_a), ("R4", provider_b)):
            request = session.get(ServiceRequest, requests[name])
            assert request is not None
            offer = offers.make_offer(session, request, provider_id=provider["id"], caregiver_id=None)
            offer_ids[f"O{name[1]}"] = offer.id
    # ---- issue 4: two finished visits, R5 (E1) by A and R6 (E2) by B, for the visit endpoints ----
    visits = {}
    for name, elder, provider, user in (
        ("R5", "E1", provider_a, "providerA"),
        ("R6", "E2", provider_b, "providerB"),
    ):
        requests[name] = new_request(elder)
        api.ok("POST", f"/api/requests/{requests[name]}/assign", op, json={"provider_id": provider["id"]})
        api.ok("POST", f"/api/requests/{requests[name]}/check-in", users[user], json=CHECK_IN)
        api.ok(
            "POST",
            f"/api/requests/{requests[name]}/check-out",
            users[user],
            json={**CHECK_IN, "summary": "打扫"},
        )
        visits[f"V{name[1]}"] = api.ok("GET", f"/api/requests/{requests[name]}/visit", op)["id"]
    # ---- end issue 4 ----
    # ---- issue 5: a plan for E1 and one for E2 (staff business only) ----
    plans = {
        name: api.ok("POST", "/api/plans", op, 201, json={"elder_id": elders[elder], "kind": "visit"})["id"]
        for name, elder in (("P1", "E1"), ("P2", "E2"))
    }
    accounts = {u["username"]: u["id"] for u in api.ok("GET", "/api/users?limit=500", users["admin"])}
    world = World(
        api,
        users,
        {
            "user": {role: accounts[username] for role, username in users.items()},
            "elder": elders,
            "request": requests,
            "offer": {k: int(v or 0) for k, v in offer_ids.items()},
            "provider": {"A": provider_a["id"], "B": provider_b["id"]},
            "visit": visits,  # issue 4
            "plan": plans,  # issue 5
        },
    )
    world.scope = _scope(world)
    return world


def _scope(w: World) -> dict[str, dict[str, set[int]]]:
    """Who may see what: API.md's roles, written out for this world."""
    every = {kind: set(ids.values()) for kind, ids in w.ids.items()}
    e, r, o, p = w.ids["elder"], w.ids["request"], w.ids["offer"], w.ids["provider"]
    scope: dict[str, dict[str, set[int]]] = {
        kind: {role: set(every[kind]) for role in STAFF} for kind in every
    }
    scope["elder"].update(
        providerA=set(), providerB=set(), family1={e["E1"]}, family2={e["E2"]}
    )  # providers see elders only through their offers and jobs
    scope["request"].update(
        providerA={r["R1"], r["R3"], r["R5"]},
        providerB={r["R2"], r["R4"], r["R6"]},
        family1={r["R1"], r["R3"], r["R5"]},
        family2={r["R2"], r["R4"], r["R6"]},
    )
    # issue 4: a provider reads its own visits; relatives read theirs through /api/family only.
    v = w.ids["visit"]
    scope["visit"].update(providerA={v["V5"]}, providerB={v["V6"]}, family1=set(), family2=set())
    # issue 5: plans are the staff's business alone.
    scope["plan"].update({role: set() for role in ROLES if role not in STAFF})
    # A provider sees its own offers; the manual dispatches' accepted offers are not in the
    # world's ids (only the pending ones are), so this is exact.
    scope["offer"].update(providerA={o["O3"]}, providerB={o["O4"]}, family1=set(), family2=set())
    scope["provider"].update(providerA={p["A"]}, providerB={p["B"]}, family1=set(), family2=set())
    # Accounts: an admin's business (and staff's, for family links); everyone else sees only itself.
    scope["user"].update({role: {w.ids["user"][role]} for role in ROLES if role not in STAFF})
    return scope


# ---- what the tests know about the API --------------------------------------------------

# What a path or query parameter names. A new name fails the tests until it is added here.
PARAM_KINDS = {
    "elder_id": "elder",
    "request_id": "request",
    "offer_id": "offer",
    "provider_id": "provider",
    "user_id": "user",
    "actor_id": "user",
    "visit_id": "visit",  # issue 4
    "plan_id": "plan",  # issue 5
}

Body = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Call:
    """How to make a valid call: as whom (a role key of the world), with which JSON body."""

    user: str
    body: Body | None = None


CHECK_IN = {"lat": 38.947, "lon": 116.974}
# Every operation with a request body, and those whose body is optional; keyed "METHOD path".
CALLS: dict[str, Call] = {
    "POST /api/users": Call(
        "admin", lambda w: {"username": "newuser1", "password": "password-123", "role": "operator"}
    ),
    "POST /api/elders": Call("operator", lambda w: {**ELDER, "phone": "+8613800000199"}),
    "PATCH /api/elders/{elder_id}": Call("operator", lambda w: {"address": "静海镇新址1号"}),
    "POST /api/elders/{elder_id}/family": Call("operator", lambda w: {"username": w.users["family1"]}),
    "POST /api/providers": Call(
        "manager", lambda w: {**HOME_CARE, "name": "新机构", "phone": "+8613600000099"}
    ),
    "PATCH /api/providers/{provider_id}": Call("manager", lambda w: {"capacity": 6}),
    "POST /api/providers/{provider_id}/caregivers": Call(
        "manager", lambda w: {"name": "王护工", "phone": "+8613500000001", "skills": ["cleaning"]}
    ),
    "POST /api/requests": Call("operator", lambda w: {"elder_id": w.id("elder", "E1"), "kind": "visit"}),
    "POST /api/requests/{request_id}/cancel": Call("operator", lambda w: {"reason": "测试"}),
    "POST /api/requests/{request_id}/assign": Call(
        "operator", lambda w: {"provider_id": w.id("provider", "A")}
    ),
    "POST /api/offers/{offer_id}/decline": Call("providerA", lambda w: {"reason": "忙"}),
    "POST /api/requests/{request_id}/check-in": Call("providerA", lambda w: CHECK_IN),
    "POST /api/requests/{request_id}/check-out": Call("providerA", lambda w: {**CHECK_IN, "summary": "好"}),
    "POST /api/requests/{request_id}/feedback": Call("family1", lambda w: {"rating": 5, "comment": "好"}),
    # matching (issue 8)
    "POST /api/elders/{elder_id}/refused-providers": Call(
        "operator", lambda w: {"provider_id": w.id("provider", "B"), "reason": "测试"}
    ),
    "POST /api/offers/{offer_id}/caregiver": Call("providerA", lambda w: {"caregiver_id": 1}),
    # ---- issue 4 ----
    "POST /api/requests/{request_id}/on-the-way": Call("providerA", lambda w: {"eta_minutes": 10}),
    "POST /api/visits/{visit_id}/corrections": Call(
        "operator", lambda w: {"decision": "approve", "reason": "电话核实无误"}
    ),
    "PATCH /api/elders/{elder_id}/family/{user_id}": Call("operator", lambda w: {"consent": "status"}),
    # ---- issue 5 ----
    "POST /api/plans": Call("operator", lambda w: {"elder_id": w.id("elder", "E3"), "kind": "visit"}),
    "POST /api/plans/{plan_id}/pause": Call("operator", lambda w: {"reason": "住院"}),
    "POST /api/plans/{plan_id}/resume": Call("operator", lambda w: {"reason": "出院"}),
    "POST /api/plans/{plan_id}/end": Call("operator", lambda w: {"reason": "停止"}),
}
# Form-encoded or webhook operations, proven elsewhere (sign-in: S4; Twilio: T1).
NOT_JSON = {
    "POST /api/auth/token",
    "POST /hotline/twilio/voice",
    "POST /hotline/twilio/gather",
    "POST /hotline/twilio/sms",
    "POST /hotline/twilio/status",
}


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every operation of the OpenAPI document."""
    return [
        (method.upper(), path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def call_for(key: str, op: dict[str, Any]) -> Call | None:
    """The known way to call an operation; a JSON body the tests cannot build is an error."""
    if key in CALLS:
        return CALLS[key]
    body = op.get("requestBody")
    if body and key not in NOT_JSON and "application/json" in body.get("content", {}):
        raise AssertionError(
            f"{key} takes a JSON body the security tests cannot build: add it to CALLS in "
            "tests/security/world.py (as whom, and a valid body)"
        )
    return None


def kind_of(key: str, param: str) -> str:
    kind = PARAM_KINDS.get(param)
    if kind is None:
        raise AssertionError(
            f"{key}: the security tests do not know what `{param}` refers to: add it to PARAM_KINDS "
            "and the world (ids, and who may see each) in tests/security/world.py"
        )
    return kind


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove that nothing changed."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with get_engine(write=False).connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(text(f'SELECT * FROM "{table.name}"')).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def changed_tables(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> list[str]:
    return [name for name in after if before.get(name) != after[name]]
