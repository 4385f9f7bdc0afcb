"""``o2c receivables MERCHANT`` (ageing, DSO, overdue invoices and credit holds, checked against QuickBooks'
AgedReceivables) and ``o2c dunning run`` (advance overdue invoices through the merchant's dunning stages now)."""

from __future__ import annotations

import json
from datetime import date

import click

from cli.base import _Fail, _hub, main, merchant_id_of
from connectors.errors import ConnectorError


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--as-of") from None


@main.command("receivables")
@click.argument("merchant_ref")
@click.option("--as-of", "as_of", default=None, help="The day to age the invoices on (YYYY-MM-DD; default today).")
@click.option("--json", "as_json", is_flag=True)
def receivables_show(merchant_ref: str, as_of: str | None, as_json: bool) -> None:
    """Open and overdue balances, ageing buckets, DSO and the overdue invoices of MERCHANT."""
    from sync.receivables import receivables

    day = _as_of(as_of)
    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref)
    try:
        result = receivables(hub, merchant_id, day)
    except ConnectorError as exc:
        raise _Fail(f"cannot read the receivables from QuickBooks: {exc}") from exc
    diff = (result.check or {}).get("difference") or {}
    if diff:
        theirs = result.check["quickbooks"] if result.check else {}
        click.echo("warning: differs from QuickBooks' AgedReceivables: " + ", ".join(
            f"{k} hub {result.view()['buckets'][k]} vs QuickBooks {theirs[k]}" for k in diff), err=True)
    if as_json:
        click.echo(json.dumps(result.view(), indent=2))
        return
    view = result.view()
    click.echo(f"merchant {merchant_id} as of {view['as_of']} ({view['currency']})")
    click.echo(f"open {view['open']}   overdue {view['overdue']}   DSO {view['dso_days']} days "
               f"(over {view['dso_period_days']} days: receivables {view['open']} ÷ credit sales "
               f"{result.credit_sales} × {view['dso_period_days']})")
    b = view["buckets"]
    click.echo(f"current {b['current']}   1-30 {b['1_30']}   31-60 {b['31_60']}   61-90 {b['61_90']}   "
               f"over 90 {b['over_90']}")
    click.echo("QuickBooks AgedReceivables: " + ("matches" if not diff else "DIFFERS (see above)"))
    for inv in result.overdue_invoices():
        order = inv.order.name if inv.order else "no store order"
        click.echo(f"  {inv.doc_number or inv.invoice_id:<10} {order:<10} {inv.customer:<30} due {inv.due_date} "
                   f"{inv.balance:>10}  {inv.days_overdue:>4} days  {inv.dunning_stage or '-'}")
    if not result.overdue_invoices():
        click.echo("no overdue invoices")
    for h in view["holds"]:
        click.echo(f"  credit hold: {', '.join(h['orders'])} of {h['customer']} (exposure {h['exposure']} over the "
                   f"limit of {h['limit']})")


@main.group()
def dunning() -> None:
    """Chase overdue invoices through the merchant's dunning stages (mapping rules: receivables.dunning)."""


@dunning.command("run")
@click.option("--merchant", "merchant_ref", default=None)
@click.option("--as-of", "as_of", default=None, help="Age the invoices on this day (YYYY-MM-DD; default today).")
def dunning_run(merchant_ref: str | None, as_of: str | None) -> None:
    """Advance every overdue invoice (of --merchant) through the dunning stages it has reached, now."""
    from sync.dunning import run_dunning

    day = _as_of(as_of)
    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref) if merchant_ref else None
    try:
        passes = run_dunning(hub, merchant_id, day)
    except ConnectorError as exc:
        raise _Fail(f"dunning stopped: {exc}") from exc
    failed = 0
    for p in passes:
        if p.note:
            click.echo(f"merchant {p.merchant_id}: {p.note}")
            continue
        click.echo(f"merchant {p.merchant_id} as of {p.as_of}: {len(p.acted)} stage(s) acted on, "
                   f"{p.contacts_written} contact(s) written, calls: QuickBooks {p.calls['quickbooks']}, "
                   f"HubSpot {p.calls['hubspot']}")
        for label, stage in p.acted:
            click.echo(f"  invoice {label}: {stage}")
        for label, stage, why in p.failed:
            click.echo(f"  invoice {label}: {stage} FAILED: {why}")
        failed += len(p.failed)
    if failed:
        raise _Fail(f"{failed} dunning stage(s) failed; the next pass tries them again")
