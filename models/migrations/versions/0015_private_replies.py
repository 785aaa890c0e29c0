"""private replies: a reply to a public comment may go to the commenter's inbox instead (Instagram)

Revision ID: 0015
Revises: 0008
Create Date: 2026-12-06
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0015'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every existing reply went out publicly (or as a DM to a DM): the server default backfills them as not private.
    with op.batch_alter_table('reply') as batch:
        batch.add_column(sa.Column('private', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('reply') as batch:
        batch.drop_column('private')
