"""S2: every endpoint that takes an id, called by every role with every id outside that role's
scope, is refused, and the refusal tells nothing about whether the id exists.

The rule (API.md, and `require_roles` in dispatch/core/auth.py):
- 403 when the role may never use the endpoint, whatever the id (what a role may do is no
  secret) — so the same role gets 403 for an id it may see and for one that does not exist;
- 404 when the role may use the endpoint but the id is outside its scope — the same answer as
  for an id that exists nowhere, so ids cannot be probed;
- and nothing changes: every row of every table is the same after all the refused calls.

The endpoint list is the app's OpenAPI document, read at test time: an endpoint added later is
covered as soon as it exists, and one whose parameters or body the test does not know how to
build fails with a message saying what to add to tests/security/world.py.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.helpers import Api
from tests.security.world import (
    MISSING_ID,
    ROLES,
    World,
    build_world,
    call_for,
    changed_tables,
    kind_of,
    operations,
    snapshot,
)

_PARAM = re.compile(r"{(\w+)}")


def _call(w: World, method: str, path: str, role: str, body: dict[str, Any] | None) -> httpx.Response:
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    return w.api.call(method, path, w.users[role], **kwargs)


def _id_operations(client: TestClient) -> list[tuple[str, str, list[str], dict[str, Any]]]:
    schema = client.get("/openapi.json").json()
    found = []
    for method, path, op in operations(schema):
        params = _PARAM.findall(path)
        if params:
            found.append((method, path, params, op))
    return found


def test_out_of_scope_ids_are_refused_for_every_role(client: TestClient, api: Api) -> None:
    w = build_world(api)
    ops = _id_operations(client)
    assert len(ops) >= 14, [f"{m} {p}" for m, p, _, _ in ops]
    before = snapshot()
    attempts, refusals, wrong = 0, 0, []
    status_of: dict[tuple[str, str], int] = {}
    for method, path, params, op in ops:
        key = f"{method} {path}"
        kinds = [kind_of(key, p) for p in params]
        call = call_for(key, op)
        for role in ROLES:
            body = call.body(w) if call and call.body else None
            # What an id that exists nowhere answers this role: the answer to match.
            missing = _call(w, method, _fill(path, params, [MISSING_ID] * len(params)), role, body)
            status_of[(key, role)] = missing.status_code
            if missing.status_code not in (403, 404):
                wrong.append(f"{key} as {role} with a missing id: {missing.status_code} {missing.text[:200]}")
            for ids in _out_of_scope_combinations(w, kinds, role):
                attempts += 1
                response = _call(w, method, _fill(path, params, ids), role, body)
                if response.status_code == missing.status_code and response.status_code in (403, 404):
                    refusals += 1
                else:
                    wrong.append(
                        f"{key} as {role} with out-of-scope ids {ids}: {response.status_code} "
                        f"(a missing id answers {missing.status_code}) {response.text[:200]}"
                    )
    assert not wrong, "\n".join(wrong)
    assert not changed_tables(before, snapshot()), "refused calls changed these tables"
    _forbidden_means_forbidden_for_every_id(w, ops, status_of)
    _in_scope_reads_succeed(w, ops, status_of)
    print(f"\nS2: {len(ops)} id-taking operations x {len(ROLES)} roles: {attempts} out-of-scope calls, "
          f"{refusals} refused ({100 * refusals / attempts:.0f}%), nothing changed")  # fmt: skip
    assert attempts >= 100 and refusals == attempts


def _fill(path: str, params: list[str], ids: list[int] | tuple[int, ...]) -> str:
    for name, value in zip(params, ids, strict=True):
        path = path.replace("{" + name + "}", str(value))
    return path


def _out_of_scope_combinations(w: World, kinds: list[str], role: str) -> list[tuple[int, ...]]:
    """Every combination of world ids in which at least one id is outside the role's scope."""
    pools = [sorted(w.ids[kind].values()) for kind in kinds]
    return [
        combo
        for combo in itertools.product(*pools)
        if any(i in w.out_of_scope(kind, role) for i, kind in zip(combo, kinds, strict=True))
    ]


def _forbidden_means_forbidden_for_every_id(
    w: World, ops: list[tuple[str, str, list[str], dict[str, Any]]], status_of: dict[tuple[str, str], int]
) -> None:
    """A 403 is about the role: the same for an id the role may see (reads only: nothing changes)."""
    for method, path, params, _ in ops:
        key = f"{method} {path}"
        for role in ROLES:
            if status_of[(key, role)] != 403 or method != "GET" or len(params) != 1:
                continue
            visible = sorted(w.in_scope(kind_of(key, params[0]), role))
            for i in visible:
                response = _call(w, method, _fill(path, params, [i]), role, None)
                assert response.status_code == 403, (
                    f"{key} as {role}, id {i} in scope: {response.status_code}"
                )


def _in_scope_reads_succeed(
    w: World, ops: list[tuple[str, str, list[str], dict[str, Any]]], status_of: dict[tuple[str, str], int]
) -> None:
    """The other side: every role reads what is in its scope (so the refusals are not everything
    refusing everything)."""
    reads = 0
    for method, path, params, _ in ops:
        key = f"{method} {path}"
        if method != "GET" or len(params) != 1:
            continue
        for role in ROLES:
            if status_of[(key, role)] == 403:
                continue
            for i in sorted(w.in_scope(kind_of(key, params[0]), role)):
                response = _call(w, method, _fill(path, params, [i]), role, None)
                assert response.status_code == 200, f"{key} as {role}, id {i}: {response.status_code}"
                reads += 1
    assert reads >= 20, reads


# List endpoints whose items are one kind of the world: their unfiltered answer is the scope.
LISTS = {
    "/api/requests": "request",
    "/api/offers": "offer",
    "/api/elders": "elder",
    "/api/providers": "provider",
}


def _item_ids(response: httpx.Response) -> set[str]:
    body = response.json()
    assert isinstance(body, list), body
    return {str(item.get("id", item)) if isinstance(item, dict) else str(item) for item in body}


def test_lists_and_id_filters_never_widen_the_scope(client: TestClient, api: Api) -> None:
    """Every list answers only what is in the caller's scope, and a filter on an id
    (`?elder_id=`, `?request_id=`...) outside it only narrows that, never the other way."""
    w = build_world(api)
    schema = client.get("/openapi.json").json()
    checked = 0
    for method, path, op in operations(schema):
        if method != "GET" or _PARAM.search(path):
            continue
        key = f"{method} {path}"
        filters = [
            p["name"] for p in op.get("parameters", []) if p["in"] == "query" and p["name"].endswith("_id")
        ]
        for role in ROLES:
            unfiltered = w.api.call(method, path, w.users[role], params={"limit": 500})
            if path in LISTS and unfiltered.status_code == 200:
                visible = {str(i) for i in w.in_scope(LISTS[path], role)}
                extra = _item_ids(unfiltered) - visible - _unnamed_but_own(w, LISTS[path], role)
                assert not extra, f"{key} as {role} lists ids outside its scope: {sorted(extra)}"
            for name in filters:
                for i in sorted(w.out_of_scope(kind_of(key, name), role)):
                    response = w.api.call(method, path, w.users[role], params={name: i, "limit": 500})
                    checked += 1
                    if response.status_code in (403, 404):
                        continue
                    assert response.status_code == 200 and unfiltered.status_code == 200, response.text[:300]
                    assert _item_ids(response) <= _item_ids(unfiltered), (
                        f"{key}?{name}={i} as {role} answers more than the unfiltered list: {response.text[:300]}"
                    )
    assert checked >= 20, checked


def _unnamed_but_own(w: World, kind: str, role: str) -> set[str]:
    """Rows the world did not name that the role may see: the accepted offers of the manual
    dispatches (R1 to A, R2 to B), for staff and for the provider they went to."""
    if kind != "offer" or role.startswith("family"):
        return set()
    named = {str(i) for i in w.ids["offer"].values()}
    own = {"providerA": w.id("provider", "A"), "providerB": w.id("provider", "B")}.get(role)
    return {
        str(o["id"])
        for o in w.api.ok("GET", "/api/offers?limit=500", w.users["admin"])
        if str(o["id"]) not in named and (own is None or o["provider_id"] == own)
    }
