"""listeners paging and budgets, responder SLA, shifts, saved replies, alerts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Columns added to existing tables carry server defaults so databases with rows upgrade in place.
    op.create_table('businesshours',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_minute', sa.Integer(), nullable=False),
    sa.Column('end_minute', sa.Integer(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('savedreply',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('reply_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('tone', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('network', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('language', 'reply_type', 'tone', 'network', name='uq_saved_reply_choice')
    )
    op.create_table('slapolicy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('lane', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('business_hours', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'lane', name='uq_sla_policy_channel_lane')
    )
    op.create_table('shift',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_minute', sa.Integer(), nullable=False),
    sa.Column('end_minute', sa.Integer(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shift', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shift_staff_id'), ['staff_id'], unique=False)

    op.create_table('alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=True),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_post_id'), ['post_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_staff_id'), ['staff_id'], unique=False)

    op.create_table('slaevent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('post_id', 'kind', 'due_at', name='uq_sla_event_post_kind_due')
    )
    with op.batch_alter_table('slaevent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slaevent_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_slaevent_post_id'), ['post_id'], unique=False)

    op.create_table('satisfaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('reply_id', sa.Integer(), nullable=True),
    sa.Column('asked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('answered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('answer_post_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['answer_post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['reply_id'], ['reply.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('post_id')
    )
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('promised_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('held_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_post_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_post_held_since'), ['held_since'], unique=False)

    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='answer'))
        batch_op.add_column(sa.Column('flag', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('provenance', sa.JSON(), nullable=True))

    with op.batch_alter_table('sourcecursor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paging', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('rate_limits', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('budget_month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('month_posts_read', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('month_requests', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('throttled', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))

    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skills', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False, server_default=''))

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('skills')

    with op.batch_alter_table('sourcecursor', schema=None) as batch_op:
        batch_op.drop_column('throttled')
        batch_op.drop_column('month_requests')
        batch_op.drop_column('month_posts_read')
        batch_op.drop_column('budget_month')
        batch_op.drop_column('rate_limits')
        batch_op.drop_column('paging')

    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.drop_column('provenance')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('flag')
        batch_op.drop_column('kind')

    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_post_held_since'))
        batch_op.drop_index(batch_op.f('ix_post_due_at'))
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('held_since')
        batch_op.drop_column('promised_at')
        batch_op.drop_column('due_at')

    op.drop_table('satisfaction')
    with op.batch_alter_table('slaevent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slaevent_post_id'))
        batch_op.drop_index(batch_op.f('ix_slaevent_kind'))

    op.drop_table('slaevent')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_staff_id'))
        batch_op.drop_index(batch_op.f('ix_alert_post_id'))
        batch_op.drop_index(batch_op.f('ix_alert_kind'))

    op.drop_table('alert')
    with op.batch_alter_table('shift', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shift_staff_id'))

    op.drop_table('shift')
    op.drop_table('slapolicy')
    op.drop_table('savedreply')
    op.drop_table('businesshours')
    # ### end Alembic commands ###
