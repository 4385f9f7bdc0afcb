"""Connecting HubSpot: ``GET /connect/hubspot`` (a signed-in merchant user, or support with
``?merchant=ID``; ``&connection=ID`` to reconnect one) → HubSpot's consent page →
``GET /connect/hubspot/callback?code&state``.

The code becomes tokens at ``{O2C_HUBSPOT_API_URL}/oauth/v1/token``; the account (hub id) comes from
``GET /oauth/v1/access-tokens/{token}``. Both calls go through hubspot-api-client without preloading the
response, so the SDK never logs a body holding tokens. ``revoke`` deletes the refresh token.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import request
from werkzeug.wrappers import Response

from connectors.hubspot import API_URL
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
    require_user,
    save_connection,
)

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.oauth.hubspot")

AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
SCOPES = ("oauth", "crm.objects.contacts.read", "crm.objects.contacts.write")
START, CALLBACK = "/connect/hubspot", "/connect/hubspot/callback"


def _client(the_hub: Hub) -> Any:
    from hubspot import Client

    return Client.create(host=(the_hub.settings.hubspot_api_url or API_URL).rstrip("/"))


def _configured(the_hub: Hub) -> tuple[str, str]:
    st = the_hub.settings
    if not (st.hubspot_client_id and st.hubspot_client_secret):
        raise Refused(503, "The HubSpot app is not configured (HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET).")
    return st.hubspot_client_id, st.hubspot_client_secret


def _json(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.data)
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def exchange_code(the_hub: Hub, code: str) -> tuple[dict[str, Any], str]:
    """The code → (token response, hub id); ``Refused`` when HubSpot says no."""
    client_id, client_secret = _configured(the_hub)
    st = the_hub.settings
    api = _client(the_hub).oauth
    try:
        tokens = _json(api.tokens_api.create(
            grant_type="authorization_code", code=code, redirect_uri=f"{st.public_url}{CALLBACK}",
            client_id=client_id, client_secret=client_secret, _preload_content=False,
            _request_timeout=st.http_timeout))
        if not tokens.get("access_token"):
            raise Refused(502, "HubSpot answered without a token. Nothing was connected.")
        info = _json(api.access_tokens_api.get(tokens["access_token"], _preload_content=False,
                                               _request_timeout=st.http_timeout))
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - the SDK's ApiException, or the network
        status = getattr(exc, "status", 0) or 0
        if 400 <= status < 500:
            raise Refused(400, "HubSpot refused the authorization code (already used, or expired). "
                               "Nothing was connected: start again.") from None
        raise Refused(502, "HubSpot's token service could not be reached: try again.") from None
    hub_id = str(info.get("hub_id") or "").strip()
    if not hub_id.isdigit():
        raise Refused(502, "HubSpot did not say which account the token is for. Nothing was connected.")
    return tokens, hub_id


@bp.get(START)
def hubspot_start() -> Response:
    """Send the user to HubSpot to approve access to one account."""
    user = require_user()
    if isinstance(user, Response):
        return user
    the_hub = hub()
    try:
        merchant_id = merchant_for(user, request.args.get("merchant"))
        reconnect = reconnect_target(user, request.args.get("connection"), "hubspot", merchant_id)
        client_id, _ = _configured(the_hub)
    except Refused as exc:
        return refused(exc)
    state = issue(the_hub, "hubspot", actor=user.email, merchant_id=merchant_id, user_id=user.id,
                  reconnect_id=reconnect)
    query = {"client_id": client_id, "scope": " ".join(SCOPES),
             "redirect_uri": f"{the_hub.settings.public_url}{CALLBACK}", "state": state}
    return go(f"{AUTHORIZE_URL}?{urlencode(query)}")


@bp.get(CALLBACK)
def hubspot_callback() -> Response:
    """HubSpot's answer: check the state, exchange the code, find the account, connect it."""
    the_hub = hub()
    args = request.args
    try:
        used = claim(the_hub, "hubspot", args.get("state"))
    except Refused as exc:
        log.warning("HubSpot callback refused: %s", exc)
        return refused(exc)
    try:
        if args.get("error") or not args.get("code"):
            raise Refused(400, "HubSpot access was not granted. Nothing was connected.")
        tokens, hub_id = exchange_code(the_hub, args["code"])
        check_owner("hubspot", hub_id, used.merchant_id)
        merchant_id, conn_id = save_connection(
            used, merchant_id=used.merchant_id, platform="hubspot", account=hub_id,
            secrets={"access_token": tokens["access_token"], "refresh_token": tokens.get("refresh_token")},
            settings={}, expires_in=int(tokens.get("expires_in") or 1800))
    except Refused as exc:
        finish(the_hub, used.id, reason=str(exc))
        log.warning("HubSpot connect refused: %s", exc)
        return refused(exc)
    finish(the_hub, used.id, connection_id=conn_id)
    log.info("HubSpot account %s connected to merchant %s: connection %s", hub_id, merchant_id, conn_id)
    return done(merchant_id, f"HubSpot account {hub_id} is connected.")
