"""order ledger: the buyer's name and e-mail on each order row (shown and searched in the console)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 02:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('store_orders') as batch:
        batch.add_column(sa.Column('customer_name', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('customer_email', sa.String(length=320), nullable=True))
        batch.create_index('ix_store_orders_customer_email', ['merchant_id', 'customer_email'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('store_orders') as batch:
        batch.drop_index('ix_store_orders_customer_email')
        batch.drop_column('customer_email')
        batch.drop_column('customer_name')
