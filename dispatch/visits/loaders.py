"""Batch reads by id, so that a list of visits or jobs costs a few queries, not one per row."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlmodel import Session, SQLModel, col, select

T = TypeVar("T", bound=SQLModel)


def _load(session: Session, model: type[T], key: str, ids: Iterable[int | None]) -> dict[int, T]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    column = col(getattr(model, key))
    return {getattr(row, key): row for row in session.exec(select(model).where(column.in_(wanted)))}


def by_id(session: Session, model: type[T], ids: Iterable[int | None]) -> dict[int, T]:
    return _load(session, model, "id", ids)


def by_request(session: Session, model: type[T], request_ids: Iterable[int | None]) -> dict[int, T]:
    """Rows of a table with a unique `request_id` (visits, departures, feedback)."""
    return _load(session, model, "request_id", request_ids)
