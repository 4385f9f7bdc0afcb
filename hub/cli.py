"""``o2c``: the operator's command line (names fixed in DESIGN.md).

Commands that create something print its id as the last word; exit 0 on success, 2 on a usage
error, 1 on any other failure with a one-line message on stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from hub.runtime import Hub


class _Fail(click.ClickException):
    exit_code = 1

    def show(self, file: Any = None) -> None:  # one line on stderr
        click.echo(f"error: {self.format_message()}", err=True)


def _hub() -> Hub:
    try:
        return Hub()
    except Exception as exc:  # configuration or database trouble: say it in one line
        raise _Fail(f"cannot start the hub: {exc}") from exc


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """O2C Hub: storefront orders to QuickBooks invoices and HubSpot contacts."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=int, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the web app (webhooks, health, status page); in embedded mode also run the jobs."""
    from werkzeug.serving import run_simple

    from hub.app import create_app

    logging.getLogger("o2c").setLevel(logging.INFO)
    hub = _hub()
    app = create_app(hub)
    hub.dispatcher.sweep()  # embedded: starts the runner and picks up what was left
    click.echo(f"O2C Hub serving on http://{host}:{port} "
               f"({'scale-out: jobs go to rq' if hub.settings.scale_out else 'embedded: jobs run in-process'})")
    run_simple(host, port, app, threaded=True, use_reloader=False)


@main.command()
@click.option("--burst", is_flag=True, help="Exit when nothing is due.")
def worker(burst: bool) -> None:
    """Run jobs: an rq worker with its scheduler and the sweeper (or the embedded runner)."""
    from worker import run_worker

    logging.getLogger("o2c").setLevel(logging.INFO)
    run_worker(_hub(), burst=burst)


@main.command()
@click.option("--orders", default=36, show_default=True, help="How many orders the simulated store sends.")
@click.option("--keep-serving", is_flag=True, help="Keep the hub and the simulated platforms up until Ctrl-C.")
@click.option("--seed", default=7, show_default=True)
def demo(orders: int, keep_serving: bool, seed: int) -> None:
    """Sync simulated Shopify orders into simulated QuickBooks and HubSpot, end to end."""
    from hub.demo import run_demo

    try:
        run_demo(orders=orders, keep_serving=keep_serving, seed=seed)
    except KeyboardInterrupt:
        pass


@main.group()
def merchant() -> None:
    """Manage merchants."""


@merchant.command("create")
@click.argument("name")
def merchant_create(name: str) -> None:
    """Create a merchant; prints its id."""
    from hub.merchants import create_merchant

    hub = _hub()
    with hub.session() as s:
        try:
            m = create_merchant(s, name)
        except ValueError as exc:
            raise _Fail(str(exc)) from exc
        click.echo(f"created merchant {m.name!r} with id {m.id}")


@main.group()
def connect() -> None:
    """Connect a merchant's account on a platform (prints the connection id)."""


def _connect(merchant_ref: str, platform: str, account: str, secrets: dict[str, Any],
             settings: dict[str, Any] | None = None) -> None:
    from hub.merchants import NotFound, connect, find_merchant

    hub = _hub()
    with hub.session() as s:
        try:
            m = find_merchant(s, merchant_ref)
            conn = connect(s, hub.secrets, m, platform, account, secrets, settings)
        except (NotFound, ValueError) as exc:
            raise _Fail(str(exc)) from exc
        click.echo(f"connected {platform} {account} to merchant {m.id}: connection {conn.id}")


@connect.command("shopify")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.option("--shop", required=True, help="example.myshopify.com")
@click.option("--access-token", required=True)
def connect_shopify(merchant_ref: str, shop: str, access_token: str) -> None:
    from hub.merchants import normalise_shop

    try:
        shop = normalise_shop(shop)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shop") from exc
    _connect(merchant_ref, "shopify", shop, {"access_token": access_token})


@connect.command("quickbooks")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.option("--realm-id", required=True)
@click.option("--access-token", required=True)
@click.option("--refresh-token", required=True)
def connect_quickbooks(merchant_ref: str, realm_id: str, access_token: str, refresh_token: str) -> None:
    _connect(merchant_ref, "quickbooks", realm_id.strip(),
             {"access_token": access_token, "refresh_token": refresh_token})


@connect.command("hubspot")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.option("--access-token", required=True)
@click.option("--refresh-token", default=None)
@click.option("--hub-id", default=None, help="HubSpot account id (default: one account per merchant)")
def connect_hubspot(merchant_ref: str, access_token: str, refresh_token: str | None, hub_id: str | None) -> None:
    from hub.merchants import NotFound, find_merchant

    if hub_id is None:
        hub = _hub()
        with hub.session() as s:
            try:
                hub_id = f"merchant-{find_merchant(s, merchant_ref).id}"
            except NotFound as exc:
                raise _Fail(str(exc)) from exc
    _connect(merchant_ref, "hubspot", hub_id, {"access_token": access_token, "refresh_token": refresh_token})


@main.group()
def syncs() -> None:
    """List, inspect and re-run sync runs."""


@syncs.command("list")
@click.option("--merchant", "merchant_ref", default=None)
@click.option("--status", type=click.Choice(["pending", "running", "retrying", "succeeded", "failed", "skipped"]))
@click.option("--limit", type=click.IntRange(min=1), default=None)
@click.option("--json", "as_json", is_flag=True)
def syncs_list(merchant_ref: str | None, status: str | None, limit: int | None, as_json: bool) -> None:
    from hub.merchants import NotFound, find_merchant
    from sync.status import list_runs

    hub = _hub()
    with hub.session() as s:
        merchant_id = None
        if merchant_ref:
            try:
                merchant_id = find_merchant(s, merchant_ref).id
            except NotFound as exc:
                raise _Fail(str(exc)) from exc
        rows = list_runs(s, merchant_id=merchant_id, status=status, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        name = r["source"]["name"] or r["source"]["id"]
        click.echo(f"{r['id']:>6}  {r['status']:<9}  {r['kind']:<6} {r['source']['platform']} {name:<12} "
                   f"attempts={r['attempts']}  {r['reason'] or ''}")
    if not rows:
        click.echo("no sync runs")


@syncs.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def syncs_show(run_id: int, as_json: bool) -> None:
    from sync.status import run_detail

    hub = _hub()
    with hub.session() as s:
        detail = run_detail(s, run_id)
    if detail is None:
        raise _Fail(f"no sync run {run_id}")
    if as_json:
        click.echo(json.dumps(detail, indent=2))
        return
    src = detail["source"]
    click.echo(f"run {detail['id']}: {detail['kind']} {src['platform']} {src['name'] or src['id']} "
               f"— {detail['status']} after {detail['attempts']} attempt(s)")
    if detail["reason"]:
        click.echo(f"reason: {detail['reason']}")
    for a in detail["attempt_log"]:
        click.echo(f"  attempt {a['number']} {a['started_at']} {a['outcome'] or '…'}"
                   f"{' in ' + a['step'] if a['step'] else ''}{': ' + a['error'] if a['error'] else ''}")
    for st in detail["steps"]:
        target = st["target"]
        where = f" → {target['platform']} {target['type']} {target['id']}" if target else ""
        click.echo(f"  step {st['step']:<8} {st['outcome']:<9}{where}{'  ' + st['message'] if st['message'] else ''}")


@syncs.command("retry")
@click.argument("run_ids", nargs=-1, type=int)
@click.option("--failed", is_flag=True, help="Re-run every failed run (of --merchant).")
@click.option("--merchant", "merchant_ref", default=None)
@click.option("--wait/--no-wait", default=True,
              help="Embedded mode: run them now and wait (default), or leave them to a running serve/worker.")
def syncs_retry(run_ids: tuple[int, ...], failed: bool, merchant_ref: str | None, wait: bool) -> None:
    from sqlalchemy import select

    from hub.merchants import NotFound, find_merchant
    from hub.models import SyncRun
    from sync import runs
    from sync.dispatch import EmbeddedRunner

    if bool(run_ids) == failed:
        raise click.UsageError("give run ids or --failed (not both)")
    hub = _hub()
    ids = list(run_ids)
    if failed:
        with hub.session() as s:
            q = select(SyncRun.id).where(SyncRun.status == "failed")
            if merchant_ref:
                try:
                    q = q.where(SyncRun.merchant_id == find_merchant(s, merchant_ref).id)
                except NotFound as exc:
                    raise _Fail(str(exc)) from exc
            ids = list(s.scalars(q))
    else:
        with hub.session() as s:
            missing = [i for i in ids if s.get(SyncRun, i) is None]
        if missing:
            raise _Fail(f"no sync run {', '.join(map(str, missing))}")
    changed = runs.requeue(hub.sessions, ids)
    if hub.settings.scale_out:
        for run_id in changed:
            hub.dispatcher.dispatch(run_id)
    elif wait:  # embedded: run them here and now
        runner = hub.dispatcher
        assert isinstance(runner, EmbeddedRunner)
        for run_id in changed:
            runner.dispatch(run_id)
        runner.wait_idle(timeout=600)
        runner.sweep()
        runner.wait_idle(timeout=600)
    # embedded with --no-wait: the sweeper of a running `o2c serve` or `o2c worker` picks them up
    click.echo(f"re-queued {len(changed)} run(s)" + (f": {' '.join(map(str, changed))}" if changed else ""))
    hub.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
