"""The shared SMS send job (workers/notify.py: send_pending_sms): one run sends every due
message, a failure waits its retry delay, a message left `sending` by a dead job is sent
again, and two runs at once never send a message twice."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select
from twilio.http.response import Response

from dispatch.core.clock import utcnow
from dispatch.core.db import session_scope
from dispatch.core.outbox import OutboxJob
from dispatch.notify import service as notify_service
from dispatch.notify.models import Message, OwedText
from dispatch.notify.service import queue_sms
from hotline.gateway import TwilioGateway
from tests.helpers import drain_jobs
from tests.hotline.test_gateway import ACCOUNT_SID, RecordingHttpClient, _settings


class Twilio(RecordingHttpClient):
    """Each message gets its own SID; the bodies listed in `fail` get a 503 from 'Twilio'."""

    def __init__(self, fail: set[str] | None = None) -> None:
        super().__init__()
        self.fail = fail or set()
        self.lock = threading.Lock()

    def request(self, method: str, uri: str, params: Any = None, data: Any = None, **kw: Any) -> Response:  # type: ignore[override]
        with self.lock:
            self.requests.append({"data": data})
            n = len(self.requests)
        if data and data.get("Body") in self.fail:
            return Response(503, json.dumps({"code": 20500, "message": "Service unavailable"}))
        return Response(
            201, json.dumps({"sid": f"SM{n:032x}", "status": "queued", "account_sid": ACCOUNT_SID})
        )


def _queue(n: int, prefix: str = "短信") -> list[int]:
    with session_scope() as session:
        ids = [
            queue_sms(
                session, to=f"+86139000{i:05d}", body=f"{prefix}{i}", purpose="assigned", audience="family"
            ).id
            for i in range(n)
        ]
    return [i for i in ids if i is not None]


def _statuses() -> dict[str, int]:
    with session_scope(write=False) as session:
        out: dict[str, int] = {}
        for m in session.exec(select(Message)):
            out[m.status] = out.get(m.status, 0) + 1
        return out


def test_one_transaction_of_messages_owes_one_send_run_which_sends_them_all(env: dict[str, str]) -> None:
    with session_scope(write=False) as session:
        before = len(session.exec(select(OutboxJob)).all())
    _queue(30)
    with session_scope(write=False) as session:
        assert len(session.exec(select(OutboxJob)).all()) - before == 1
    drain_jobs()  # real RQ workers
    assert _statuses() == {"outbox_only": 30}
    from workers.notify import send_pending_sms

    assert send_pending_sms()["outbox_only"] == 0  # a second run finds nothing to send


def test_a_failed_send_waits_its_delay_then_goes_out(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import notify

    http = Twilio(fail={"短信1"})
    monkeypatch.setattr(notify, "get_gateway", lambda: TwilioGateway(_settings(), http_client=http))
    ids = _queue(3)
    totals = notify.send_pending_sms()
    assert (totals["sent"], totals["retry"]) == (2, 1)
    assert notify.send_pending_sms()["sent"] == 0  # not due yet: nothing is sent again
    assert len(http.requests) == 3
    http.fail.clear()
    with session_scope() as session:  # its retry delay has passed
        session.execute(
            update(Message)
            .where(col(Message.id) == ids[1])
            .values(updated_at=utcnow() - timedelta(seconds=10))
        )
    assert notify.send_pending_sms()["sent"] == 1
    assert _statuses() == {"sent": 3}
    with session_scope(write=False) as session:
        assert session.get(Message, ids[1]).attempts == 2  # type: ignore[union-attr]


def test_a_message_that_keeps_failing_is_given_up_after_its_attempts(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import notify

    http = Twilio(fail={"短信0"})
    monkeypatch.setattr(notify, "get_gateway", lambda: TwilioGateway(_settings(), http_client=http))
    (message_id,) = _queue(1)
    for _ in range(notify_service.MAX_ATTEMPTS):
        with session_scope() as session:
            session.execute(
                update(Message)
                .where(col(Message.id) == message_id)
                .values(updated_at=utcnow() - timedelta(hours=1))
            )
        notify.send_pending_sms()
    assert _statuses() == {"failed": 1}
    assert len(http.requests) == notify_service.MAX_ATTEMPTS


def test_a_message_left_sending_by_a_dead_job_is_sent_by_the_sweeper(env: dict[str, str]) -> None:
    from workers import maintenance

    (message_id,) = _queue(1)
    with session_scope() as session:  # a job claimed it, then died before recording anything
        assert notify_service.claim_batch(session, limit=10)
        session.execute(
            update(Message)
            .where(col(Message.id) == message_id)
            .values(updated_at=utcnow() - timedelta(minutes=5))
        )
    from workers.notify import send_pending_sms

    assert send_pending_sms()["outbox_only"] == 0  # still `sending`: a live run leaves it alone
    maintenance.sweep()
    drain_jobs()
    assert _statuses() == {"outbox_only": 1}


def test_two_runs_at_once_send_each_message_once(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import notify

    http = Twilio()
    monkeypatch.setattr(notify, "get_gateway", lambda: TwilioGateway(_settings(), http_client=http))
    _queue(60)
    runs = [threading.Thread(target=notify.send_pending_sms) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=120)
    bodies = [r["data"]["Body"] for r in http.requests]
    assert sorted(bodies) == sorted(f"短信{i}" for i in range(60))  # each once, none missing
    assert _statuses() == {"sent": 60}


def test_texts_queued_in_bulk_are_stored_as_the_model_would_build_them(env: dict[str, str]) -> None:
    """queue_sms_many writes its rows by hand (Core, from plain OwedText records): every column,
    the model's defaults included, is what a Message built through the model would hold."""
    texts = [
        OwedText("+8613900000001", "长" * 500, "offer", "provider", None, None, None),
        OwedText("+8613900000002", "短信", "reply", "family"),
    ]
    with session_scope() as session:
        notify_service.queue_sms_many(session, texts)
    assert all(t.id is not None for t in texts)
    with session_scope(write=False) as session:
        for text in texts:
            stored = session.get(Message, text.id)
            assert stored is not None
            built = Message(
                to_phone=text.to_phone,
                body=text.body[:480],
                purpose=text.purpose,
                audience=text.audience,
                request_id=text.request_id,
                elder_id=text.elder_id,
                provider_id=text.provider_id,
            )
            skip = {"id", "created_at", "updated_at"}
            assert stored.model_dump(exclude=skip) == built.model_dump(exclude=skip)
            assert stored.created_at == stored.updated_at and abs(stored.created_at - utcnow()) < timedelta(
                minutes=1
            )
