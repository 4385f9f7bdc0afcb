"""receivables: the dunning actions taken, one per (invoice, stage), claimed before acting

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dunning_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.String(length=255), nullable=False),
    sa.Column('stage', sa.String(length=40), nullable=False),
    sa.Column('store_order_id', sa.Integer(), nullable=True),
    sa.Column('doc_number', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('done', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('claimed_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merchant_id', 'invoice_id', 'stage', name='uq_dunning_action')
    )
    op.create_index('ix_dunning_actions_order', 'dunning_actions', ['store_order_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_dunning_actions_order', table_name='dunning_actions')
    op.drop_table('dunning_actions')
