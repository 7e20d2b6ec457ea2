"""field and visits: where a visit must happen, review state, corrections, departures

Revision ID: 0006
Revises: 0007
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dispatch.core.types


revision: str = '0006'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('visit') as batch:
        batch.add_column(sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='elder_home'))
        batch.add_column(sa.Column('place_lat', sa.Float(), nullable=True))
        batch.add_column(sa.Column('place_lon', sa.Float(), nullable=True))
        batch.add_column(sa.Column('flagged', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('review', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False, server_default='clean'))
        batch.create_index('ix_visit_flagged', ['flagged'], unique=False)
        batch.create_index('ix_visit_review', ['review'], unique=False)
    # Visits recorded before this revision: a non-empty flag list is an open flag.
    flags_text = "CAST(flags AS TEXT)" if op.get_bind().dialect.name == "postgresql" else "flags"
    op.execute(
        f"UPDATE visit SET flagged = {'true' if op.get_bind().dialect.name == 'postgresql' else '1'}, "
        f"review = 'open' WHERE flags IS NOT NULL AND {flags_text} NOT IN ('[]', 'null')"
    )

    op.create_table('visit_correction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('corrected_check_in_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('corrected_check_out_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('flags_reviewed', sa.JSON().with_variant(sa.JSON(none_as_null=True), 'postgresql'), nullable=False),
    sa.Column('verified_before', sa.Boolean(), nullable=False),
    sa.Column('verified_after', sa.Boolean(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', dispatch.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('visit_correction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_correction_visit_id'), ['visit_id'], unique=False)
    _append_only('visit_correction')

    op.create_table('visit_departure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('caregiver_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('eta_minutes', sa.Integer(), nullable=True),
    sa.Column('at', dispatch.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['caregiver_id'], ['caregiver.id'], ),
    sa.ForeignKeyConstraint(['provider_id'], ['provider.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['service_request.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id')
    )


def _append_only(table: str) -> None:
    """Corrections are evidence: the database itself refuses to change or delete one.
    (TRUNCATE stays possible, as for every table the tests empty between runs.)"""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
        return
    op.execute(
        f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
    )


def downgrade() -> None:
    op.drop_table('visit_departure')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS visit_correction_append_only ON visit_correction")
        op.execute("DROP FUNCTION IF EXISTS visit_correction_append_only()")
    with op.batch_alter_table('visit_correction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_correction_visit_id'))
    op.drop_table('visit_correction')
    with op.batch_alter_table('visit') as batch:
        batch.drop_index('ix_visit_review')
        batch.drop_index('ix_visit_flagged')
        batch.drop_column('review')
        batch.drop_column('flagged')
        batch.drop_column('place_lon')
        batch.drop_column('place_lat')
        batch.drop_column('place')
