"""T1: 200 Twilio webhooks, valid and forged, mixed in one random (seeded) stream across the four
endpoints. Every forged one — tampered after signing, signed for another URL, signed with
another token, a signature of another request, an empty or no header — is 403 and changes
nothing (every row of every table is compared before and after it); every valid one, signed
with Twilio's own RequestValidator, is accepted and stored once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import httpx
from sqlalchemy import func
from sqlmodel import select

from dispatch.core.auth import Role
from dispatch.core.db import session_scope
from hotline.models import InboundWebhook
from tests.helpers import ELDER, Api, make_user
from tests.hotline.conftest import PUBLIC_BASE_URL, Twilio
from tests.security.world import changed_tables, snapshot

TOTAL = 200
VALID_SHARE = 0.3

Hook = tuple[str, dict[str, str]]  # (path with query, params)


def _hook(kind: str, n: int, caller: str) -> Hook:
    sid = f"{n:032d}"
    if kind == "voice":
        return "/hotline/twilio/voice", {"CallSid": "CA" + sid, "From": caller, "To": "+862268000000"}
    if kind == "gather":
        return f"/hotline/twilio/gather?attempt={n % 3}", {
            "CallSid": "CA" + sid,
            "From": caller,
            "Digits": "1",
        }
    if kind == "sms":
        return "/hotline/twilio/sms", {"MessageSid": "SM" + sid, "From": "+8613600000001", "Body": "帮助"}
    return "/hotline/twilio/status", {"MessageSid": "SM" + sid, "MessageStatus": "delivered"}


Forgery = Callable[[Twilio, str, dict[str, str], Hook], httpx.Response]


def _tampered(t: Twilio, path: str, p: dict[str, str], _other: Hook) -> httpx.Response:
    name = sorted(p)[0 if len(p) < 3 else 1]  # From, Digits, Body, MessageStatus...
    return t.post(path, {**p, name: p[name] + "9"}, signed_params=p)


def _added_param(t: Twilio, path: str, p: dict[str, str], _other: Hook) -> httpx.Response:
    return t.post(path, {**p, "Digits": "9"} if "Digits" not in p else {**p, "Extra": "1"}, signed_params=p)


def _query_changed(t: Twilio, path: str, p: dict[str, str], _other: Hook) -> httpx.Response:
    sig = t.signature(PUBLIC_BASE_URL + path, p)
    moved = path + ("&" if "?" in path else "?") + "attempt=7"
    return t.client.post(moved, data=p, headers={"X-Twilio-Signature": sig})


FORGERIES: dict[str, Forgery] = {
    "tampered": _tampered,
    "added-param": _added_param,
    "other-host": lambda t, path, p, _o: t.post(path, p, signed_url="https://evil.example.com" + path),
    "http": lambda t, path, p, _o: t.post(
        path, p, signed_url=PUBLIC_BASE_URL.replace("https", "http") + path
    ),
    "other-path": lambda t, path, p, _o: t.post(
        path, p, signed_url=PUBLIC_BASE_URL + "/hotline/twilio/other"
    ),
    "query-changed": _query_changed,
    "wrong-token": lambda t, path, p, _o: t.post(path, p, token="another-accounts-auth-token"),
    # A genuine signature, lifted from another request.
    "replayed-signature": lambda t, path, p, other: t.client.post(
        path, data=p, headers={"X-Twilio-Signature": t.signature(PUBLIC_BASE_URL + other[0], other[1])}
    ),
    "empty-header": lambda t, path, p, _o: t.client.post(path, data=p, headers={"X-Twilio-Signature": ""}),
    "no-header": lambda t, path, p, _o: t.client.post(path, data=p),
}


def _stored() -> int:
    with session_scope(write=False) as session:
        return session.exec(select(func.count()).select_from(InboundWebhook)).one()


def test_200_webhooks_forged_are_refused_and_valid_accepted(api: Api, twilio: Twilio) -> None:
    operator = make_user(Role.OPERATOR)
    api.ok("POST", "/api/elders", operator, 201, json=ELDER)
    rng = random.Random(6)
    kinds = ["voice", "gather", "sms", "status"]
    plan = [("valid" if rng.random() < VALID_SHARE else rng.choice(sorted(FORGERIES)), rng.choice(kinds))]
    plan += [("valid" if rng.random() < VALID_SHARE else rng.choice(sorted(FORGERIES)), rng.choice(kinds))
             for _ in range(TOTAL - 1)]  # fmt: skip
    outcome: Counter[str] = Counter()
    wrong: list[str] = []
    for n, (what, kind) in enumerate(plan):
        path, params = _hook(kind, n, ELDER["phone"])
        if what == "valid":
            stored = _stored()
            response = twilio.post(path, params)
            ok = response.status_code == 200 and response.text.startswith("<?xml") and _stored() == stored + 1
            outcome["valid accepted" if ok else "valid REFUSED"] += 1
            if not ok:
                wrong.append(f"#{n} valid {kind}: {response.status_code} {response.text[:200]}")
            continue
        before = snapshot()
        other = _hook(rng.choice(kinds), n + 10_000, ELDER["phone"])
        response = FORGERIES[what](twilio, path, params, other)
        changed = changed_tables(before, snapshot())
        if response.status_code == 403 and not changed:
            outcome["forged refused"] += 1
        else:
            outcome["forged ACCEPTED"] += 1
            wrong.append(f"#{n} {what} {kind}: {response.status_code}, changed {changed}")
    print(f"\nT1: {TOTAL} webhooks: {dict(outcome)}; by forgery: {dict(Counter(w for w, _ in plan))}")
    assert not wrong, "\n".join(wrong)
    assert outcome["valid accepted"] >= 40 and outcome["forged refused"] >= 120
    assert {w for w, _ in plan} == {"valid", *FORGERIES}  # every forgery was tried
