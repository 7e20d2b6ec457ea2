"""S3: fields a client must never set — `status`, `provider_id`, `role`, `version`, `id`,
`created_by`... — smuggled into every create and update body of the OpenAPI document (and into
every object nested in one) are refused with 422 naming the field, and nothing is stored.

A field the body declares is part of the contract (an assignment names its `provider_id`, an
account its `role`) and is not smuggling there; every other one is tried. A body schema that
ignored unknown fields instead of refusing them would still have to leave the stored rows
without the smuggled value: the test checks the rows either way.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from dispatch.core.auth import Role
from tests.helpers import Api, make_user
from tests.security.world import (
    NOT_JSON,
    World,
    build_world,
    call_for,
    changed_tables,
    kind_of,
    operations,
    snapshot,
)

SMUGGLED: dict[str, Any] = {
    "id": 424242,
    "status": "completed",
    "provider_id": 424243,
    "caregiver_id": 424244,
    "elder_id": 424245,
    "user_id": 424246,
    "role": "admin",
    "version": 99,
    "created_by": 1,
    "created_at": "2020-01-01T00:00:00+00:00",
    "updated_at": "2020-01-01T00:00:00+00:00",
    "active": False,
    "password_hash": "$argon2id$smuggled",
    "verified": True,
    "flags": ["smuggled"],
    "escalation_reason": "smuggled",
    "assigned_at": "2020-01-01T00:00:00+00:00",
    "deceased_on": "2020-01-01",
    "consent": "status_and_notes",
    "manual": True,
    "seq": 1,
}
_PARAM = re.compile(r"{(\w+)}")


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for option in schema.get("anyOf", []):
        if "$ref" in option or option.get("type") == "object":
            return _resolve(option, spec)
    return schema


def _objects(schema: dict[str, Any], body: dict[str, Any], spec: dict[str, Any], at: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """(path, declared fields) of the body and of every object nested in it."""
    schema = _resolve(schema, spec)
    props = schema.get("properties", {})
    yield at, set(props)
    for name, value in body.items():
        if isinstance(value, dict) and name in props:
            yield from _objects(props[name], value, spec, (*at, name))


def _with(body: dict[str, Any], at: tuple[str, ...], name: str, value: Any) -> dict[str, Any]:
    if not at:
        return {**body, name: value}
    return {**body, at[0]: _with(body[at[0]], at[1:], name, value)}


def _path_for(w: World, key: str, path: str, user: str) -> str:
    for param in _PARAM.findall(path):
        visible = sorted(w.in_scope(kind_of(key, param), user))
        path = path.replace("{" + param + "}", str(visible[0]))
    return path


def test_smuggled_fields_are_refused_and_never_stored(client: TestClient, api: Api) -> None:
    w = build_world(api)
    spec = client.get("/openapi.json").json()
    before = snapshot()
    tried, bodies, wrong = 0, 0, []
    for method, path, op in operations(spec):
        key = f"{method} {path}"
        if key in NOT_JSON or "application/json" not in op.get("requestBody", {}).get("content", {}):
            continue
        call = call_for(key, op)
        assert call is not None and call.body is not None, f"{key}: no valid body in CALLS"
        body = call.body(w)
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        url = _path_for(w, key, path, call.user)
        bodies += 1
        for at, declared in _objects(schema, body, spec):
            for name, value in SMUGGLED.items():
                if name in declared:
                    continue  # part of this body's contract
                tried += 1
                response = w.api.call(method, url, w.users[call.user], json=_with(body, at, name, value))
                loc = [*at, name]
                refused = response.status_code == 422 and any(
                    e.get("type") == "extra_forbidden" and e.get("loc", [])[-len(loc) :] == loc
                    for e in response.json().get("detail", [])
                    if isinstance(e, dict)
                )
                if not refused and response.status_code < 400:
                    wrong.append(
                        f"{key} accepted {'.'.join(loc)}: {response.status_code} {response.text[:200]}"
                    )
                elif not refused:
                    wrong.append(f"{key} with {'.'.join(loc)}: {response.status_code}, not a 422 naming it")
    assert not wrong, "\n".join(wrong)
    assert not changed_tables(before, snapshot())
    print(f"\nS3: {tried} smuggled fields over {bodies} create/update bodies: all 422, nothing stored")
    assert bodies >= 14 and tried >= 250


def test_a_smuggled_role_in_the_sign_in_form_is_ignored(api: Api) -> None:
    """The form is not JSON (no extra="forbid"): an added `role`/`scope` changes nothing, the
    token carries the account's own role."""
    user = make_user(Role.FAMILY)
    response = api.client.post(
        "/api/auth/token",
        data={"username": user, "password": "password-123", "role": "admin", "scope": "admin"},
    )
    assert response.status_code == 200 and response.json()["role"] == "family"
    token = response.json()["access_token"]
    me = api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "family"
    assert api.client.get("/api/users", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_what_the_server_sets_is_the_servers_even_in_accepted_bodies(api: Api) -> None:
    """Accepted creates: the stored request is queued, unassigned, version 0 and by its caller,
    whatever else the client hoped for (the body could not say it: see above)."""
    w = build_world(api)
    body = {"elder_id": w.id("elder", "E3"), "kind": "meal", "priority": "high", "channel": "app"}
    created = w.api.ok("POST", "/api/requests", w.users["operator"], 202, json=body)
    assert created["status"] == "queued" and created["provider_id"] is None
    from dispatch.core.db import session_scope
    from dispatch.orders.models import ServiceRequest

    with session_scope(write=False) as session:
        row = session.get(ServiceRequest, created["id"])
        assert row is not None
        assert (row.status, row.provider_id, row.version) == ("queued", None, 0)
        operator = w.ids["user"]["operator"]
        assert row.created_by == operator
