"""Bulk inserts with their new keys (dispatch/core/inserts.py): on SQLite the keys are drawn
by the writer under the write lock and inserted with the rows in one executemany, elsewhere
returned by INSERT ... RETURNING. Either way each key is the stored row's, in the order of the
rows; an AUTOINCREMENT table (events) never draws a key again, even once the newest rows are
gone; and writers at once never draw the same key."""

from __future__ import annotations

import threading

from sqlalchemy import delete, select

from dispatch.core.clock import utcnow
from dispatch.core.db import session_scope
from dispatch.core.events import Event
from dispatch.core.inserts import insert_returning_keys
from dispatch.notify.models import Message, OwedText
from dispatch.notify.service import message_row

EVENTS = Event.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]


def _event(kind: str) -> dict[str, object]:
    return {
        "type": kind,
        "request_id": None,
        "elder_id": None,
        "provider_id": None,
        "status": None,
        "at": utcnow(),
        "data": {},
    }


def _message(body: str) -> dict[str, object]:
    return message_row(OwedText("+8613900000001", body, "reply", "family"), utcnow())


def _stored_events() -> dict[int, str]:
    with session_scope(write=False) as session:
        return {int(row[0]): str(row[1]) for row in session.execute(select(EVENTS.c.seq, EVENTS.c.type))}


def test_each_key_is_its_rows_in_the_order_of_the_rows() -> None:
    kinds = [f"test.k{i}" for i in (5, 1, 4, 2, 3)]
    with session_scope() as session:
        assert insert_returning_keys(session.connection(), EVENTS, []) == []
        keys = insert_returning_keys(session.connection(), EVENTS, [_event(k) for k in kinds])
    assert len(set(keys)) == 5 and keys == sorted(keys)
    stored = _stored_events()
    assert [stored[k] for k in keys] == kinds
    with session_scope() as session:
        more = insert_returning_keys(session.connection(), MESSAGES, [_message(b) for b in "xyz"])
    with session_scope(write=False) as session:
        bodies = dict(session.execute(select(MESSAGES.c.id, MESSAGES.c.body)).all())
    assert [bodies[k] for k in more] == ["x", "y", "z"]


def test_an_autoincrement_table_never_draws_a_key_again() -> None:
    with session_scope() as session:
        first = insert_returning_keys(session.connection(), EVENTS, [_event("test.a") for _ in range(3)])
    with session_scope() as session:  # the newest rows go (retention), their seqs must stay used
        session.execute(delete(Event).where(EVENTS.c.seq.in_(first)))
    with session_scope() as session:
        again = insert_returning_keys(session.connection(), EVENTS, [_event("test.b") for _ in range(2)])
    assert min(again) > max(first)
    # A table without AUTOINCREMENT continues after its largest key.
    with session_scope() as session:
        keys = insert_returning_keys(session.connection(), MESSAGES, [_message("m")])
    with session_scope() as session:
        assert insert_returning_keys(session.connection(), MESSAGES, [_message("n")]) == [keys[0] + 1]


def test_writers_at_once_never_draw_the_same_key() -> None:
    errors: list[BaseException] = []
    drawn: dict[int, str] = {}
    guard = threading.Lock()

    def writer(name: str) -> None:
        try:
            for batch in range(15):
                kinds = [f"test.{name}.{batch}.{i}" for i in range(7)]
                with session_scope() as session:
                    keys = insert_returning_keys(session.connection(), EVENTS, [_event(k) for k in kinds])
                with guard:
                    for key, kind in zip(keys, kinds, strict=True):
                        assert key not in drawn, f"key {key} drawn twice"
                        drawn[key] = kind
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(drawn) == 3 * 15 * 7
    stored = _stored_events()
    assert all(stored[key] == kind for key, kind in drawn.items())
