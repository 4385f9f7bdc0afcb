"""``o2c credit set MERCHANT CUSTOMER --limit AMOUNT`` and ``o2c credit list MERCHANT``: the credit limits the hub
holds per QuickBooks customer (QuickBooks has none), and the orders held over them (``sync.credit``)."""

from __future__ import annotations

import json

import click

from cli.base import _Fail, _hub, main, merchant_id_of
from connectors.errors import ConnectorError


@main.group()
def credit() -> None:
    """Credit limits per customer: net-terms orders over the limit are held from fulfilment."""


@credit.command("set")
@click.argument("merchant_ref")
@click.argument("customer")
@click.option("--limit", "limit", required=True, help="The limit in the merchant's home currency, or none.")
def credit_set(merchant_ref: str, customer: str, limit: str) -> None:
    """Set the credit limit of CUSTOMER (the buyer's e-mail or the QuickBooks customer id); --limit none removes
    it. Audited; holds the new limit no longer justifies are released."""
    from sync.credit import CreditError, set_limit

    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref)
    try:
        view = set_limit(hub, merchant_id, customer, limit, "cli")
    except CreditError as exc:
        raise click.UsageError(str(exc)) from None
    except ConnectorError as exc:
        raise _Fail(f"cannot reach QuickBooks: {exc}") from exc
    who = view["email"] or f"QuickBooks customer {view['customer_id']}"
    if view["limit"] is None:
        click.echo(f"credit limit of {who} removed")
    else:
        click.echo(f"credit limit of {who}: {view['limit']}")
    if view["released"]:
        click.echo(f"released: {', '.join(view['released'])}")
    if view["not_reviewed"]:
        click.echo(f"warning: its holds were not reviewed now ({view['not_reviewed']}); the next payment "
                   "reviews them", err=True)
    click.echo(f"limit {view['id']}")


@credit.command("list")
@click.argument("merchant_ref")
@click.option("--json", "as_json", is_flag=True)
def credit_list(merchant_ref: str, as_json: bool) -> None:
    """The credit limits of MERCHANT and the orders held over them."""
    from sync.credit import limits_view

    hub = _hub()
    rows = limits_view(hub, merchant_id_of(hub, merchant_ref))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no credit limits")
    for r in rows:
        held = f"   held: {', '.join(r['held'])}" if r["held"] else ""
        click.echo(f"{r['customer']:<32} {r['customer_id'] or '-':<8} limit {r['limit'] or 'none':>12}"
                   f"   set by {r['updated_by']} {r['updated_at']}{held}")
