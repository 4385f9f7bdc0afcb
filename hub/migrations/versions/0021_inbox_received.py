"""inbox: an index on (status, received_at), for the sweeper's look for deliveries stored and not yet routed

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 02:00:00
"""
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_webhook_events_status', 'webhook_events', ['status', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_events_status', table_name='webhook_events')
