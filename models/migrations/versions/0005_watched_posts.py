"""watched posts: each post's replies read from its own cursor while it is active

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The Facebook feed walk only finds new posts; comments on older ones are read through this set.
    op.create_table('watched_post',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('network', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('post_external_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('last_activity_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('comments_cursor', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('read_in_run', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('network', 'post_external_id', name='uq_watched_post_network_post')
    )


def downgrade() -> None:
    op.drop_table('watched_post')
