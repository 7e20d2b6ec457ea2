"""Alembic environment: the same migrations run on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

# Every table module, so that autogenerate sees the whole schema.
import dispatch.core.audit  # noqa: F401
import dispatch.core.auth  # noqa: F401
import dispatch.core.events  # noqa: F401
import dispatch.core.outbox  # noqa: F401
import dispatch.elders.models  # noqa: F401
import dispatch.matching.models  # noqa: F401  (matching, issue 8)
import dispatch.notify.models  # noqa: F401
import dispatch.orders.models  # noqa: F401
import dispatch.plans.models  # noqa: F401
import dispatch.stats.models  # noqa: F401
import dispatch.visits.models  # noqa: F401
import dispatch.welfare.models  # noqa: F401
import services.models  # noqa: F401
import hotline.models  # noqa: F401

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool
        )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
