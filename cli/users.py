"""``o2c user create|password|role|disable|enable``: console accounts. A password comes from stdin or a
hidden prompt, never argv. A new password, a new role or disabling ends every session of the user."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from cli.base import _Fail, _hub, main, merchant_id_of
from hub.users import MIN_PASSWORD, ROLES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.models import User


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
    password = _read_password(password_stdin)
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


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise _Fail(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def _change(email: str, action: str, change: Callable[[Session, User], dict[str, Any] | None]) -> None:
    """Apply ``change`` to the user with ``email``, audit it as ``action`` (unless it changed nothing)."""
    from hub import audit
    from hub.users import UserError, find_user

    hub = _hub()
    try:
        with hub.session() as s:
            target = find_user(s, email)
            if target is None:
                raise _Fail(f"no user {email.strip().lower()}")
            try:
                detail = change(s, target)
            except UserError as exc:
                raise _Fail(str(exc)) from exc
            if detail is None:
                click.echo(f"user {target.email} unchanged")
                return
            audit.record(s, "cli", action, target_type="user", target_id=target.id,
                         merchant_id=target.merchant_id, detail={"email": target.email, **detail})
            click.echo(f"{action.split('.', 1)[1].replace('_', ' ')}: user {target.email} "
                       f"(signed out everywhere) id {target.id}")
    finally:
        hub.close()


@user.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="read the new password from the first line of stdin")
def user_password(email: str, password_stdin: bool) -> None:
    """Give a console user a new password; ends every session of that user."""
    from hub.users import set_password

    password = _read_password(password_stdin)

    def change(s: Session, target: User) -> dict[str, Any]:
        set_password(s, target, password)
        return {}

    _change(email, "user.password_changed", change)


@user.command("role")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--merchant", "merchant_ref", default=None, help="the merchant of a merchant user (id or name)")
def user_role(email: str, role: str, merchant_ref: str | None) -> None:
    """Change a console user's role; ends every session of that user."""
    from hub.users import set_role

    if role == "merchant" and not merchant_ref:
        raise click.UsageError("a merchant user needs --merchant")
    if role != "merchant" and merchant_ref:
        raise click.UsageError(f"a {role} user sees every merchant: --merchant is only for --role merchant")
    merchant_id = None
    if merchant_ref:
        hub = _hub()
        try:
            merchant_id = merchant_id_of(hub, merchant_ref)
        finally:
            hub.close()

    def change(s: Session, target: User) -> dict[str, Any] | None:
        old = target.role
        return {"from": old, "to": role} if set_role(s, target, role, merchant_id) else None

    _change(email, "user.role_changed", change)


@user.command("disable")
@click.argument("email")
def user_disable(email: str) -> None:
    """Disable a console user: it cannot sign in, its sessions end and its API tokens stop working."""
    from hub.users import set_disabled

    _change(email, "user.disabled", lambda s, target: {} if set_disabled(s, target, True) else None)


@user.command("enable")
@click.argument("email")
def user_enable(email: str) -> None:
    """Enable a disabled console user again (it signs in afresh: no old session comes back)."""
    from hub.users import set_disabled

    _change(email, "user.enabled", lambda s, target: {} if set_disabled(s, target, False) else None)
