"""sign-in attempts by client address

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The sign-in throttle counts failures per client address (a hash of it) instead of over everyone.
    with op.batch_alter_table('auditevent') as batch:
        batch.add_column(sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.create_index('ix_auditevent_client', 'auditevent', ['client'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_auditevent_client', table_name='auditevent')
    with op.batch_alter_table('auditevent') as batch:
        batch.drop_column('client')
