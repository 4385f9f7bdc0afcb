"""credit limits per QuickBooks customer, the net-terms orders checked against them (with their holds), and a
daily snapshot of each merchant's receivables figures (the DSO trend)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 02:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit_limits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('customer_key', sa.String(length=255), nullable=False),
    sa.Column('customer_id', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('amount', sa.String(length=40), nullable=True),
    sa.Column('updated_by', sa.String(length=255), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merchant_id', 'customer_key', name='uq_credit_limit')
    )
    op.create_table('credit_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('limit_id', sa.Integer(), nullable=False),
    sa.Column('store_order_id', sa.Integer(), nullable=True),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('store', sa.String(length=255), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.String(length=255), nullable=False),
    sa.Column('order_name', sa.String(length=255), nullable=True),
    sa.Column('amount', sa.String(length=40), nullable=False),
    sa.Column('contact_id', sa.String(length=255), nullable=True),
    sa.Column('settled', sa.Boolean(), nullable=False),
    sa.Column('hold_status', sa.String(length=20), nullable=True),
    sa.Column('exposure', sa.String(length=40), nullable=True),
    sa.Column('limit_amount', sa.String(length=40), nullable=True),
    sa.Column('previous_status', sa.String(length=30), nullable=True),
    sa.Column('done', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('held_at', sa.DateTime(), nullable=True),
    sa.Column('released_at', sa.DateTime(), nullable=True),
    sa.Column('released_by', sa.String(length=255), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['limit_id'], ['credit_limits.id'], ),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merchant_id', 'platform', 'store', 'order_id', name='uq_credit_order')
    )
    op.create_index('ix_credit_orders_limit', 'credit_orders', ['limit_id', 'hold_status'], unique=False)
    op.create_table('receivables_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('open', sa.String(length=40), nullable=False),
    sa.Column('overdue', sa.String(length=40), nullable=False),
    sa.Column('credit_sales', sa.String(length=40), nullable=False),
    sa.Column('dso_days', sa.String(length=20), nullable=False),
    sa.Column('dso_period_days', sa.Integer(), nullable=False),
    sa.Column('buckets', sa.JSON(), nullable=False),
    sa.Column('taken_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merchant_id', 'day', name='uq_receivables_snapshot')
    )


def downgrade() -> None:
    op.drop_table('receivables_snapshots')
    op.drop_index('ix_credit_orders_limit', table_name='credit_orders')
    op.drop_table('credit_orders')
    op.drop_table('credit_limits')
