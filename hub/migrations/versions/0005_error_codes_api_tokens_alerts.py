"""error codes and excerpts on runs and attempts, API tokens, alerts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sync_runs') as batch:
        batch.add_column(sa.Column('error_code', sa.String(length=100), nullable=True))
    with op.batch_alter_table('sync_attempts') as batch:
        batch.add_column(sa.Column('error_code', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('excerpt', sa.JSON(), nullable=True))
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_api_tokens_user_id', 'api_tokens', ['user_id'], unique=False)
    op.create_table('alerts_sent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cause', sa.String(length=255), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alerts_sent_cause', 'alerts_sent', ['cause', 'channel', 'sent_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alerts_sent_cause', table_name='alerts_sent')
    op.drop_table('alerts_sent')
    op.drop_index('ix_api_tokens_user_id', table_name='api_tokens')
    op.drop_table('api_tokens')
    with op.batch_alter_table('sync_attempts') as batch:
        batch.drop_column('excerpt')
        batch.drop_column('error_code')
    with op.batch_alter_table('sync_runs') as batch:
        batch.drop_column('error_code')
