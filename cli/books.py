"""``o2c mapping``, ``preview``, ``catch-up``, ``reconcile`` and ``backfill``: the commands about what reaches
the books."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from cli.base import _Fail, _hub, main, merchant_id_of


@main.group()
def mapping() -> None:
    """Export and import a merchant's mapping rules (YAML)."""


@mapping.command("export")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True), default="-")
def mapping_export(merchant_ref: str, file: str) -> None:
    """Write the merchant's effective rules (defaults + overrides) to FILE (default: stdout)."""
    from hub.mapping_rules import export_yaml

    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref)
    with hub.session() as s:
        text = export_yaml(s, merchant_id)
    with click.open_file(file, "w", encoding="utf-8") as out:
        out.write(text)
    hub.close()


@mapping.command("import")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--no-check", is_flag=True, help="Do not check the QuickBooks objects the rules name.")
@click.option("--author", default=None, help="who the audit log and the rules' history name (default: your OS user)")
def mapping_import(merchant_ref: str, file: str, no_check: bool, author: str | None) -> None:
    """Validate the rules in FILE and make them the merchant's rules (a new version, audited)."""
    from hub import audit
    from hub.mapping_rules import parse_yaml, rule_set, save_overrides
    from mappings.rules import RulesError, load_rules
    from sync.rules_check import check_rules, record_check

    try:
        with click.open_file(file, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise _Fail(f"cannot read {file}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise _Fail(f"{file} is not UTF-8 text") from None
    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref)
    try:
        overrides = parse_yaml(text)
        rules = load_rules(overrides)
    except RulesError as exc:
        raise _Fail(f"rules not imported: {exc}") from exc
    report = None if no_check else check_rules(hub, merchant_id, rules)
    if report is not None and report.missing:
        raise _Fail("rules not imported: " + "; ".join(report.missing))
    actor = (author or "").strip()[:254] or _os_user()
    with hub.session() as s:
        save_overrides(s, merchant_id, overrides, by=actor, source="cli")
        version = rule_set(s, merchant_id).version  # type: ignore[union-attr] - just saved
        audit.record(s, actor, "rules.saved", target_type="mapping_rules", target_id=merchant_id,
                     merchant_id=merchant_id, detail={"version": version, "via": "cli",
                                                      "notes": report.notes if report else []})
        s.commit()
    if report is not None:
        record_check(hub, merchant_id, report)
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
    click.echo(f"imported the mapping rules of merchant {merchant_id} as version {version}")
    hub.close()


def _os_user() -> str:
    """The operator running ``o2c``, as the audit log names them."""
    import getpass

    try:
        return getpass.getuser()[:254] or "cli"
    except (KeyError, OSError):   # no user name for this uid (a bare container)
        return "cli"


@main.command("preview")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.argument("order_ref", metavar="ORDER")
@click.option("--json", "as_json", is_flag=True)
def preview_command(merchant_ref: str, order_ref: str, as_json: bool) -> None:
    """Show what a sync of ORDER (id or #name) would send to QuickBooks and HubSpot, sending nothing."""
    from connectors.errors import ConnectorError
    from mappings.model import MappingError
    from sync.preview import PreviewError, preview_order

    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref)
    try:
        result = preview_order(hub, merchant_id, order_ref)
    except (PreviewError, ConnectorError, MappingError) as exc:
        raise _Fail(f"cannot preview {order_ref}: {exc}") from exc
    data = result.as_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        from hub.preview_text import render_preview

        click.echo(render_preview(data))
    hub.close()


@main.command("catch-up")
@click.option("--merchant", "merchant_ref", default=None)
@click.option("--wait/--no-wait", default=True, help="Embedded mode: run what it finds here and wait.")
def catch_up_command(merchant_ref: str | None, wait: bool) -> None:
    """Find now what missed webhooks would have brought (QuickBooks CDC, store orders changed since the last pass)."""
    from sync.catchup import catch_up
    from sync.dispatch import EmbeddedRunner

    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref) if merchant_ref else None
    results = catch_up(hub, merchant_id)
    if wait and isinstance(hub.dispatcher, EmbeddedRunner):
        hub.dispatcher.wait_idle(timeout=600)
    failed = False
    for conn_id, found in results.items():
        if isinstance(found, str):
            failed = True
            click.echo(f"connection {conn_id}: catch-up failed: {found}", err=True)
        else:
            click.echo(f"connection {conn_id}: {len(found)} run(s) opened" + (f": {' '.join(map(str, found))}"
                                                                             if found else ""))
    hub.close()
    if failed:
        raise _Fail("catch-up failed for some connections (see above); it resumes from the same point next time")


@main.command("reconcile")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.option("--since", default=None, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="orders created since YYYY-MM-DD")
@click.option("--json", "as_json", is_flag=True)
@click.option("--resync", is_flag=True, help="Open an order sync for every order with a discrepancy.")
def reconcile_command(merchant_ref: str, since: Any, as_json: bool, resync: bool) -> None:
    """Compare the store's orders with QuickBooks and list every discrepancy (reads only)."""
    from sync import reconcile as rec

    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref)
    try:
        report = rec.reconcile(hub, merchant_id, since.date() if since else None)
    except LookupError as exc:
        raise _Fail(str(exc)) from exc
    except Exception as exc:  # a platform is unreachable or refuses: say which, in one line
        raise _Fail(f"reconcile failed: {exc}") from exc
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(f"{report.orders_checked} orders checked, {len(report.rows)} discrepancies")
        for row in report.rows:
            qb = row.quickbooks
            other = f" / QuickBooks {qb['type']} {qb['id']} ({qb.get('doc_number')})" if qb else ""
            click.echo(f"{row.kind:<28} {row.order['platform']} {row.order['name']} (id {row.order['id']})"
                       f"{other}  {row.amount}  {row.detail}")
    if resync and report.rows:
        ids = rec.resync(hub, report)
        click.echo(f"opened {len(ids)} sync run(s)" + (f": {' '.join(map(str, ids))}" if ids else ""),
                   err=as_json)
    hub.close()


@main.command("backfill")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.option("--since", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="YYYY-MM-DD (inclusive)")
@click.option("--until", default=None, type=click.DateTime(formats=["%Y-%m-%d"]), help="YYYY-MM-DD (inclusive)")
@click.option("--wait/--no-wait", default=True,
              help="Sync the orders here in batches (the default; embedded mode always does); --no-wait "
                   "queues one run per order for the `o2c worker` processes instead.")
def backfill_command(merchant_ref: str, since: Any, until: Any, wait: bool) -> None:
    """Import the orders created since a date from every connected store, in batches (resumable)."""
    import time

    from tqdm import tqdm

    from sync.backfill import backfill
    from sync.status import counts_for_runs

    if until is not None and until < since:
        raise click.BadParameter("must not be before --since", param_hint="--until")
    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref)
    embedded = not hub.settings.scale_out
    bar = tqdm(desc="orders synced", unit="order", total=0, file=sys.stderr, dynamic_ncols=True,
               disable=None)
    batched = wait or embedded  # sync here in batches from the listed orders; else queue for the workers

    def listed(count: int, total: int | None) -> None:
        bar.total = max(total or 0, count)
        bar.refresh()

    try:
        result = backfill(hub, merchant_id, since.date(), until.date() if until else None,
                          on_run=None if batched else hub.dispatcher.dispatch, batched=batched, on_page=listed,
                          on_synced=bar.update)
    except LookupError as exc:
        raise _Fail(str(exc)) from exc
    except Exception as exc:  # the store is unreachable, the keys were revoked, …: resumable, say why
        raise _Fail(f"backfill stopped (run it again to resume): {exc}") from exc
    ids = result.run_ids or []
    counts: dict[str, int] = {}
    if batched:
        for status in (result.statuses or {}).values():
            counts[status] = counts.get(status, 0) + 1
    elif ids and wait:
        bar.total = len(ids)
        bar.refresh()
        done = 0
        while True:
            counts = counts_for_runs(hub.sessions, ids)
            finished = sum(counts.get(k, 0) for k in ("succeeded", "failed", "skipped", "waiting"))
            bar.update(finished - done)
            done = finished
            if finished >= len(ids):
                break
            time.sleep(0.5)
    bar.close()
    summary = (f"backfill {'resumed' if result.resumed else 'done'}: {result.listed} orders listed in "
               f"{result.connections} store(s), {result.queued} queued, {result.up_to_date} already up to date")
    if counts:
        summary += ", " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    click.echo(summary)
    hub.close()
