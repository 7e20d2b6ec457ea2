"""Which savepoint a piece of a transaction's state belongs to.

What a unit of work queues for after its commit (outbox rows, the event-order lock) is kept in
`session.info`; a ROLLBACK TO SAVEPOINT undoes what was done inside that savepoint, so the
listeners forget exactly what was recorded in it or in a savepoint opened inside it."""

from __future__ import annotations

from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction


def current_savepoint(session: OrmSession) -> SessionTransaction | None:
    """The innermost transaction now open: the savepoint, else the transaction itself."""
    return session.get_nested_transaction() or session.get_transaction()


def within(savepoint: SessionTransaction | None, outer: SessionTransaction) -> bool:
    """Whether `savepoint` is `outer` or was opened inside it."""
    transaction = savepoint
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False
