"""the order ledger: one row per store order, filled from the existing runs and bindings

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:00:00
"""
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

CHUNK = 500


def upgrade() -> None:
    orders = op.create_table('store_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('store', sa.String(length=255), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('total', sa.String(length=40), nullable=True),
    sa.Column('financial_status', sa.String(length=30), nullable=True),
    sa.Column('fulfillment_status', sa.String(length=30), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('last_run_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.String(length=255), nullable=True),
    sa.Column('doc_number', sa.String(length=40), nullable=True),
    sa.Column('invoice_total', sa.String(length=40), nullable=True),
    sa.Column('invoice_balance', sa.String(length=40), nullable=True),
    sa.Column('payment_ids', sa.JSON(), nullable=False),
    sa.Column('refund_ids', sa.JSON(), nullable=False),
    sa.Column('deposit_id', sa.String(length=255), nullable=True),
    sa.Column('contact_id', sa.String(length=255), nullable=True),
    sa.Column('deal_id', sa.String(length=255), nullable=True),
    sa.Column('ordered_at', sa.DateTime(), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('invoiced_at', sa.DateTime(), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('fulfilled_at', sa.DateTime(), nullable=True),
    sa.Column('deposited_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], ),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merchant_id', 'platform', 'store', 'order_id', name='uq_store_order')
    )
    op.create_index('ix_store_orders_merchant', 'store_orders', ['merchant_id', 'id'], unique=False)
    op.create_index('ix_store_orders_state', 'store_orders', ['state', 'id'], unique=False)
    op.create_index('ix_store_orders_merchant_state', 'store_orders', ['merchant_id', 'state', 'id'], unique=False)
    op.create_index('ix_store_orders_name', 'store_orders', ['merchant_id', 'name'], unique=False)
    _fill(op.get_bind(), orders)


def downgrade() -> None:
    op.drop_index('ix_store_orders_name', table_name='store_orders')
    op.drop_index('ix_store_orders_merchant_state', table_name='store_orders')
    op.drop_index('ix_store_orders_state', table_name='store_orders')
    op.drop_index('ix_store_orders_merchant', table_name='store_orders')
    op.drop_table('store_orders')


# -- filling the ledger of an existing installation from its runs and bindings ----------------------------

def _fill(conn, orders: sa.Table) -> None:
    meta = sa.MetaData()
    runs = sa.Table('sync_runs', meta, autoload_with=conn)
    bindings = sa.Table('bindings', meta, autoload_with=conn)
    connections = sa.Table('connections', meta, autoload_with=conn)
    stores = dict(conn.execute(sa.select(connections.c.id, connections.c.account)).all())
    now = datetime.now(UTC).replace(tzinfo=None)
    rows: dict[tuple, dict] = {}
    last = 0
    while True:  # runs in id order, so the latest run of each order is the one that stays
        chunk = conn.execute(sa.select(runs).where(runs.c.id > last, runs.c.kind.in_(('order', 'refund')))
                             .order_by(runs.c.id).limit(CHUNK)).mappings().all()
        if not chunk:
            break
        last = chunk[-1]['id']
        for run in chunk:
            key = (run['merchant_id'], run['source_platform'], stores.get(run['connection_id'], ''),
                   run['source_id'])
            row = rows.setdefault(key, {
                'merchant_id': key[0], 'platform': key[1], 'store': key[2], 'order_id': key[3],
                'connection_id': run['connection_id'], 'state': 'pending', 'payment_ids': [], 'refund_ids': [],
                'received_at': run['created_at'] or now, 'updated_at': now})
            if run['source_name']:
                row['name'] = run['source_name'][:255]
            canonical = run['canonical']
            if isinstance(canonical, dict):
                row.update(_from_canonical(canonical))
            state, reason = _state(run)
            if not (run['kind'] == 'refund' and state == 'skipped'):
                row.update(state=state, reason=reason, last_run_id=run['id'])
    by_order: dict[tuple, list[dict]] = {}
    for row in rows.values():
        by_order.setdefault((row['merchant_id'], row['platform'], row['order_id']), []).append(row)
    last = 0
    while True:
        chunk = conn.execute(sa.select(bindings).where(bindings.c.id > last).order_by(bindings.c.id)
                             .limit(CHUNK)).mappings().all()
        if not chunk:
            break
        last = chunk[-1]['id']
        for b in chunk:
            _apply_binding(b, by_order)
    columns = [c.name for c in orders.columns if c.name != 'id']
    filled = [{name: row.get(name) for name in columns} for row in rows.values()]   # executemany: same keys
    for start in range(0, len(filled), CHUNK):
        conn.execute(orders.insert(), filled[start:start + CHUNK])


def _apply_binding(b, by_order: dict[tuple, list[dict]]) -> None:
    data = b['data'] if isinstance(b['data'], dict) else {}
    if b['source_type'] == 'order' and b['target_platform'] == 'quickbooks':
        for row in by_order.get((b['merchant_id'], b['source_platform'], b['source_id']), []):
            if b['target_type'] == 'invoice':
                row.update(invoice_id=b['target_id'], doc_number=(data.get('doc_number') or None),
                           invoice_total=_money(data.get('total')), invoice_balance=_money(data.get('balance')),
                           invoiced_at=b['created_at'])
            elif b['target_type'] == 'payment':
                row['payment_ids'] = [*row['payment_ids'], b['target_id']]
                row['paid_at'] = b['created_at']
    elif b['source_type'] == 'refund' and b['target_type'] == 'refund':
        order_id = str(data.get('order_id') or b['source_id'].split(':', 1)[0])
        for row in by_order.get((b['merchant_id'], b['source_platform'], order_id), []):
            row['refund_ids'] = [*row['refund_ids'], b['target_id']]
    elif b['source_platform'] == 'quickbooks' and b['source_type'] == 'payment' \
            and str(b['target_type']).startswith('order:'):
        for row in by_order.get((b['merchant_id'], b['target_platform'], b['target_id']), []):
            if b['source_id'] not in row['payment_ids']:
                row['payment_ids'] = [*row['payment_ids'], b['source_id']]
            balance = _money(data.get('balance'))
            if balance is not None:
                row['invoice_balance'] = balance
                if Decimal(balance) <= 0 and not row.get('paid_at'):
                    row['paid_at'] = b['updated_at']


def _state(run) -> tuple[str, str | None]:
    status = run['status']
    if status == 'succeeded':
        return 'in_sync', None
    if status in ('failed', 'skipped'):
        return ('failing' if status == 'failed' else 'skipped'), run['reason']
    if status == 'retrying' and run['error_kind'] == 'auth':
        return 'waiting', run['reason']
    return 'pending', None


def _from_canonical(order: dict) -> dict:
    values = {}
    for key, size in (('name', 255), ('currency', 3), ('financial_status', 30), ('fulfillment_status', 30)):
        if order.get(key):
            values[key] = str(order[key])[:size]
    if order.get('total') is not None:
        values['total'] = _money(order['total'])
    try:
        created = datetime.fromisoformat(str(order.get('created_at')))
        values['ordered_at'] = created.astimezone(UTC).replace(tzinfo=None) if created.tzinfo else created
    except (ValueError, OverflowError):
        pass
    return values


def _money(value) -> str | None:
    try:
        return None if value is None else str(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
