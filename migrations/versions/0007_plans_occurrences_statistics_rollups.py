"""recurring service plans, their occurrences (one request per plan and day), statistics rollups

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-02 14:20:10.372856
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dispatch.core.types


revision: str = '0007'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stats_day_cell',
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('st_queued', sa.Integer(), nullable=False),
    sa.Column('st_offered', sa.Integer(), nullable=False),
    sa.Column('st_assigned', sa.Integer(), nullable=False),
    sa.Column('st_in_service', sa.Integer(), nullable=False),
    sa.Column('st_completed', sa.Integer(), nullable=False),
    sa.Column('st_escalated', sa.Integer(), nullable=False),
    sa.Column('st_cancelled', sa.Integer(), nullable=False),
    sa.Column('ch_hotline', sa.Integer(), nullable=False),
    sa.Column('ch_app', sa.Integer(), nullable=False),
    sa.Column('ch_ivr', sa.Integer(), nullable=False),
    sa.Column('ch_sms', sa.Integer(), nullable=False),
    sa.Column('ch_scheduled', sa.Integer(), nullable=False),
    sa.Column('escalated', sa.Integer(), nullable=False),
    sa.Column('esc_all_declined', sa.Integer(), nullable=False),
    sa.Column('esc_not_placed_in_time', sa.Integer(), nullable=False),
    sa.Column('esc_no_provider_in_range', sa.Integer(), nullable=False),
    sa.Column('esc_none_open', sa.Integer(), nullable=False),
    sa.Column('esc_no_skilled_provider', sa.Integer(), nullable=False),
    sa.Column('esc_all_full', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=False),
    sa.Column('visits', sa.Integer(), nullable=False),
    sa.Column('failed_not_home', sa.Integer(), nullable=False),
    sa.Column('failed_refused', sa.Integer(), nullable=False),
    sa.Column('failed_in_hospital', sa.Integer(), nullable=False),
    sa.Column('failed_other', sa.Integer(), nullable=False),
    sa.Column('busy_seconds', sa.Float(), nullable=False),
    sa.Column('ratings', sa.Integer(), nullable=False),
    sa.Column('rating_sum', sa.Integer(), nullable=False),
    sa.Column('complaints', sa.Integer(), nullable=False),
    sa.Column('assign_seconds', sa.Text(), nullable=False),
    sa.Column('arrival_seconds', sa.Text(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('township', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stats_day_cell', schema=None) as batch_op:
        batch_op.create_index('uq_stats_day_cell', ['day', 'township', 'kind'], unique=True)

    op.create_table('stats_rolled_day',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('computed_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('stats_provider_day',
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('st_queued', sa.Integer(), nullable=False),
    sa.Column('st_offered', sa.Integer(), nullable=False),
    sa.Column('st_assigned', sa.Integer(), nullable=False),
    sa.Column('st_in_service', sa.Integer(), nullable=False),
    sa.Column('st_completed', sa.Integer(), nullable=False),
    sa.Column('st_escalated', sa.Integer(), nullable=False),
    sa.Column('st_cancelled', sa.Integer(), nullable=False),
    sa.Column('ch_hotline', sa.Integer(), nullable=False),
    sa.Column('ch_app', sa.Integer(), nullable=False),
    sa.Column('ch_ivr', sa.Integer(), nullable=False),
    sa.Column('ch_sms', sa.Integer(), nullable=False),
    sa.Column('ch_scheduled', sa.Integer(), nullable=False),
    sa.Column('escalated', sa.Integer(), nullable=False),
    sa.Column('esc_all_declined', sa.Integer(), nullable=False),
    sa.Column('esc_not_placed_in_time', sa.Integer(), nullable=False),
    sa.Column('esc_no_provider_in_range', sa.Integer(), nullable=False),
    sa.Column('esc_none_open', sa.Integer(), nullable=False),
    sa.Column('esc_no_skilled_provider', sa.Integer(), nullable=False),
    sa.Column('esc_all_full', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=False),
    sa.Column('visits', sa.Integer(), nullable=False),
    sa.Column('failed_not_home', sa.Integer(), nullable=False),
    sa.Column('failed_refused', sa.Integer(), nullable=False),
    sa.Column('failed_in_hospital', sa.Integer(), nullable=False),
    sa.Column('failed_other', sa.Integer(), nullable=False),
    sa.Column('busy_seconds', sa.Float(), nullable=False),
    sa.Column('ratings', sa.Integer(), nullable=False),
    sa.Column('rating_sum', sa.Integer(), nullable=False),
    sa.Column('complaints', sa.Integer(), nullable=False),
    sa.Column('assign_seconds', sa.Text(), nullable=False),
    sa.Column('arrival_seconds', sa.Text(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['provider.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stats_provider_day', schema=None) as batch_op:
        batch_op.create_index('uq_stats_provider_day', ['day', 'provider_id'], unique=True)

    op.create_table('service_plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('weekdays', sa.JSON().with_variant(sa.JSON(none_as_null=True), 'postgresql'), nullable=False),
    sa.Column('every_days', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(sa.JSON(none_as_null=True), 'postgresql'), nullable=False),
    sa.Column('start_time', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
    sa.Column('end_time', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('status_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['elder_id'], ['elder.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('service_plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_plan_elder_id'), ['elder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_service_plan_status'), ['status'], unique=False)

    op.create_table('plan_occurrence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('occurs_on', sa.Date(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('created_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['service_plan.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['service_request.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plan_id', 'occurs_on', name='uq_plan_occurrence'),
    sa.UniqueConstraint('request_id')
    )
    with op.batch_alter_table('plan_occurrence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_occurrence_occurs_on'), ['occurs_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_plan_occurrence_plan_id'), ['plan_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('plan_occurrence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_occurrence_plan_id'))
        batch_op.drop_index(batch_op.f('ix_plan_occurrence_occurs_on'))

    op.drop_table('plan_occurrence')
    with op.batch_alter_table('service_plan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_plan_status'))
        batch_op.drop_index(batch_op.f('ix_service_plan_elder_id'))

    op.drop_table('service_plan')
    with op.batch_alter_table('stats_provider_day', schema=None) as batch_op:
        batch_op.drop_index('uq_stats_provider_day')

    op.drop_table('stats_provider_day')
    op.drop_table('stats_rolled_day')
    with op.batch_alter_table('stats_day_cell', schema=None) as batch_op:
        batch_op.drop_index('uq_stats_day_cell')

    op.drop_table('stats_day_cell')
