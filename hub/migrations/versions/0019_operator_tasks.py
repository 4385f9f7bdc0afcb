"""operator tasks: a backfill, catch-up or reconcile started from the console, followed by its progress page

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 02:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('operator_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('run_ids', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('operator_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_operator_tasks_merchant', ['merchant_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('operator_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_operator_tasks_merchant')
    op.drop_table('operator_tasks')
