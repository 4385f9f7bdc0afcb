"""a WooCommerce guest's buyer key names the store: two stores' guest orders of the same number never
share a QuickBooks customer

A guest without e-mail is one customer per order, keyed ``order:<platform>:<order id>``. WooCommerce
numbers orders per store, so that key now ends in ``@<store URL>``. Existing keys get the store of the
run that wrote the binding, or the merchant's only WooCommerce store when the run is gone; a key that
stays without a store is left as it was (nothing tells which store it was).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 17:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

PREFIX = 'order:woocommerce:'


def _with_store(key: str, store: str) -> str:
    base, bar, currency = key.partition('|')
    return f"{base}@{store}{bar}{currency}"


def upgrade() -> None:
    conn = op.get_bind()
    bindings = sa.table('bindings', sa.column('id', sa.Integer), sa.column('merchant_id', sa.Integer),
                        sa.column('source_platform', sa.String), sa.column('source_type', sa.String),
                        sa.column('source_id', sa.String), sa.column('sync_run_id', sa.Integer))
    runs = sa.table('sync_runs', sa.column('id', sa.Integer), sa.column('connection_id', sa.Integer))
    conns = sa.table('connections', sa.column('id', sa.Integer), sa.column('merchant_id', sa.Integer),
                     sa.column('platform', sa.String), sa.column('account', sa.String))
    stores: dict[int, set[str]] = {}
    for merchant_id, account in conn.execute(sa.select(conns.c.merchant_id, conns.c.account)
                                             .where(conns.c.platform == 'woocommerce')):
        stores.setdefault(merchant_id, set()).add(account or '')
    rows = conn.execute(
        sa.select(bindings.c.id, bindings.c.merchant_id, bindings.c.source_id, conns.c.account)
        .select_from(bindings.outerjoin(runs, runs.c.id == bindings.c.sync_run_id)
                     .outerjoin(conns, sa.and_(conns.c.id == runs.c.connection_id,
                                               conns.c.platform == 'woocommerce')))
        .where(bindings.c.source_platform == 'hub', bindings.c.source_type == 'buyer',
               bindings.c.source_id.like(PREFIX + '%'))).all()
    for binding_id, merchant_id, key, account in rows:
        if '@' in key.partition('|')[0]:
            continue
        only = stores.get(merchant_id, set())
        store = account or (next(iter(only)) if len(only) == 1 else '')
        if store:
            conn.execute(sa.update(bindings).where(bindings.c.id == binding_id)
                         .values(source_id=_with_store(key, store)))


def downgrade() -> None:
    conn = op.get_bind()
    bindings = sa.table('bindings', sa.column('id', sa.Integer), sa.column('source_platform', sa.String),
                        sa.column('source_type', sa.String), sa.column('source_id', sa.String))
    rows = conn.execute(sa.select(bindings.c.id, bindings.c.source_id)
                        .where(bindings.c.source_platform == 'hub', bindings.c.source_type == 'buyer',
                               bindings.c.source_id.like(PREFIX + '%@%'))).all()
    for binding_id, key in rows:
        base, bar, currency = key.partition('|')
        conn.execute(sa.update(bindings).where(bindings.c.id == binding_id)
                     .values(source_id=f"{base.partition('@')[0]}{bar}{currency}"))
