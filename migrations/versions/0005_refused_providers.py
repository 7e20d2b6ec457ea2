"""matching: providers an elder refused

Revision ID: 0005
Revises: 0006
Create Date: 2026-12-02 14:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dispatch.core.types


revision: str = '0005'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'refused_provider',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('elder_id', sa.Integer(), nullable=False),
        sa.Column('provider_id', sa.Integer(), nullable=False),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['user_account.id']),
        sa.ForeignKeyConstraint(['elder_id'], ['elder.id']),
        sa.ForeignKeyConstraint(['provider_id'], ['provider.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('elder_id', 'provider_id', name='uq_refused_provider'),
    )
    with op.batch_alter_table('refused_provider') as batch:
        batch.create_index('ix_refused_provider_elder_id', ['elder_id'], unique=False)
        batch.create_index('ix_refused_provider_provider_id', ['provider_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('refused_provider') as batch:
        batch.drop_index('ix_refused_provider_provider_id')
        batch.drop_index('ix_refused_provider_elder_id')
    op.drop_table('refused_provider')
