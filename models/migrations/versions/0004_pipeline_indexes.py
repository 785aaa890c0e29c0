"""pipeline indexes: replies waiting for their parent, answers in flight

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNLINKED = "parent_id IS NULL"
IN_FLIGHT = "kind = 'answer' AND state IN ('approved', 'sending', 'sent')"


def upgrade() -> None:
    # Thread linking after every stored page read the whole post table; it now probes this index by value.
    op.create_index('ix_post_unlinked_reply', 'post', ['in_reply_to_external_id'], unique=False,
                    postgresql_where=sa.text(UNLINKED), sqlite_where=sa.text(UNLINKED))
    # The SLA and care sweeps' "answer approved, sending or sent?" checks scanned all of reply.
    op.create_index('ix_reply_answer_in_flight', 'reply', ['post_id'], unique=False,
                    postgresql_where=sa.text(IN_FLIGHT), sqlite_where=sa.text(IN_FLIGHT))


def downgrade() -> None:
    op.drop_index('ix_reply_answer_in_flight', table_name='reply')
    op.drop_index('ix_post_unlinked_reply', table_name='post')
