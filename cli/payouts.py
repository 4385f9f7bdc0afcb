"""``o2c payouts sync|list``: store payouts and the QuickBooks deposits they become."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from cli.base import _Fail, _hub, main, merchant_id_of


@main.group()
def payouts() -> None:
    """Store payouts (Shopify Payments, WooPayments) and their QuickBooks deposits: posted, or held (difference)."""


@payouts.command("sync")
@click.option("--merchant", "merchant_ref", default=None)
def payouts_sync(merchant_ref: str | None) -> None:
    """Look for store payouts now; post the paid ones as deposits (only when they tie out to the cent)."""
    from hub.models import Connection
    from sync.payouts import sync_payouts

    hub = _hub()
    if merchant_ref:
        merchants = [merchant_id_of(hub, merchant_ref)]
    else:
        with hub.session() as s:
            merchants = sorted(set(s.scalars(select(Connection.merchant_id).where(
                Connection.platform.in_(("shopify", "woocommerce")), Connection.status == "active"))))
    failed = []
    for merchant_id in merchants:
        report = sync_payouts(hub, merchant_id)
        click.echo(f"merchant {merchant_id}: {report.read} payouts read, {len(report.posted)} posted, "
                   f"{len(report.held)} held{', errors: ' + '; '.join(report.errors) if report.errors else ''}")
        failed += report.errors
    if failed and len(failed) >= len(merchants):
        raise _Fail(f"no payouts could be read: {failed[0]}")


@payouts.command("list")
@click.option("--merchant", "merchant_ref", default=None)
@click.option("--json", "as_json", is_flag=True)
def payouts_list(merchant_ref: str | None, as_json: bool) -> None:
    from sync.payouts import list_payouts

    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref) if merchant_ref else None
    with hub.session() as s:
        rows = list_payouts(s, merchant_id)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        deposit = f"deposit {', '.join(r['deposit_ids'] or [r['deposit_id']])}" if r["deposit_id"] else \
            f"difference {r['difference']}" if r["status"] == "held" else ""
        if r["transfer_id"]:
            deposit += f", transfer {r['transfer_id']}"
        click.echo(f"{r['platform']:<8} {r['payout_id']:<12} {(r['issued_at'] or '')[:10]} {r['net']:>12} "
                   f"{r['currency']:<3} {r['status']:<9} {deposit}{'  ' + r['reason'] if r['reason'] else ''}")
    if not rows:
        click.echo("no payouts")
