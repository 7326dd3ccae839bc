"""jobs.heartbeat_at and jobs.worker: distributed mode detects jobs whose worker was lost

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 05:51:49.592842
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mlservice.db.base

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', mlservice.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('worker', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('worker')
        batch_op.drop_column('heartbeat_at')
