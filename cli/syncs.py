"""``o2c syncs list|show|retry``: what support staff and scripts use to follow and re-run sync runs."""

from __future__ import annotations

import json

import click

from cli.base import _Fail, _hub, main


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
    from web.api.service import RunQuery, find_runs

    hub = _hub()
    with hub.session() as s:
        merchant_id = None
        if merchant_ref:
            try:
                merchant_id = find_merchant(s, merchant_ref).id
            except NotFound as exc:
                raise _Fail(str(exc)) from exc
        rows, _ = find_runs(s, RunQuery(merchant=merchant_id, status=status), limit=limit)
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
    from web.api.service import run_view

    hub = _hub()
    with hub.session() as s:
        detail = run_view(s, run_id)
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
    from hub.merchants import NotFound, find_merchant
    from sync.dispatch import EmbeddedRunner
    from web.api.service import RunQuery, failed_run_ids, retry_runs, visible_run

    if bool(run_ids) == failed:
        raise click.UsageError("give run ids or --failed (not both)")
    hub = _hub()
    ids = list(run_ids)
    if failed:
        with hub.session() as s:
            query = RunQuery()
            if merchant_ref:
                try:
                    query.merchant = find_merchant(s, merchant_ref).id
                except NotFound as exc:
                    raise _Fail(str(exc)) from exc
            ids = failed_run_ids(s, query)
    else:
        with hub.session() as s:
            missing = [i for i in ids if visible_run(s, i) is None]
        if missing:
            raise _Fail(f"no sync run {', '.join(map(str, missing))}")
    # scale-out: to the queue; embedded: here and now when waiting, else to a running serve/worker's sweeper
    changed = retry_runs(hub, ids, "cli", dispatch=hub.settings.scale_out or wait)
    if not hub.settings.scale_out and wait:
        runner = hub.dispatcher
        assert isinstance(runner, EmbeddedRunner)
        runner.wait_idle(timeout=600)
        runner.sweep()
        runner.wait_idle(timeout=600)
    # embedded with --no-wait: the sweeper of a running `o2c serve` or `o2c worker` picks them up
    click.echo(f"re-queued {len(changed)} run(s)" + (f": {' '.join(map(str, changed))}" if changed else ""))
    hub.close()
