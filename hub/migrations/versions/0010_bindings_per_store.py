"""bindings keyed per store: two WooCommerce stores of one merchant never share an order's bindings

WooCommerce order ids are only unique within one store, so a binding of a WooCommerce order (or refund)
now carries the store (``source_store``, the store URL the connection names). Shopify ids are unique
across shops, and the hub's own sources (buyers, SKUs, accounts) belong to the merchant: their
``source_store`` stays empty. Existing WooCommerce bindings get the store of the run that wrote them, or
the merchant's only WooCommerce store when the run is gone.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

KEYS = ['merchant_id', 'source_platform', 'source_type', 'source_id', 'target_platform', 'target_type']


def upgrade() -> None:
    with op.batch_alter_table('bindings') as batch:
        batch.add_column(sa.Column('source_store', sa.String(length=255), nullable=False, server_default=''))
        batch.drop_constraint('uq_binding', type_='unique')
        batch.create_unique_constraint('uq_binding', [*KEYS[:4], 'source_store', *KEYS[4:]])
    conn = op.get_bind()
    bindings = sa.table('bindings', sa.column('id', sa.Integer), sa.column('merchant_id', sa.Integer),
                        sa.column('source_platform', sa.String), sa.column('source_type', sa.String),
                        sa.column('source_store', sa.String), sa.column('sync_run_id', sa.Integer))
    runs = sa.table('sync_runs', sa.column('id', sa.Integer), sa.column('connection_id', sa.Integer))
    conns = sa.table('connections', sa.column('id', sa.Integer), sa.column('merchant_id', sa.Integer),
                     sa.column('platform', sa.String), sa.column('account', sa.String))
    woo = sa.and_(bindings.c.source_platform == 'woocommerce', bindings.c.source_type.in_(('order', 'refund')))
    from_run = (sa.select(conns.c.account).select_from(runs.join(conns, conns.c.id == runs.c.connection_id))
                .where(runs.c.id == bindings.c.sync_run_id, conns.c.platform == 'woocommerce')
                .scalar_subquery())
    conn.execute(sa.update(bindings).where(woo, bindings.c.sync_run_id.isnot(None))
                 .values(source_store=sa.func.coalesce(from_run, '')))
    stores = conn.execute(sa.select(conns.c.merchant_id, conns.c.account)
                          .where(conns.c.platform == 'woocommerce')).all()
    only: dict[int, set[str]] = {}
    for merchant_id, account in stores:
        only.setdefault(merchant_id, set()).add(account or '')
    for merchant_id, accounts in only.items():
        if len(accounts) == 1:
            conn.execute(sa.update(bindings).where(woo, bindings.c.merchant_id == merchant_id,
                                                   bindings.c.source_store == '')
                         .values(source_store=next(iter(accounts))))


def downgrade() -> None:
    with op.batch_alter_table('bindings') as batch:
        batch.drop_constraint('uq_binding', type_='unique')
        batch.create_unique_constraint('uq_binding', KEYS)
        batch.drop_column('source_store')
