"""The ``o2c`` command group and what every command module shares (names fixed in DESIGN.md).

Commands that create something print its id as the last word; exit 0 on success, 2 on a usage
error, 1 on any other failure with a one-line message on stderr.
"""

from __future__ import annotations

import logging
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



def merchant_id_of(hub: Hub, merchant_ref: str) -> int:
    """The id of the merchant named or numbered ``merchant_ref``; a one-line failure when there is none."""
    from hub.merchants import NotFound, find_merchant

    with hub.session() as s:
        try:
            return find_merchant(s, merchant_ref).id
        except NotFound as exc:
            raise _Fail(str(exc)) from exc
