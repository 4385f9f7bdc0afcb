"""What the three connect flows share on the web side: who is asking, for which merchant, saving the
connection (with its audit entry), and the pages and redirects that end a flow."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import abort, current_app, flash, redirect, render_template_string, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from hub import audit
from hub.merchants import connect, create_merchant
from hub.models import Connection, Merchant, utcnow
from mappings.inputs import InvalidInput, parse_optional_id
from web.console.security import CurrentUser, session_user
from web.oauth.state import Claim, Refused

if TYPE_CHECKING:
    from hub.runtime import Hub

SINGLE = ("quickbooks", "hubspot")   # a merchant keeps its books and its CRM in one account each
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }} · O2C Hub</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:42rem;line-height:1.4}</style></head>
<body><h1>{{ title }}</h1><p id="message">{{ message }}</p>
{% if back %}<p><a href="{{ back }}">Back to the console</a></p>{% endif %}</body></html>"""


def hub() -> Hub:
    return current_app.extensions["o2c"]


def signed_in() -> CurrentUser | None:
    """The console user of this browser's session (enabled, session not ended), or None."""
    return session_user()


def require_user() -> CurrentUser | Response:
    """The signed-in user, or a redirect to the console's sign-in page."""
    user = signed_in()
    if user is None:
        return redirect(url_for("console.login", next=url_for("console.connections")))
    return user


def merchant_for(user: CurrentUser, raw: str | None) -> int:
    """The merchant a flow connects: a merchant user's own (any other → 404), or the ``merchant`` a support
    or admin user names."""
    try:
        named = parse_optional_id(raw, name="merchant")
    except InvalidInput as exc:
        raise Refused(400, f"{exc}: say which merchant to connect (?merchant=ID).") from None
    if user.scope is not None:
        if named is not None and named != user.scope:
            abort(404)
        merchant_id = user.scope
    elif named is not None:
        merchant_id = named
    else:
        raise Refused(400, "Say which merchant to connect (?merchant=ID).")
    with hub().session() as s:
        if s.get(Merchant, merchant_id) is None:
            abort(404)
    return merchant_id


def reconnect_target(user: CurrentUser, raw: str | None, platform: str, merchant_id: int) -> int | None:
    """The connection a Reconnect button renews (it must be this merchant's, of this platform), else None."""
    try:
        connection_id = parse_optional_id(raw, name="connection")
    except InvalidInput:
        abort(404)
    if connection_id is None:
        return None
    with hub().session() as s:
        conn = s.get(Connection, connection_id)
    if conn is None or conn.platform != platform or conn.merchant_id != merchant_id or not user.may_see(
            conn.merchant_id):
        abort(404)
    return conn.id


def owner_of(platform: str, account: str) -> int | None:
    """The merchant the account is connected to already, if any."""
    with hub().session() as s:
        return s.scalar(select(Connection.merchant_id).where(Connection.platform == platform,
                                                             Connection.account == account))


def check_owner(platform: str, account: str, merchant_id: int | None) -> None:
    """``Refused(403)`` when the account is another merchant's (checked before any code is exchanged)."""
    owner = owner_of(platform, account)
    if merchant_id is not None and owner is not None and owner != merchant_id:
        raise Refused(403, f"{platform} account {account} is connected to another merchant. Nothing was changed.")


def save_connection(claim: Claim, *, merchant_id: int | None, platform: str, account: str,
                    secrets: dict[str, Any], settings: dict[str, Any], expires_in: int | None,
                    new_merchant: str | None = None) -> tuple[int, int]:
    """Connect (or reconnect) the account, encrypted, for ``merchant_id`` (None: the merchant it belongs to
    already, else a new merchant named ``new_merchant``); ``Refused`` when it belongs to someone else or
    contradicts the Reconnect button that started the flow. Returns (merchant id, connection id)."""
    the_hub = hub()
    with the_hub.session() as s:
        if merchant_id is None:
            merchant_id = s.scalar(select(Connection.merchant_id).where(Connection.platform == platform,
                                                                        Connection.account == account))
        if merchant_id is None and new_merchant:
            merchant = create_merchant(s, new_merchant)
            audit.record(s, claim.actor, "merchant.created", target_type="merchant", target_id=merchant.id,
                         merchant_id=merchant.id, detail={"via": f"{platform} install", "account": account})
        else:
            merchant = s.get(Merchant, merchant_id) if merchant_id is not None else None
        if merchant is None:
            raise Refused(404, "The merchant no longer exists.")
        merchant_id = merchant.id
        if claim.reconnect_id is not None:
            wanted = s.get(Connection, claim.reconnect_id)
            if wanted is None or wanted.account != account:
                raise Refused(400, f"You approved {platform} account {account}, but the connection being "
                                   f"reconnected is for {wanted.account if wanted else 'another account'}. "
                                   "Nothing was changed.")
        elif platform in SINGLE:
            other = s.scalar(select(Connection.account).where(
                Connection.merchant_id == merchant_id, Connection.platform == platform,
                Connection.account != account, Connection.status != "disconnected"))
            if other is not None:
                raise Refused(409, f"This merchant already has {platform} account {other} connected: "
                                   "disconnect it first. Nothing was changed.")
        existed = s.scalar(select(Connection.id).where(Connection.platform == platform,
                                                       Connection.account == account))
        try:
            conn = connect(s, the_hub.secrets, merchant, platform, account, secrets, settings)
        except ValueError as exc:
            raise Refused(403, f"{exc}. Nothing was changed.") from exc
        conn.token_expires_at = utcnow() + timedelta(seconds=expires_in) if expires_in else None
        audit.record(s, claim.actor, "connection.connected", target_type="connection", target_id=conn.id,
                     merchant_id=merchant_id, detail={"platform": platform, "account": account, "via": "oauth",
                                                      "reconnected": existed is not None})
        s.flush()
        return merchant_id, conn.id


def page(title: str, message: str, status: int = 200) -> Response:
    """A small page that ends a flow; never cached, and no Referer to leak the callback's query string."""
    back = url_for("console.connections") if signed_in() else None
    response = Response(render_template_string(PAGE, title=title, message=message, back=back), status,
                        mimetype="text/html")
    response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    return response


def done(merchant_id: int, message: str) -> Response:
    """Back to the merchant's connections (signed in) with the news, or a page saying it."""
    if signed_in() is None:
        return page("Connected", message)
    flash(message, "ok")
    response = redirect(url_for("console.connections", merchant=merchant_id))
    response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    return response


def refused(exc: Refused) -> Response:
    return page("Not connected", str(exc), exc.status)


def go(location: str) -> Response:
    """Off to a platform's consent page."""
    response = redirect(location)
    response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    return response
