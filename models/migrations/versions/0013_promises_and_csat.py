"""promises from a forecast (their basis on the post, the promised time on each reply), a stop for delay
updates, and satisfaction answers on a 1–5 or 0–10 scale with a comment

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('promise_basis', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('updates_stopped', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.add_column(sa.Column('promised_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table('satisfaction', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scale', sa.Integer(), nullable=False, server_default='5'))
        batch_op.add_column(sa.Column('comment', sa.Text(), nullable=True))
    # Promises made before this version came from the SLA target: say so, and give the automatic messages that
    # made them the time they named (the post's latest promise: the best we know).
    op.execute(
        "UPDATE post SET promise_basis = '{\"source\": \"sla_target\"}' "
        "WHERE promised_at IS NOT NULL AND promise_basis IS NULL"
    )
    op.execute(
        "UPDATE reply SET promised_at = (SELECT post.promised_at FROM post WHERE post.id = reply.post_id) "
        "WHERE kind IN ('ack', 'update') AND promised_at IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('satisfaction', schema=None) as batch_op:
        batch_op.drop_column('comment')
        batch_op.drop_column('scale')
    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.drop_column('promised_at')
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('updates_stopped')
        batch_op.drop_column('promise_basis')
