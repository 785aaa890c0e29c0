"""conversations (the unit staff work on), post.conversation_ref, internal notes; existing posts backfilled

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy of models.conversations' rules as they were when this migration was written: a migration must keep
# doing what it did, whatever the application code becomes later.
OWN_KINDS = ('own', 'page_post')
OPEN = ('new', 'scored', 'assigned')
BATCH = 5000

_dt = sqlmodel.sql.sqltypes.UTCDateTime()
post = sa.table(
    'post',
    sa.column('id', sa.Integer()), sa.column('network', sa.String()), sa.column('kind', sa.String()),
    sa.column('is_public', sa.Boolean()), sa.column('external_id', sa.String()),
    sa.column('conversation_id', sa.String()), sa.column('in_reply_to_external_id', sa.String()),
    sa.column('author_id', sa.Integer()), sa.column('created_at', _dt), sa.column('status', sa.String()),
    sa.column('needs_response', sa.Boolean()), sa.column('assignee_id', sa.Integer()),
    sa.column('conversation_ref', sa.Integer()),
)
author = sa.table('author', sa.column('id', sa.Integer()), sa.column('external_id', sa.String()))
conversation = sa.table(
    'conversation',
    sa.column('id', sa.Integer()), sa.column('network', sa.String()), sa.column('kind', sa.String()),
    sa.column('thread_key', sa.String()), sa.column('author_id', sa.Integer()), sa.column('assignee_id', sa.Integer()),
    sa.column('status', sa.String()), sa.column('first_unanswered_at', _dt), sa.column('last_message_at', _dt),
    sa.column('created_at', _dt),
)


def _key(row: Any) -> tuple[str, str]:
    if not row.is_public or row.kind == 'dm':
        if row.author_ext:
            return 'dm', f'dm:{row.author_ext}'
        if row.conversation_id:
            return 'dm', f'dm:c:{row.conversation_id}'
        return 'dm', f'dm:p:{row.external_id}'
    root = row.conversation_id or row.in_reply_to_external_id or row.external_id
    return 'public', f"pub:{root}:{row.author_ext or '?' + row.external_id}"


def _backfill() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            post.c.id, post.c.network, post.c.kind, post.c.is_public, post.c.external_id, post.c.conversation_id,
            post.c.in_reply_to_external_id, post.c.author_id, author.c.external_id.label('author_ext'),
            post.c.created_at, post.c.status, post.c.needs_response, post.c.assignee_id,
        )
        .select_from(post.outerjoin(author, author.c.id == post.c.author_id))
        .order_by(post.c.id)
    ).all()
    now = datetime.now(UTC)
    convs: dict[tuple[str, str], dict[str, Any]] = {}
    member: dict[int, tuple[str, str]] = {}
    by_external: dict[tuple[str, str], tuple[str, str]] = {}
    by_dm_thread: dict[tuple[str, str], tuple[str, str]] = {}
    for row in rows:
        if row.kind in OWN_KINDS:
            continue
        kind, key = _key(row)
        k = (row.network, key)
        member[row.id] = k
        by_external[(row.network, row.external_id)] = k
        if row.conversation_id and (not row.is_public or row.kind == 'dm'):
            by_dm_thread[(row.network, row.conversation_id)] = k
        c = convs.setdefault(k, {'network': row.network, 'kind': kind, 'thread_key': key, 'author_id': row.author_id,
                                 'assignee_id': None, 'status': 'closed', 'first_unanswered_at': None,
                                 'last_message_at': row.created_at, 'created_at': now})
        c['last_message_at'] = max(c['last_message_at'], row.created_at)
        # The owner is whoever has the newest message with an owner; rows come in id order, newest last.
        if row.assignee_id is not None:
            c['assignee_id'] = row.assignee_id
        if row.status in OPEN and row.needs_response is not False:
            c['status'] = 'open'
            first = c['first_unanswered_at']
            c['first_unanswered_at'] = row.created_at if first is None else min(first, row.created_at)
    for row in rows:
        if row.kind not in OWN_KINDS:
            continue
        k = by_external.get((row.network, row.in_reply_to_external_id or ''))
        if k is None and not row.is_public:
            k = by_dm_thread.get((row.network, row.conversation_id or ''))
        if k is not None:
            member[row.id] = k
    values = list(convs.values())
    for start in range(0, len(values), BATCH):
        bind.execute(sa.insert(conversation), values[start:start + BATCH])
    ids = {(n, k): i for i, n, k in bind.execute(sa.select(conversation.c.id, conversation.c.network,
                                                                conversation.c.thread_key)).all()}
    links = [{'pid': pid, 'cid': ids[k]} for pid, k in member.items()]
    stmt = sa.update(post).where(post.c.id == sa.bindparam('pid')).values(conversation_ref=sa.bindparam('cid'))
    for start in range(0, len(links), BATCH):
        bind.execute(stmt, links[start:start + BATCH])


def upgrade() -> None:
    # Posts are grouped into conversations, the unit staff work on: one card, one owner, one SLA clock.
    op.create_table('conversation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('network', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('thread_key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('first_unanswered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_message_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['staff.id'], ),
    sa.ForeignKeyConstraint(['author_id'], ['author.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('network', 'thread_key', name='uq_conversation_network_thread')
    )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_status_last', ['status', 'last_message_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_author_id'), ['author_id'], unique=False)
    op.create_table('note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('note', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_note_conversation_id'), ['conversation_id'], unique=False)
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conversation_ref', sa.Integer(), nullable=True))
        # A conversation's newest messages are one range of this index (the conversation page, the queue).
        batch_op.create_index('ix_post_conversation_created', ['conversation_ref', 'created_at'], unique=False)
        batch_op.create_foreign_key('fk_post_conversation_ref', 'conversation', ['conversation_ref'], ['id'])
    _backfill()


def downgrade() -> None:
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_constraint('fk_post_conversation_ref', type_='foreignkey')
        batch_op.drop_index('ix_post_conversation_created')
        batch_op.drop_column('conversation_ref')
    with op.batch_alter_table('note', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_note_conversation_id'))
    op.drop_table('note')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_author_id'))
        batch_op.drop_index(batch_op.f('ix_conversation_assignee_id'))
        batch_op.drop_index('ix_conversation_status_last')
    op.drop_table('conversation')
