"""customers: one person across networks, identity-link audit, customer tags and notes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('author', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_author_customer_id'), ['customer_id'], unique=False)
        batch_op.create_foreign_key('fk_author_customer_id_customer', 'customer', ['customer_id'], ['id'])
    # Backfill: every author already stored is a person of their own, with the author's id as the customer's,
    # so one INSERT … SELECT and one UPDATE do it however many authors there are.
    op.execute("INSERT INTO customer (id, created_at) SELECT id, updated_at FROM author")
    op.execute("UPDATE author SET customer_id = id")
    if op.get_bind().dialect.name == 'postgresql':
        # Ids were given by hand: the sequence must start after them.
        op.execute("SELECT setval(pg_get_serial_sequence('customer', 'id'), "
                   "COALESCE((SELECT MAX(id) FROM customer), 0) + 1, false)")
    op.create_table('customer_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('from_customer_id', sa.Integer(), nullable=False),
    sa.Column('to_customer_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('basis', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['author.id'], ),
    sa.ForeignKeyConstraint(['from_customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['to_customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customer_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_link_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_link_author_id'), ['author_id'], unique=False)
    op.create_table('customer_tag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('tag', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'tag', name='uq_customer_tag')
    )
    with op.batch_alter_table('customer_tag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_tag_customer_id'), ['customer_id'], unique=False)
    op.create_table('customer_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customer_note', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_note_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customer_note', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_note_customer_id'))
    op.drop_table('customer_note')
    with op.batch_alter_table('customer_tag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_tag_customer_id'))
    op.drop_table('customer_tag')
    with op.batch_alter_table('customer_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_link_author_id'))
        batch_op.drop_index(batch_op.f('ix_customer_link_at'))
    op.drop_table('customer_link')
    with op.batch_alter_table('author', schema=None) as batch_op:
        batch_op.drop_constraint('fk_author_customer_id_customer', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_author_customer_id'))
        batch_op.drop_column('customer_id')
    op.drop_table('customer')
