"""``o2c connect woocommerce-link``: a one-time link with which a merchant connects a WooCommerce store by
approving the app in the store (the key exchange), so nobody has to copy API keys by hand."""

from __future__ import annotations

import click

from cli.base import _Fail, _hub
from cli.main import connect


@connect.command("woocommerce-link")
@click.argument("merchant_ref", metavar="MERCHANT")
@click.option("--url", required=True, help="the store's address, e.g. https://shop.example.com")
@click.option("--expires-in", default=3600, show_default=True, type=click.IntRange(60, 7 * 24 * 3600),
              help="seconds the link stays valid (it works once)")
def connect_woocommerce_link(merchant_ref: str, url: str, expires_in: int) -> None:
    """Print a one-time link (last word) that connects the store once its owner approves O2C Hub."""
    from connectors.woocommerce import normalise_store_url
    from web.woocommerce_auth import LinkError, create_link

    try:
        normalise_store_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from exc
    hub = _hub()
    try:
        link = create_link(hub, merchant_ref, url, expires_in=expires_in)
    except LinkError as exc:
        raise _Fail(str(exc)) from exc
    finally:
        hub.close()
    if not hub.settings.public_url.startswith("https://"):
        click.echo(f"note: O2C_PUBLIC_URL is {hub.settings.public_url}; a real store only sends keys to an "
                   "https callback URL", err=True)
    click.echo(f"send this link to the store's owner (valid {expires_in} s, works once): {link}")
