"""``o2c token create|revoke|list``: bearer tokens for the JSON API. A token is shown once, when it is made;
only its sha256 is stored."""

from __future__ import annotations

import click

from cli.base import _Fail, _hub, main


@main.group()
def token() -> None:
    """Manage API tokens (they act with their user's role)."""


@token.command("create")
@click.argument("email")
@click.option("--name", required=True, help="what the token is for, e.g. the script using it")
def token_create(email: str, name: str) -> None:
    """Make a token for the user EMAIL; prints it once (last word)."""
    from hub import audit
    from hub.models import User
    from web.api.tokens import TokenError, create_token

    hub = _hub()
    with hub.session() as s:
        try:
            row, plain = create_token(s, email, name)
        except TokenError as exc:
            raise _Fail(str(exc)) from exc
        owner = s.get(User, row.user_id)
        audit.record(s, "cli", "token.created", target_type="api_token", target_id=row.id,
                     merchant_id=owner.merchant_id if owner else None,
                     detail={"name": row.name, "user_id": row.user_id})
        s.commit()
        click.echo(f"created API token {row.id} ({row.name}) for {email.strip().lower()}; "
                   f"it is shown only now: {plain}")
    hub.close()


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token for good."""
    from hub import audit
    from web.api.tokens import TokenError, revoke_token

    hub = _hub()
    with hub.session() as s:
        try:
            row = revoke_token(s, token_id)
        except TokenError as exc:
            raise _Fail(str(exc)) from exc
        audit.record(s, "cli", "token.revoked", target_type="api_token", target_id=row.id,
                     detail={"name": row.name, "user_id": row.user_id})
        s.commit()
        click.echo(f"revoked API token {row.id} ({row.name})")
    hub.close()


@token.command("list")
def token_list() -> None:
    """Every token: id, user, name, created, last used, revoked (never the token itself)."""
    from web.api.tokens import list_tokens

    hub = _hub()
    with hub.session() as s:
        rows = list_tokens(s)
    for row, email in rows:
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        click.echo(f"{row.id:>5}  {email:<30} {row.name:<24} created {row.created_at:%Y-%m-%d %H:%M}  "
                   f"last used {used}  {state}")
    if not rows:
        click.echo("no API tokens")
    hub.close()
