"""``o2c orders list|show``: the order ledger — where each store order stands in the order-to-cash cycle."""

from __future__ import annotations

import json

import click

from cli.base import _Fail, _hub, main, merchant_id_of
from hub.order_models import STATES


@main.group()
def orders() -> None:
    """Store orders and where they stand: invoice, payments, refunds, contact; why one is stuck."""


@orders.command("list")
@click.option("--merchant", "merchant_ref", default=None)
@click.option("--state", type=click.Choice(STATES))
@click.option("--limit", type=click.IntRange(min=1), default=None)
@click.option("--json", "as_json", is_flag=True)
def orders_list(merchant_ref: str | None, state: str | None, limit: int | None, as_json: bool) -> None:
    from sync.order_lookup import OrderQuery, list_orders, order_views

    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref) if merchant_ref else None
    with hub.session() as s:
        rows = order_views(s, list_orders(s, OrderQuery(merchant=merchant_id, state=state), limit=limit))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        qb = r["quickbooks"]
        invoice = f"invoice {qb['doc_number'] or qb['invoice_id']}" if qb["invoice_id"] else "no invoice"
        click.echo(f"{r['platform']:<11} {r['name'] or r['id']:<12} {r['total'] or '':>10} {r['currency'] or '':<3}  "
                   f"{r['state']:<8} {invoice}{'  ' + r['reason'] if r['reason'] else ''}")
    if not rows:
        click.echo("no orders")


@orders.command("show")
@click.argument("merchant_ref")
@click.argument("order_ref")
@click.option("--json", "as_json", is_flag=True)
def orders_show(merchant_ref: str, order_ref: str, as_json: bool) -> None:
    """ORDER_REF: the store's order id, or its name (#1001)."""
    from sync.order_lookup import find_order, order_detail

    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref)
    with hub.session() as s:
        order = find_order(s, merchant_id, order_ref)
        if order is None:
            raise _Fail(f"no order {order_ref} of merchant {merchant_ref}")
        detail = order_detail(s, order)
    if as_json:
        click.echo(json.dumps(detail, indent=2))
        return
    qb, hs = detail["quickbooks"], detail["hubspot"]
    click.echo(f"order {detail['name'] or detail['id']} ({detail['platform']} {detail['id']}"
               f"{', ' + detail['store'] if detail['store'] else ''}): {detail['state']}"
               f"{' — ' + detail['reason'] if detail['reason'] else ''}")
    click.echo(f"  total {detail['total'] or '?'} {detail['currency'] or ''}, {detail['financial_status'] or '?'}")
    if qb["invoice_id"]:
        click.echo(f"  QuickBooks invoice {qb['doc_number']} (id {qb['invoice_id']}), total {qb['total']}, "
                   f"balance {qb['balance']}")
    for label, ids in (("payments", qb["payment_ids"]), ("refunds", qb["refund_ids"])):
        if ids:
            click.echo(f"  QuickBooks {label}: {', '.join(ids)}")
    if hs["contact_id"]:
        click.echo(f"  HubSpot contact {hs['contact_id']}")
    click.echo(f"  runs: {', '.join(str(r) for r in detail['runs']) or 'none'}")
    for ev in detail["timeline"]:
        click.echo(f"  {ev['at']}  {ev['kind']:<12} {ev['text']}")
