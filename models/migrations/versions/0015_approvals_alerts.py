"""approvals (suggested vs submitted answers), alerts pushed to a team chat, desk settings

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The person behind a submission is in its audit line (actor "staff:<id>"); the latest one counts.
_SUBMISSION = (
    "FROM auditevent a WHERE a.reply_id = reply.id AND a.action = 'reply_submitted' AND a.actor LIKE 'staff:%'"
)


def upgrade() -> None:
    # Plain ADD COLUMNs with the reference inline: a batch "move and copy" of reply would have to drop a table
    # that audit lines and satisfaction rows point at, which SQLite refuses with its foreign keys on.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE reply ADD COLUMN submitted_by_id INTEGER REFERENCES staff (id)')
    else:
        op.add_column('reply', sa.Column('submitted_by_id', sa.Integer(), sa.ForeignKey('staff.id'), nullable=True))
    op.add_column('reply', sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_index(op.f('ix_reply_submitted_by_id'), 'reply', ['submitted_by_id'], unique=False)
    # Backfill: a reply a person submitted keeps who and when; a machine draft nobody submitted was shown as
    # "pending approval" before, and is a suggestion now.
    op.execute(
        f"UPDATE reply SET submitted_by_id = (SELECT CAST(SUBSTR(a.actor, 7) AS INTEGER) {_SUBMISSION} "
        f"ORDER BY a.at DESC, a.id DESC LIMIT 1), submitted_at = (SELECT MAX(a.at) {_SUBMISSION}) "
        f"WHERE EXISTS (SELECT 1 {_SUBMISSION})"
    )
    op.execute("UPDATE reply SET state = 'suggested' WHERE state = 'pending_approval' AND submitted_by_id IS NULL")
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pushed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('push_attempts', sa.Integer(), nullable=False, server_default='0'))
    # Alerts from before the team-chat hook existed are not pushed into a chat the day it is switched on.
    op.execute("UPDATE alert SET pushed_at = created_at")
    op.create_table('desk_setting',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('desk_setting')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_column('push_attempts')
        batch_op.drop_column('pushed_at')
    op.execute("UPDATE reply SET state = 'pending_approval' WHERE state = 'suggested'")
    op.drop_index(op.f('ix_reply_submitted_by_id'), table_name='reply')
    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.drop_column('submitted_at')
        batch_op.drop_column('submitted_by_id')
