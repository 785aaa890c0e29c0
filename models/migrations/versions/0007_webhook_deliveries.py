"""webhook deliveries: the log that makes a redelivered webhook a no-op

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written in the same transaction as a delivery's posts: a delivery is stored once, whatever the retries.
    op.create_table('webhookdelivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('network', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('delivery_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('posts', sa.Integer(), nullable=False),
    sa.Column('inserted', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('network', 'delivery_id', name='uq_webhook_delivery_network_id')
    )
    op.create_index('ix_webhookdelivery_received_at', 'webhookdelivery', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhookdelivery_received_at', table_name='webhookdelivery')
    op.drop_table('webhookdelivery')
