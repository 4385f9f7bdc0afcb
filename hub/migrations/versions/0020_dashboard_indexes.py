"""dashboard indexes: orders received, invoiced and paid in a window (per merchant and across merchants),
and a merchant's newest succeeded run, so the health page stays fast at a million ledger rows

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 02:00:00
"""
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_store_orders_merchant_received', 'store_orders', ['merchant_id', 'received_at'], ['state']),
    ('ix_store_orders_received', 'store_orders', ['received_at'], ['state']),
    ('ix_store_orders_merchant_invoiced', 'store_orders', ['merchant_id', 'invoiced_at'], ['received_at']),
    ('ix_store_orders_invoiced', 'store_orders', ['invoiced_at'], ['received_at']),
    ('ix_store_orders_merchant_paid', 'store_orders', ['merchant_id', 'paid_at'], ['ordered_at', 'received_at']),
    ('ix_store_orders_paid', 'store_orders', ['paid_at'], ['ordered_at', 'received_at']),
    ('ix_sync_runs_finished', 'sync_runs', ['merchant_id', 'status', 'finished_at'], []),
)


def upgrade() -> None:
    for name, table, columns, include in INDEXES:
        op.create_index(name, table, columns, unique=False, postgresql_include=include)


def downgrade() -> None:
    for name, table, _columns, _include in reversed(INDEXES):
        op.drop_index(name, table_name=table)
