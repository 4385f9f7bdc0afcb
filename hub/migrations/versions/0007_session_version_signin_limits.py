"""session versions on users (sessions end on the server side), and sign-in counters

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
    op.create_table('signin_counters',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('signin_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_counters_window_start'), ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signin_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_counters_window_start'))
    op.drop_table('signin_counters')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_version')
