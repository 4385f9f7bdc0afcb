"""Installing the Shopify app: ``GET /connect/shopify?shop=…`` → Shopify's consent page →
``GET /connect/shopify/callback``.

The callback is accepted only when its HMAC (hex, over the sorted query string) is Shopify's, the shop is
a ``*.myshopify.com`` domain and the one the flow started for, the timestamp is recent, and the state is
this browser's unused one. Then the code becomes an offline token (classic or expiring), the order and
uninstall webhooks are subscribed, and the shop is connected (to the signed-in merchant, to the merchant
it belongs to already, or to a new merchant for a new shop), encrypted. Any refusal saves nothing.
"""

from __future__ import annotations

import logging
import re
import time

from flask import request
from werkzeug.wrappers import Response

from connectors.errors import ConnectorError, Permanent
from connectors.shopify import ShopifyClient
from connectors.shopify_oauth import (
    authorize_url,
    exchange_code,
    hmac_matches,
    missing_scopes,
    register_webhooks,
    shop_name,
)
from hub.settings import Settings
from web.oauth.blueprint import bp
from web.oauth.state import Refused, claim, finish, issue
from web.oauth.web import (
    check_owner,
    done,
    go,
    hub,
    merchant_for,
    reconnect_target,
    refused,
    save_connection,
    signed_in,
)

log = logging.getLogger("o2c.oauth.shopify")

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
MAX_AGE = 24 * 3600       # a callback older than a day is a replay
MAX_AHEAD = 5 * 60        # clocks differ, but not by more than this
START, CALLBACK = "/connect/shopify", "/connect/shopify/callback"


def wants_expiring_tokens(settings: Settings) -> bool:
    """``SHOPIFY_TOKEN_KIND=classic`` asks Shopify for non-expiring offline tokens; the default asks for the
    expiring kind (required for public apps from 2027-01-01). Whatever Shopify answers is kept."""
    return settings.shopify_token_kind != "classic"


def _shop(raw: str | None) -> str:
    shop = (raw or "").strip().lower()
    if not SHOP_DOMAIN.fullmatch(shop):
        raise Refused(400, "The shop must be a Shopify domain like example.myshopify.com.")
    return shop


def _query() -> list[tuple[str, str]]:
    pairs = list(request.args.items(multi=True))
    if len({k for k, _ in pairs}) != len(pairs):
        raise Refused(400, "The request repeats a parameter, so its signature cannot be checked.")
    return pairs


def _app_secrets() -> list[str]:
    st = hub().settings
    return [s for s in (st.shopify_api_secret, st.shopify_api_secret_previous) if s]


def _check_signed(pairs: list[tuple[str, str]]) -> None:
    """Shopify's HMAC over the query string and a timestamp neither too old nor ahead; ``Refused`` else."""
    args = dict(pairs)
    if not hmac_matches(pairs, args.get("hmac"), _app_secrets()):
        raise Refused(401, "The request is not signed by Shopify (HMAC mismatch). Nothing was connected.")
    try:
        stamp = int(args.get("timestamp", ""))
    except ValueError:
        raise Refused(400, "The request has no valid timestamp. Nothing was connected.") from None
    now = time.time()
    if stamp < now - MAX_AGE:
        raise Refused(400, "The request is more than a day old. Nothing was connected: start again.")
    if stamp > now + MAX_AHEAD:
        raise Refused(400, "The request's timestamp is in the future. Nothing was connected.")


@bp.get(START)
def shopify_start() -> Response:
    """Send the merchant to the shop's consent page (from Shopify's install link, or the console)."""
    the_hub = hub()
    st = the_hub.settings
    try:
        shop = _shop(request.args.get("shop"))
        user = signed_in()
        merchant_id = reconnect = None
        if user is not None and (user.scope is not None or request.args.get("merchant")):
            merchant_id = merchant_for(user, request.args.get("merchant"))
            reconnect = reconnect_target(user, request.args.get("connection"), "shopify", merchant_id)
            check_owner("shopify", shop, merchant_id)
        if not (st.shopify_api_key and st.shopify_api_secret):
            raise Refused(503, "The Shopify app is not configured (SHOPIFY_API_KEY, SHOPIFY_API_SECRET).")
        if "hmac" in request.args:  # Shopify's own install request: signed like the callback
            _check_signed(_query())
    except Refused as exc:
        return refused(exc)
    state = issue(the_hub, "shopify", actor=user.email if user else f"shopify:{shop}", merchant_id=merchant_id,
                  user_id=user.id if user else None, account=shop, reconnect_id=reconnect)
    return go(authorize_url(shop, api_url=st.shopify_api_url, client_id=st.shopify_api_key,
                            redirect_uri=f"{st.public_url}{CALLBACK}", state=state))


@bp.get(CALLBACK)
def shopify_callback() -> Response:
    """Shopify's answer: verify everything, exchange the code, subscribe the webhooks, connect the shop."""
    the_hub = hub()
    st = the_hub.settings
    try:
        pairs = _query()
        shop = _shop(dict(pairs).get("shop"))
        _check_signed(pairs)
        used = claim(the_hub, "shopify", dict(pairs).get("state"))
    except Refused as exc:
        log.warning("Shopify callback refused: %s", exc)
        return refused(exc)
    try:
        if used.account != shop:
            raise Refused(400, f"The answer is for {shop}, but the connect request was for {used.account}. "
                               "Nothing was connected.")
        check_owner("shopify", shop, used.merchant_id)
        code = dict(pairs).get("code")
        if not code:
            raise Refused(400, "Shopify sent no authorization code. Nothing was connected.")
        try:
            tokens = exchange_code(shop, code, api_url=st.shopify_api_url, client_id=st.shopify_api_key or "",
                                   client_secret=st.shopify_api_secret or "", expiring=wants_expiring_tokens(st),
                                   timeout=st.http_timeout)
        except Permanent:
            raise Refused(400, "Shopify refused the authorization code (already used, or expired). "
                               "Nothing was connected: start again.") from None
        except ConnectorError:
            raise Refused(502, "Shopify's token endpoint could not be reached. Nothing was connected: "
                               "try again in a moment.") from None
        lacking = missing_scopes(tokens.scope)
        if lacking:
            raise Refused(403, f"The app was granted too little access (missing {', '.join(lacking)}). "
                               "Nothing was connected.")
        client = ShopifyClient(shop, tokens.access_token, api_url=st.shopify_api_url, timeout=st.http_timeout)
        callback_url = f"{st.public_url}/webhooks/shopify"
        try:
            register_webhooks(client, callback_url)
        except ConnectorError as exc:
            raise Refused(502, f"The order webhooks could not be subscribed ({exc.message}). Nothing was "
                               "connected: try again.") from None
        merchant_id, conn_id = save_connection(
            used, merchant_id=used.merchant_id, platform="shopify", account=shop, secrets=tokens.secrets(),
            settings={"token_kind": tokens.kind, "scopes": tokens.scope, "webhook_url": callback_url},
            expires_in=tokens.expires_in, new_merchant=shop_name(client) or shop.split(".")[0])
    except Refused as exc:
        finish(the_hub, used.id, reason=str(exc))
        log.warning("Shopify install for %s refused: %s", shop, exc)
        return refused(exc)
    finish(the_hub, used.id, connection_id=conn_id)
    log.info("Shopify app installed for %s: merchant %s, connection %s (%s token)", shop, merchant_id, conn_id,
             tokens.kind)
    return done(merchant_id, f"Shop {shop} is connected: its orders now reach your books.")
