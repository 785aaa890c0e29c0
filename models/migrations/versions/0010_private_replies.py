"""private replies: a reply to a public comment may go to the commenter's inbox instead (Instagram); network ids
up to 255 characters (Instagram's message ids run to about 150)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every existing reply went out publicly (or as a DM to a DM): the server default backfills them as not private.
    with op.batch_alter_table('reply') as batch:
        batch.add_column(sa.Column('private', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.alter_column('external_id', type_=sqlmodel.sql.sqltypes.AutoString(length=255),
                           existing_type=sqlmodel.sql.sqltypes.AutoString(length=128), existing_nullable=True)
    # Widening keeps every stored id as it is.
    with op.batch_alter_table('post') as batch:
        batch.alter_column('external_id', type_=sqlmodel.sql.sqltypes.AutoString(length=255),
                           existing_type=sqlmodel.sql.sqltypes.AutoString(length=128), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('post') as batch:
        batch.alter_column('external_id', type_=sqlmodel.sql.sqltypes.AutoString(length=128),
                           existing_type=sqlmodel.sql.sqltypes.AutoString(length=255), existing_nullable=False)
    with op.batch_alter_table('reply') as batch:
        batch.alter_column('external_id', type_=sqlmodel.sql.sqltypes.AutoString(length=128),
                           existing_type=sqlmodel.sql.sqltypes.AutoString(length=255), existing_nullable=True)
        batch.drop_column('private')
