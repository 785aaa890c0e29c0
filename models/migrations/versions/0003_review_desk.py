"""review desk: sign-in columns on staff, presence heartbeats, classifier corrections

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Columns added to existing tables carry server defaults so databases with rows upgrade in place.
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('ui_language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default='es'))

    op.create_table('presence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('mode', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('staff_id', 'post_id', name='uq_presence_staff_post')
    )
    with op.batch_alter_table('presence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_presence_post_id'), ['post_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_presence_seen_at'), ['seen_at'], unique=False)

    op.create_table('correction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('old_value', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('new_value', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('model_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('correction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_correction_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_correction_post_id'), ['post_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('correction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_correction_post_id'))
        batch_op.drop_index(batch_op.f('ix_correction_at'))
    op.drop_table('correction')
    with op.batch_alter_table('presence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_presence_seen_at'))
        batch_op.drop_index(batch_op.f('ix_presence_post_id'))
    op.drop_table('presence')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('ui_language')
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('password_hash')
