"""WooCommerce app authentication (the key exchange), without anyone typing keys into a console.

1. ``o2c connect woocommerce-link`` makes a one-time link for a merchant and a store (``create_link``).
2. ``GET /connect/woocommerce/start?token=…`` uses the link up and sends the merchant to the store's
   ``/wc-auth/v1/authorize`` page with a fresh ``state`` as ``user_id``.
3. On approval the store POSTs the new keys to ``/connect/woocommerce/callback``; the hub checks them,
   saves them encrypted and registers its webhooks (``hub.storefronts.connect_woocommerce``) before
   answering 200. Any other answer makes the store delete the key.
4. The store then redirects to ``/connect/woocommerce/return``, which says what happened.

Only sha256 hashes of the link token and of the state are stored; the keys are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, render_template_string, request
from sqlalchemy import select, update

from connectors.woocommerce import normalise_store_url
from hub.auth_models import PendingAuthorization
from hub.merchants import NotFound, find_merchant
from hub.models import utcnow
from hub.storefronts import ConnectError, connect_woocommerce
from mappings.inputs import clean_json

if TYPE_CHECKING:
    from hub.runtime import Hub

bp = Blueprint("woocommerce_auth", __name__)
log = logging.getLogger("o2c.woocommerce_auth")

APP_NAME = "O2C Hub"
SCOPE = "read_write"
STATE_TTL = timedelta(minutes=15)
MAX_CALLBACK_BODY = 64 * 1024
START_PATH, CALLBACK_PATH, RETURN_PATH = ("/connect/woocommerce/start", "/connect/woocommerce/callback",
                                          "/connect/woocommerce/return")
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }} · O2C Hub</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:42rem;line-height:1.4}</style></head>
<body><h1>{{ title }}</h1><p>{{ message }}</p>{% if detail %}<p>{{ detail }}</p>{% endif %}</body></html>"""


class LinkError(ValueError):
    """A connect link cannot be made; the message names the cause."""


class Refused(Exception):
    """A step of the exchange is refused: ``status`` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Outcome:
    """What the return page shows."""

    connected: bool
    title: str
    message: str
    connection_id: int | None = None


def digest(value: str) -> str:
    """The stored form of a token or state: sha256, hex."""
    return hashlib.sha256(value.encode()).hexdigest()


# -- the service functions ---------------------------------------------------------------------
def create_link(hub: Hub, merchant_ref: str, store_url: str, *, expires_in: int = 3600) -> str:
    """A one-time link that connects ``store_url`` to the merchant when its owner approves the app."""
    try:
        url = normalise_store_url(store_url)
    except ValueError as exc:
        raise LinkError(str(exc)) from exc
    if expires_in <= 0:
        raise LinkError("--expires-in must be a positive number of seconds")
    token = secrets.token_urlsafe(32)
    with hub.session() as s:
        try:
            merchant = find_merchant(s, merchant_ref)
        except NotFound as exc:
            raise LinkError(str(exc)) from exc
        s.add(PendingAuthorization(merchant_id=merchant.id, platform="woocommerce", store_url=url,
                                   token_hash=digest(token), status="issued",
                                   expires_at=utcnow() + timedelta(seconds=expires_in)))
    return f"{hub.settings.public_url}{START_PATH}?{urlencode({'token': token})}"


def begin(hub: Hub, token: str) -> str:
    """Use the link up (once) and return the store's authorize URL; ``Refused`` when it cannot be used."""
    if not token:
        raise Refused(400, "This link is incomplete: it has no token.")
    hashed, now = digest(token), utcnow()
    state = secrets.token_urlsafe(32)
    with hub.session() as s:
        row = s.scalar(select(PendingAuthorization).where(PendingAuthorization.token_hash == hashed))
        if row is None or not hmac.compare_digest(row.token_hash, hashed):
            raise Refused(400, "This link is not valid. Ask for a new one.")
        if row.used_at is not None:
            raise Refused(410, "This link was already used. Each link works once: ask for a new one.")
        if row.expires_at <= now:
            raise Refused(410, "This link has expired. Ask for a new one.")
        claimed = s.execute(update(PendingAuthorization)
                            .where(PendingAuthorization.id == row.id, PendingAuthorization.used_at.is_(None))
                            .values(used_at=now, status="started", state_hash=digest(state),
                                    state_expires_at=now + STATE_TTL, updated_at=now))
        if claimed.rowcount != 1:  # opened twice at the same moment: only one wins
            raise Refused(410, "This link was already used. Each link works once: ask for a new one.")
        store_url, auth_id = row.store_url, row.id
    public = hub.settings.public_url
    log.info("WooCommerce key exchange %s: sending the merchant to %s", auth_id, store_url)
    query = {"app_name": APP_NAME, "scope": SCOPE, "user_id": state, "return_url": f"{public}{RETURN_PATH}",
             "callback_url": f"{public}{CALLBACK_PATH}"}
    return f"{store_url}/wc-auth/v1/authorize?{urlencode(query)}"


def complete(hub: Hub, payload: dict[str, Any]) -> int:
    """Handle the store's callback: check it, connect the store; returns the connection id.
    ``Refused(400)`` (with the reason recorded on the authorisation when it is known) otherwise."""
    state = payload.get("user_id")
    if not isinstance(state, str) or not state:
        raise Refused(400, "user_id is missing")
    hashed, now = digest(state), utcnow()
    with hub.session() as s:
        row = s.scalar(select(PendingAuthorization).where(PendingAuthorization.state_hash == hashed))
        if row is None or not hmac.compare_digest(row.state_hash or "", hashed):
            raise Refused(400, "unknown authorisation")
        auth_id, merchant_id, store_url = row.id, row.merchant_id, row.store_url
        if row.status != "started":
            raise Refused(400, f"this authorisation is already {row.status}")
        expired = row.state_expires_at is None or row.state_expires_at <= now
        claimed = s.execute(update(PendingAuthorization)
                            .where(PendingAuthorization.id == auth_id, PendingAuthorization.status == "started")
                            .values(status="connecting", updated_at=now))
        if claimed.rowcount != 1:
            raise Refused(400, "this authorisation is already being completed")
    key, secret = payload.get("consumer_key"), payload.get("consumer_secret")
    if expired:
        raise _fail(hub, auth_id, store_url, "the store's answer came after the 15-minute limit: ask for a new link")
    granted = str(payload.get("key_permissions"))[:20]
    if granted != SCOPE:
        raise _fail(hub, auth_id, store_url, f"the store granted {granted!r} access; O2C Hub needs {SCOPE!r}")
    if not (isinstance(key, str) and key.strip() and isinstance(secret, str) and secret.strip()):
        raise _fail(hub, auth_id, store_url, "the store sent no consumer key or secret")
    try:
        conn = connect_woocommerce(hub, str(merchant_id), url=store_url, consumer_key=key,
                                   consumer_secret=secret, webhook_secret=None)
    except ConnectError as exc:
        raise _fail(hub, auth_id, store_url, _scrub(str(exc), key, secret)) from None
    except Exception as exc:  # noqa: BLE001 - any failure must reach the store as a 400 (it then deletes the key)
        log.error("WooCommerce key exchange %s: connecting failed with %s", auth_id, type(exc).__name__)
        raise _fail(hub, auth_id, store_url, f"internal error while connecting ({type(exc).__name__})") from None
    _record(hub, auth_id, status="completed", reason=None, connection_id=conn.id)
    log.info("WooCommerce key exchange %s: %s connected to merchant %s as connection %s", auth_id, store_url,
             merchant_id, conn.id)
    return conn.id


def outcome(hub: Hub, state: str, success: str | None) -> Outcome:
    """What became of the exchange whose state is ``state`` (``success`` is the store's redirect flag:
    ``0`` means the merchant denied access). ``Refused(400)`` when no such exchange exists."""
    hashed = digest(state or "")
    with hub.session() as s:
        row = s.scalar(select(PendingAuthorization).where(PendingAuthorization.state_hash == hashed))
        if not state or row is None or not hmac.compare_digest(row.state_hash or "", hashed):
            raise Refused(400, "There is no such authorisation.")
        if success == "0" and row.status == "started":
            row.status, row.reason = "denied", "access was denied in the store"
            log.info("WooCommerce key exchange %s: denied by the merchant at %s", row.id, row.store_url)
        status, reason, conn_id, url = row.status, row.reason, row.connection_id, row.store_url
    if status == "completed":
        return Outcome(True, "Store connected", f"{url} is connected to O2C Hub as connection {conn_id}. "
                                                "New orders will reach your books from now on.", conn_id)
    if status == "denied":
        return Outcome(False, "Not connected", f"Access to {url} was denied in the store, so nothing was "
                                               "connected. Ask for a new link to try again.")
    if status == "failed":
        return Outcome(False, "Not connected", f"{url} could not be connected: {reason}. The store has deleted "
                                               "the key it made. Ask for a new link to try again.")
    return Outcome(False, "Not connected yet", f"{url} has not sent its keys to O2C Hub. If you approved the "
                                               "app, wait a moment and reload this page.")


def _fail(hub: Hub, auth_id: int, store_url: str, reason: str) -> Refused:
    """Record why the exchange failed; the error to raise."""
    _record(hub, auth_id, status="failed", reason=reason, connection_id=None)
    log.warning("WooCommerce key exchange %s for %s refused: %s", auth_id, store_url, reason)
    return Refused(400, reason)


def _record(hub: Hub, auth_id: int, *, status: str, reason: str | None, connection_id: int | None) -> None:
    with hub.session() as s:
        row = s.get(PendingAuthorization, auth_id)
        if row is not None:
            row.status, row.reason, row.connection_id = status, reason, connection_id


def _scrub(text: str, *values: Any) -> str:
    for value in values:
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "[redacted]")
    return text


# -- the routes ---------------------------------------------------------------------------------
def _page(title: str, message: str, status: int, detail: str | None = None) -> Response:
    response = Response(render_template_string(PAGE, title=title, message=message, detail=detail), status,
                        mimetype="text/html")
    response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    return response


def _answer(http_status: int, **body: Any) -> Response:
    return Response(json.dumps(body), http_status, mimetype="application/json", headers={"Cache-Control": "no-store"})


@bp.get(START_PATH)
def start() -> Response:
    """Open a connect link: on to the store's approval page."""
    hub = current_app.extensions["o2c"]
    try:
        location = begin(hub, request.args.get("token", ""))
    except Refused as exc:
        return _page("Cannot connect the store", str(exc), exc.status)
    return Response("", 302, headers={"Location": location, "Cache-Control": "no-store",
                                      "Referrer-Policy": "no-referrer"})


@bp.post(CALLBACK_PATH)
def callback() -> Response:
    """The store sends the keys it made (JSON, at most 64 KB); 200 only once the store is connected."""
    hub = current_app.extensions["o2c"]
    if request.content_length is not None and request.content_length > MAX_CALLBACK_BODY:
        return _answer(413, error=f"body larger than {MAX_CALLBACK_BODY} bytes")
    if request.mimetype != "application/json":
        return _answer(415, error="the body must be JSON")
    body = request.stream.read(MAX_CALLBACK_BODY + 1)
    if len(body) > MAX_CALLBACK_BODY:
        return _answer(413, error=f"body larger than {MAX_CALLBACK_BODY} bytes")
    try:
        payload = clean_json(json.loads(body))  # a lone surrogate in user_id must not reach hashing or storage
    except (ValueError, RecursionError):
        return _answer(400, error="the body is not JSON")
    if not isinstance(payload, dict):
        return _answer(400, error="the body is not a JSON object")
    try:
        connection_id = complete(hub, payload)
    except Refused as exc:
        return _answer(exc.status, error=str(exc))
    return _answer(200, status="connected", connection=connection_id)


@bp.get(RETURN_PATH)
def returned() -> Response:
    """Where the store sends the merchant back: connected or not, and why."""
    hub = current_app.extensions["o2c"]
    try:
        result = outcome(hub, request.args.get("user_id", ""), request.args.get("success"))
    except Refused as exc:
        return _page("Unknown authorisation", str(exc), exc.status)
    return _page(result.title, result.message, 200)
