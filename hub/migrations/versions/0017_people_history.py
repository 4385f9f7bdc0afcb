"""people and history: every saved version of a merchant's mapping rules (history, diff, rollback) and the
one-time links that set a user's password (invitations, admin resets)

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-04 02:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mapping_rule_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('overrides', sa.JSON(), nullable=False),
    sa.Column('author', sa.String(length=254), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merchant_id', 'version', name='uq_mapping_rule_version')
    )
    # the rules saved before history was kept become the first entry of each merchant's history
    op.execute("INSERT INTO mapping_rule_versions (merchant_id, version, overrides, author, source, created_at) "
               "SELECT merchant_id, version, overrides, updated_by, 'console', updated_at FROM mapping_rules")
    op.create_table('password_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash', name='uq_password_link_token')
    )
    op.create_index('ix_password_links_user_id', 'password_links', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_password_links_user_id', table_name='password_links')
    op.drop_table('password_links')
    op.drop_table('mapping_rule_versions')
