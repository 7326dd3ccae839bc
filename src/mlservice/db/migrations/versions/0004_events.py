"""events: the event log behind security monitoring

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 05:27:23.514279
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import mlservice.db.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', mlservice.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('type', sa.String(length=48), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('auth_kind', sa.String(length=16), nullable=True),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('client_ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('method', sa.String(length=8), nullable=True),
    sa.Column('path', sa.String(length=300), nullable=True),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=True),
    sa.Column('job_id', sa.String(length=32), nullable=True),
    sa.Column('model_key', sa.String(length=100), nullable=True),
    sa.Column('model_version', sa.String(length=32), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('input_summary', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('output_summary', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('suspicious', sa.Boolean(), nullable=False),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_events_ip_created', ['client_ip', 'created_at'], unique=False)
        batch_op.create_index('ix_events_job_id', ['job_id'], unique=False)
        batch_op.create_index('ix_events_model_created', ['model_key', 'created_at'], unique=False)
        batch_op.create_index('ix_events_suspicious_created', ['suspicious', 'created_at'], unique=False)
        batch_op.create_index('ix_events_token_ip', ['token_id', 'client_ip'], unique=False)
        batch_op.create_index('ix_events_type_created', ['type', 'created_at'], unique=False)
        batch_op.create_index('ix_events_user_created', ['user_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_user_created')
        batch_op.drop_index('ix_events_type_created')
        batch_op.drop_index('ix_events_token_ip')
        batch_op.drop_index('ix_events_suspicious_created')
        batch_op.drop_index('ix_events_model_created')
        batch_op.drop_index('ix_events_job_id')
        batch_op.drop_index('ix_events_ip_created')
        batch_op.drop_index('ix_events_created_at')

    op.drop_table('events')
