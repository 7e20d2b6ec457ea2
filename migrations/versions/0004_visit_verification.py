"""visit verification: device clocks, outcome, verified

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dispatch.core.types


revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('visit') as batch:
        batch.add_column(sa.Column('check_in_device_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('check_out_device_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='completed'))
        batch.add_column(sa.Column('verified', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index('ix_visit_verified', ['verified'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('visit') as batch:
        batch.drop_index('ix_visit_verified')
        batch.drop_column('verified')
        batch.drop_column('outcome')
        batch.drop_column('check_out_device_at')
        batch.drop_column('check_in_device_at')
