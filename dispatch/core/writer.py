"""Group commit for the API's short write units of work (an offer's accept or decline).

An endpoint hands its unit of work (a function of a session) to the process's writer and
waits. The writer runs every unit waiting one after the other in ONE transaction, each
inside a SAVEPOINT of its own, commits once, and only then answers each endpoint: with its
result, or with the error its unit raised (that unit's writes rolled back to its savepoint,
the others' kept). So a busy API pays for one write lock, one BEGIN and one COMMIT per batch
instead of per request, and a quiet one answers at once.

The guarantees of a per-request transaction hold: an answer is sent only after its writes
committed; a unit that fails changes nothing; the audit log names each unit's own caller.
If the batch's COMMIT itself fails, each unit is run again alone, so one unit can never take
the others down with it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from sqlmodel import Session

from dispatch.core.audit import ACTOR
from dispatch.core.batching import GroupCommit, each_alone_if_it_fails
from dispatch.core.db import REQUEST_KEY, new_session

T = TypeVar("T")


@dataclass(frozen=True)
class UnitOfWork:
    work: Callable[[Session], Any]
    request: Request | None  # whose unit it is, for the audit log


def _run_unit(session: Session, unit: UnitOfWork) -> Any:
    """One unit inside its savepoint; its error (returned, not raised) if it failed."""
    session.info.pop(ACTOR, None)  # a unit that bound an actor must not lend it to the next
    session.info[REQUEST_KEY] = unit.request
    saved = {key: copy.copy(value) for key, value in session.info.items()}
    try:
        with session.begin_nested():
            return unit.work(session)
    except Exception as exc:  # rolled back to its savepoint: forget what it queued for after commit
        session.info.clear()
        session.info.update(saved)
        # The rollback does not expire what the unit set with set_committed_value (a
        # compare-and-set's new status): the next units must read it again.
        session.expire_all()
        return exc


def _in_one_transaction(units: list[UnitOfWork]) -> list[Any]:
    session = new_session(write=True)
    try:
        results = [_run_unit(session, unit) for unit in units]
        session.commit()
        return results
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def run_units(units: list[UnitOfWork]) -> list[Any]:
    """The units' results (or errors), in order, once committed."""
    return each_alone_if_it_fails(units, _in_one_transaction, "units of work")


class WriteBatcher(GroupCommit[UnitOfWork, Any]):
    def _write(self, items: list[UnitOfWork]) -> list[Any]:
        return run_units(items)

    async def run(self, work: Callable[[Session], T], request: Request | None) -> T:
        """Run `work` in the next batch: its result once committed, or its error."""
        result: T = await self.submit(UnitOfWork(work, request))
        return result


def writer_of(request: Request) -> WriteBatcher:
    writer: WriteBatcher = request.app.state.writer
    return writer
