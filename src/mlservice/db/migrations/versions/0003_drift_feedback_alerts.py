"""drift reports, daily runs, feedback and alerts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 05:21:44.081056
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import mlservice.db.base

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('drift_daily_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_key', sa.String(length=100), nullable=False),
    sa.Column('run_date', sa.Date(), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', mlservice.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drift_daily_runs')),
    sa.UniqueConstraint('model_key', 'run_date', name='uq_drift_daily_runs_model_day')
    )
    op.create_table('drift_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_key', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=True),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('window_start', mlservice.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('window_end', mlservice.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verdict', sa.String(length=32), nullable=False),
    sa.Column('sample_size', sa.Integer(), nullable=False),
    sa.Column('drifted_share', sa.Float(), nullable=False),
    sa.Column('report', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('created_at', mlservice.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drift_reports'))
    )
    with op.batch_alter_table('drift_reports', schema=None) as batch_op:
        batch_op.create_index('ix_drift_reports_model_created', ['model_key', 'created_at'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('model_key', sa.String(length=100), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('link', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('admin_only', sa.Boolean(), nullable=False),
    sa.Column('first_seen_at', mlservice.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', mlservice.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', mlservice.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['users.id'], name=op.f('fk_alerts_acknowledged_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_model_key'), ['model_key'], unique=False)
        batch_op.create_index('ix_alerts_status_last_seen', ['status', 'last_seen_at'], unique=False)
        batch_op.create_index('uq_alerts_open_dedup_key', ['dedup_key'], unique=True, sqlite_where=sa.text("status != 'resolved'"), postgresql_where=sa.text("status != 'resolved'"))

    op.create_table('prediction_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('model_key', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('row_index', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('predicted', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', mlservice.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_prediction_feedback_job_id_jobs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_prediction_feedback_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prediction_feedback')),
    sa.UniqueConstraint('job_id', 'row_index', name='uq_prediction_feedback_job_row')
    )
    with op.batch_alter_table('prediction_feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prediction_feedback_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_prediction_feedback_model_key'), ['model_key'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('prediction_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prediction_feedback_model_key'))
        batch_op.drop_index(batch_op.f('ix_prediction_feedback_job_id'))

    op.drop_table('prediction_feedback')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_open_dedup_key', sqlite_where=sa.text("status != 'resolved'"), postgresql_where=sa.text("status != 'resolved'"))
        batch_op.drop_index('ix_alerts_status_last_seen')
        batch_op.drop_index(batch_op.f('ix_alerts_model_key'))

    op.drop_table('alerts')
    with op.batch_alter_table('drift_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_drift_reports_model_created')

    op.drop_table('drift_reports')
    op.drop_table('drift_daily_runs')
