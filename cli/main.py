"""``o2c``: the operator's command line (names fixed in DESIGN.md).

Commands that create something print its id as the last word; exit 0 on success, 2 on a usage
error, 1 on any other failure with a one-line message on stderr. This module holds the web, worker,
demo, merchant and connection commands; ``cli.syncs`` and ``cli.books`` add the rest.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from cli.base import _Fail, _hub, main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=int, show_default=True)
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="gunicorn worker processes (default: 2 × cores + 1).")
@click.option("--dev", is_flag=True, help="Use werkzeug's development server (one process) instead of gunicorn.")
def serve(host: str, port: int, workers: int | None, dev: bool) -> None:
    """Serve the web app (webhooks, health, console) under gunicorn, or werkzeug with --dev. Embedded mode: the
    jobs run in one job process beside the web workers (see web.gunicorn_app); scale-out: in `o2c worker`."""
    logging.getLogger("o2c").setLevel(logging.INFO)
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        dev = True
    if not dev:
        from web.gunicorn_app import default_workers
        from web.gunicorn_app import serve as serve_gunicorn

        count = workers or default_workers()
        click.echo(f"O2C Hub serving on http://{host}:{port} under gunicorn with {count} workers "
                   f"({'scale-out: jobs go to rq' if _scale_out() else 'embedded: jobs run in one job process'})")
        try:
            serve_gunicorn(host, port, count)
        except Exception as exc:  # configuration or database trouble: say it in one line
            raise _Fail(f"cannot serve: {exc}") from exc
        return
    from werkzeug.serving import run_simple

    from web.app import create_app

    hub = _hub()
    app = create_app(hub)
    hub.dispatcher.sweep()  # embedded: starts the runner and picks up what was left
    click.echo(f"O2C Hub serving on http://{host}:{port} "
               f"({'scale-out: jobs go to rq' if hub.settings.scale_out else 'embedded: jobs run in-process'})")
    run_simple(host, port, app, threaded=True, use_reloader=False)


def _scale_out() -> bool:
    from hub.settings import Settings

    return Settings.from_env().scale_out


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
    from demo.run import run_demo

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


@connect.command("woocommerce")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.option("--url", required=True, help="the store's address, e.g. https://shop.example.com")
@click.option("--consumer-key", required=True)
@click.option("--consumer-secret", required=True)
@click.option("--webhook-secret", default=None,
              help="secret the store signs webhooks with (default: a new random one)")
@click.option("--no-webhooks", is_flag=True, help="do not register webhooks (orders then come by backfill)")
def connect_woocommerce(merchant_ref: str, url: str, consumer_key: str, consumer_secret: str,
                        webhook_secret: str | None, no_webhooks: bool) -> None:
    """Check the keys, save them encrypted and register the order webhooks."""
    from hub.storefronts import ConnectError
    from hub.storefronts import connect_woocommerce as connect_store

    hub = _hub()
    try:
        conn = connect_store(hub, merchant_ref, url=url, consumer_key=consumer_key,
                             consumer_secret=consumer_secret, webhook_secret=webhook_secret,
                             register_webhooks=not no_webhooks)
    except ConnectError as exc:
        raise _Fail(str(exc)) from exc
    hooks = len((conn.settings or {}).get("webhook_ids") or [])
    click.echo(f"connected woocommerce {conn.account} to merchant {conn.merchant_id} "
               f"({hooks} webhooks registered): connection {conn.id}")


@main.command("disconnect")
@click.argument("connection_id", type=int)
def disconnect_command(connection_id: int) -> None:
    """Disconnect a connection (its store webhooks are removed; history and bindings stay)."""
    from hub.storefronts import ConnectError, disconnect

    try:
        conn = disconnect(_hub(), connection_id)
    except ConnectError as exc:
        raise _Fail(str(exc)) from exc
    click.echo(f"disconnected {conn.platform} {conn.account}: connection {conn.id}")



from cli import books as _books  # noqa: E402,F401,I001 - each registers its commands on ``main``
from cli import connect_links as _connect_links  # noqa: E402,F401
from cli import credit as _credit  # noqa: E402,F401
from cli import keys as _keys  # noqa: E402,F401
from cli import orders as _orders  # noqa: E402,F401
from cli import payouts as _payouts  # noqa: E402,F401
from cli import receivables as _receivables  # noqa: E402,F401
from cli import syncs as _syncs  # noqa: E402,F401
from cli import tokens as _tokens  # noqa: E402,F401
from cli import users as _users  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
