"""create attempts: a note, written before the hub asks a platform to create an object for a source, so that
only sources with a note and no binding are looked up before a create (and a refused requestid is not
asked again)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 20:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('create_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('source_platform', sa.String(length=20), nullable=False),
    sa.Column('source_type', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=False),
    sa.Column('source_store', sa.String(length=255), server_default='', nullable=False),
    sa.Column('target_platform', sa.String(length=20), nullable=False),
    sa.Column('target_type', sa.String(length=40), nullable=False),
    sa.Column('refusals', sa.Integer(), server_default='0', nullable=False),
    sa.Column('sync_run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merchant_id', 'source_platform', 'source_type', 'source_id', 'source_store',
                        'target_platform', 'target_type', name='uq_create_attempt')
    )


def downgrade() -> None:
    op.drop_table('create_attempts')
