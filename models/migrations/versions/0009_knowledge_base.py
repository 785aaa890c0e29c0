"""knowledge base: articles and canned answers, suggestions made from them, past answers' embeddings

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Nothing to backfill: the articles start empty (``escucha kb import`` or the desk fills them), and the answers
sent before this version are embedded by the knowledge upkeep the first time the worker drafts a reply.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Embeddings are float32 bytes with their row (bytea on PostgreSQL): no pgvector on the servers we run on.
    op.create_table('kb_article',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('questions', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('embedding', sa.LargeBinary(), nullable=True),
    sa.Column('embedding_model', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug', 'language')
    )
    op.create_index(op.f('ix_kb_article_slug'), 'kb_article', ['slug'], unique=False)
    op.create_table('kb_answer',
    sa.Column('reply_id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('sent_by', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('embedding', sa.LargeBinary(), nullable=False),
    sa.Column('embedding_model', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.ForeignKeyConstraint(['reply_id'], ['reply.id'], ),
    sa.PrimaryKeyConstraint('reply_id')
    )
    op.create_index(op.f('ix_kb_answer_post_id'), 'kb_answer', ['post_id'], unique=False)
    op.create_table('kb_suggestion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=True),
    sa.Column('answer_reply_id', sa.Integer(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('outcome_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['answer_reply_id'], ['reply.id'], ),
    sa.ForeignKeyConstraint(['article_id'], ['kb_article.id'], ),
    sa.ForeignKeyConstraint(['post_id'], ['post.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_kb_suggestion_article_id'), 'kb_suggestion', ['article_id'], unique=False)
    op.create_index(op.f('ix_kb_suggestion_outcome'), 'kb_suggestion', ['outcome'], unique=False)
    op.create_index(op.f('ix_kb_suggestion_post_id'), 'kb_suggestion', ['post_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_kb_suggestion_post_id'), table_name='kb_suggestion')
    op.drop_index(op.f('ix_kb_suggestion_outcome'), table_name='kb_suggestion')
    op.drop_index(op.f('ix_kb_suggestion_article_id'), table_name='kb_suggestion')
    op.drop_table('kb_suggestion')
    op.drop_index(op.f('ix_kb_answer_post_id'), table_name='kb_answer')
    op.drop_table('kb_answer')
    op.drop_index(op.f('ix_kb_article_slug'), table_name='kb_article')
    op.drop_table('kb_article')
