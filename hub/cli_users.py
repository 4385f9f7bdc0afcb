"""``o2c user create``: console accounts. The password comes from stdin or a hidden prompt, never argv."""

from __future__ import annotations

import sys

import click

from hub.cli_base import _Fail, _hub, main, merchant_id_of
from hub.users import MIN_PASSWORD, ROLES


@main.group()
def user() -> None:
    """Manage the support console's users."""


@user.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="support and admin see every merchant; merchant sees only its own")
@click.option("--merchant", "merchant_ref", default=None, help="the merchant of a merchant user (id or name)")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
def user_create(email: str, role: str, merchant_ref: str | None, password_stdin: bool) -> None:
    """Create a console user; prints its id (last word)."""
    from hub import audit
    from hub.users import UserError, create_user

    if role == "merchant" and not merchant_ref:
        raise click.UsageError("a merchant user needs --merchant")
    if role != "merchant" and merchant_ref:
        raise click.UsageError(f"a {role} user sees every merchant: --merchant is only for --role merchant")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise _Fail(f"the password must have at least {MIN_PASSWORD} characters")
    hub = _hub()
    merchant_id = merchant_id_of(hub, merchant_ref) if merchant_ref else None
    with hub.session() as s:
        try:
            created = create_user(s, email, password, role, merchant_id)
        except UserError as exc:
            raise _Fail(str(exc)) from exc
        audit.record(s, "cli", "user.created", target_type="user", target_id=created.id, merchant_id=merchant_id,
                     detail={"email": created.email, "role": role})
        s.commit()
        click.echo(f"created {role} user {created.email} with id {created.id}")
    hub.close()
