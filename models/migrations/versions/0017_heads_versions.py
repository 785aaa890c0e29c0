"""head versions refitted on staff corrections, and the refit job's attempts

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('heads_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('base_model', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('weights', sa.LargeBinary(), nullable=False),
    sa.Column('temperatures', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('previous_id', sa.Integer(), nullable=True),
    sa.Column('n_corrections', sa.Integer(), nullable=False),
    sa.Column('last_correction_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('retired_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['previous_id'], ['heads_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_heads_version_active'), 'heads_version', ['active'], unique=False)
    op.create_index(op.f('ix_heads_version_base_model'), 'heads_version', ['base_model'], unique=False)
    op.create_table('refit_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('base_model', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('n_corrections', sa.Integer(), nullable=False),
    sa.Column('new_corrections', sa.Integer(), nullable=False),
    sa.Column('last_correction_id', sa.Integer(), nullable=False),
    sa.Column('old_model_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('new_model_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('heads_version_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['heads_version_id'], ['heads_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_refit_attempt_started_at'), 'refit_attempt', ['started_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_refit_attempt_started_at'), table_name='refit_attempt')
    op.drop_table('refit_attempt')
    op.drop_index(op.f('ix_heads_version_base_model'), table_name='heads_version')
    op.drop_index(op.f('ix_heads_version_active'), table_name='heads_version')
    op.drop_table('heads_version')
