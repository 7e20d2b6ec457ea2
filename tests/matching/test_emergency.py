"""An emergency reaches the operators at once, in parallel with matching (the duty phone is
texted through the message outbox), and is matched before everything else, never held back
by the batch window."""

from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import select

from dispatch.core.config import get_settings
from dispatch.core.db import session_scope
from dispatch.core.jobs import COALESCE_MATCH
from dispatch.core.outbox import HURRY_KEY
from dispatch.core.redis import get_redis
from dispatch.notify.models import Message
from tests.helpers import ELDER, Api, drain_jobs, wait_for
from workers import matching as matching_jobs
from workers.matching import LAST_RUN_KEY

DUTY = "+862268000000"


def _messages() -> list[Message]:
    with session_scope(write=False) as session:
        return list(session.exec(select(Message)))


def test_the_duty_operator_is_texted_at_once_and_discreetly(api: Api) -> None:
    w = api.world()
    api.ok("PATCH", f"/api/elders/{w['elder']['id']}", w["operator"], json={"notes": "心脏病史"})
    req = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "emergency"}
    )
    assert req["priority"] == "urgent"
    (text,) = [m for m in _messages() if m.audience == "operator"]  # before any matching ran
    assert (text.to_phone, text.purpose, text.request_id) == (DUTY, "emergency", req["id"])
    assert text.body.startswith(f"【静海养老】紧急求助#{req['id']}：张*英（静海镇）")
    for secret in (ELDER["phone"], ELDER["address"], ELDER["name"], "心脏病史", "138"):
        assert secret not in text.body
    api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "home_care"}
    )
    assert len([m for m in _messages() if m.audience == "operator"]) == 1  # only emergencies
    drain_jobs()
    assert api.ok("GET", "/api/offers?status=pending", w["provider_user"])  # matching ran as well


def test_no_duty_phone_configured_sends_nothing_and_files_the_request(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPERATOR_PHONE", "")
    get_settings.cache_clear()
    w = api.world()
    api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "emergency"}
    )
    assert [m for m in _messages() if m.audience == "operator"] == []


def test_an_emergency_is_not_held_back_by_the_batch_window(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_WINDOW_SECONDS", "30")
    get_settings.cache_clear()
    w = api.world()
    conn = get_redis()
    conn.set(LAST_RUN_KEY, repr(time.time()))  # a run just happened: the next would wait 30 s
    conn.delete(HURRY_KEY.format(COALESCE_MATCH))
    req = api.ok(
        "POST", "/api/requests", w["operator"], 202, json={"elder_id": w["elder"]["id"], "kind": "emergency"}
    )
    assert conn.llen(HURRY_KEY.format(COALESCE_MATCH)) == 1  # intake cut the window short
    worker = threading.Thread(target=matching_jobs.match_pending, daemon=True)
    worker.start()
    offer = wait_for(
        lambda: api.ok("GET", "/api/offers?status=pending", w["provider_user"]),
        timeout=15,  # half the 30 s window: had the run waited it out, this fails
        what="the emergency's offer well before the batch window ends",
    )
    assert offer[0]["request_id"] == req["id"]
    worker.join(timeout=30)
