"""store payouts and their balance transactions, each tied to its store order when it has one

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('store_payouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('store', sa.String(length=255), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=True),
    sa.Column('payout_id', sa.String(length=255), nullable=False),
    sa.Column('processor', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('direction', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('net', sa.String(length=40), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=True),
    sa.Column('deposit_state', sa.String(length=20), nullable=True),
    sa.Column('deposit_id', sa.String(length=255), nullable=True),
    sa.Column('deposit_total', sa.String(length=40), nullable=True),
    sa.Column('difference', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('unexplained', sa.JSON(), nullable=False),
    sa.Column('posted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], ),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merchant_id', 'platform', 'store', 'payout_id', name='uq_store_payout')
    )
    op.create_index('ix_store_payouts_merchant', 'store_payouts', ['merchant_id', 'issued_at'], unique=False)
    op.create_table('payout_transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payout_row_id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('type', sa.String(length=60), nullable=False),
    sa.Column('amount', sa.String(length=40), nullable=False),
    sa.Column('fee', sa.String(length=40), nullable=False),
    sa.Column('net', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=255), nullable=True),
    sa.Column('order_name', sa.String(length=255), nullable=True),
    sa.Column('capture_id', sa.String(length=255), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.ForeignKeyConstraint(['payout_row_id'], ['store_payouts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('payout_row_id', 'transaction_id', name='uq_payout_transaction')
    )
    op.create_index('ix_payout_transactions_order', 'payout_transactions', ['merchant_id', 'order_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_payout_transactions_order', table_name='payout_transactions')
    op.drop_table('payout_transactions')
    op.drop_index('ix_store_payouts_merchant', table_name='store_payouts')
    op.drop_table('store_payouts')
