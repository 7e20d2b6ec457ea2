"""service_request: the capacity in use read by index ranges, not walks of the history:
(provider_id, status, window_start) of the requests with a provider in place of provider_id's
index, and window_start of the completed ones

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-06 19:40:00

A provider's capacity in use (dispatch/matching/capacity.py load_holdings for a few providers:
the matcher's check under the write lock, an accept's caregiver check, a direct order) was read
through the status index, or the provider_id one, walking either every open job of the district
or every request a provider ever had. With 30,000 open jobs and 120,000 completed ones of past
days, reading 40 providers took 42 ms; with this index 9.5 ms (the bench's own phases, which have
no history, see no difference). Partial: a request has a provider from its assignment on, so
intake and offers never write to it; it serves every lookup by provider_id the old one did.

Every provider's capacity in use (the matcher's snapshot) walked every request ever completed
to keep those whose day still counts (the status index orders them by creation, not by
window): the same district, 82-94 ms; with the completed ones' window index 55-60 ms, the rest
being the 30,000 open jobs. A request enters this index once, when completed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_request_provider_status',
        'service_request',
        ['provider_id', 'status', 'window_start'],
        unique=False,
        sqlite_where=sa.text('provider_id IS NOT NULL'),
        postgresql_where=sa.text('provider_id IS NOT NULL'),
    )
    op.drop_index('ix_service_request_provider_id', table_name='service_request')
    op.create_index(
        'ix_request_completed_window',
        'service_request',
        ['window_start'],
        unique=False,
        sqlite_where=sa.text("status = 'completed'"),
        postgresql_where=sa.text("status = 'completed'"),
    )


def downgrade() -> None:
    op.drop_index('ix_request_completed_window', table_name='service_request')
    op.create_index('ix_service_request_provider_id', 'service_request', ['provider_id'], unique=False)
    op.drop_index('ix_request_provider_status', table_name='service_request')
