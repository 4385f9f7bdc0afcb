"""Connecting QuickBooks Online with intuit-oauth: ``GET /connect/quickbooks`` (a signed-in merchant user,
or support with ``?merchant=ID``; ``&connection=ID`` to reconnect one) → Intuit's consent page →
``GET /connect/quickbooks/callback?code&state&realmId``.

The state must be this browser's unused one; the code becomes tokens (intuit-oauth), which must open the
company named by ``realmId`` before anything is saved; the connection is saved encrypted and syncs
waiting for a reconnect resume. ``revoke`` is what disconnecting calls.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import requests
from flask import request
from werkzeug.wrappers import Response

from connectors.errors import ConnectorError
from connectors.quickbooks import QuickBooksClient, intuit_auth_client
from hub.revocation import revoke_quickbooks
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

log = logging.getLogger("o2c.oauth.quickbooks")

START, CALLBACK = "/connect/quickbooks", "/connect/quickbooks/callback"
REALM = re.compile(r"^[0-9]{1,32}$")


def _auth_client(the_hub: Hub) -> Any:
    st = the_hub.settings
    if not (st.quickbooks_client_id and st.quickbooks_client_secret):
        raise Refused(503, "The QuickBooks app is not configured (QUICKBOOKS_CLIENT_ID, QUICKBOOKS_CLIENT_SECRET).")
    try:
        return intuit_auth_client(st.quickbooks_client_id, st.quickbooks_client_secret,
                                  oauth_url=st.quickbooks_oauth_url, environment=st.quickbooks_environment,
                                  redirect_uri=f"{st.public_url}{CALLBACK}", timeout=st.http_timeout)
    except Exception:  # noqa: BLE001 - the discovery document could not be read: say so, without details
        raise Refused(502, "Intuit's sign-in service could not be reached: try again in a moment.") from None


@bp.get(START)
def quickbooks_start() -> Response:
    """Send the user to Intuit to approve access to one QuickBooks company."""
    from intuitlib.enums import Scopes

    user = require_user()
    if isinstance(user, Response):
        return user
    the_hub = hub()
    try:
        merchant_id = merchant_for(user, request.args.get("merchant"))
        reconnect = reconnect_target(user, request.args.get("connection"), "quickbooks", merchant_id)
        auth = _auth_client(the_hub)
    except Refused as exc:
        return refused(exc)
    state = issue(the_hub, "quickbooks", actor=user.email, merchant_id=merchant_id, user_id=user.id,
                  reconnect_id=reconnect)
    return go(auth.get_authorization_url([Scopes.ACCOUNTING], state_token=state))


@bp.get(CALLBACK)
def quickbooks_callback() -> Response:
    """Intuit's answer: check the state, exchange the code, check the company, connect it."""
    from intuitlib.exceptions import AuthClientError

    the_hub = hub()
    args = request.args
    try:
        used = claim(the_hub, "quickbooks", args.get("state"))
    except Refused as exc:
        log.warning("QuickBooks callback refused: %s", exc)
        return refused(exc)
    try:
        if args.get("error"):
            raise Refused(400, f"QuickBooks access was not granted ({args.get('error', '')[:60]}). "
                               "Nothing was connected.")
        realm = (args.get("realmId") or "").strip()
        code = args.get("code") or ""
        if not REALM.fullmatch(realm) or not code:
            raise Refused(400, "Intuit's answer lacks the company (realmId) or the code. Nothing was connected.")
        check_owner("quickbooks", realm, used.merchant_id)
        auth = _auth_client(the_hub)
        try:
            auth.get_bearer_token(code, realm_id=realm)
        except AuthClientError as exc:
            if exc.status_code >= 500:
                raise Refused(502, "Intuit's token service failed: try again in a moment.") from None
            raise Refused(400, "Intuit refused the authorization code (already used, or expired). "
                               "Nothing was connected: start again.") from None
        except requests.RequestException:
            raise Refused(502, "Intuit's token service could not be reached: try again.") from None
        secrets = {"access_token": auth.access_token, "refresh_token": auth.refresh_token}
        company = _company_name(the_hub, realm, auth.access_token)
        if company is None:
            revoke_quickbooks(the_hub, secrets)
            raise Refused(400, f"The approved access does not open QuickBooks company {realm}. Nothing was "
                               "connected.")
        merchant_id, conn_id = save_connection(
            used, merchant_id=used.merchant_id, platform="quickbooks", account=realm, secrets=secrets,
            settings={"company_name": company}, expires_in=int(auth.expires_in or 3600))
    except Refused as exc:
        finish(the_hub, used.id, reason=str(exc))
        log.warning("QuickBooks connect refused: %s", exc)
        return refused(exc)
    finish(the_hub, used.id, connection_id=conn_id)
    log.info("QuickBooks company %s connected to merchant %s: connection %s", realm, merchant_id, conn_id)
    return done(merchant_id, f"QuickBooks company {company} ({realm}) is connected.")


def _company_name(the_hub: Hub, realm: str, access_token: str) -> str | None:
    """The company's name when the token opens it, else None."""
    st = the_hub.settings
    client = QuickBooksClient(realm, access_token, api_url=st.quickbooks_api_url,
                              sandbox=st.quickbooks_environment.lower().startswith("sand"), timeout=st.http_timeout)
    try:
        info = client.get("CompanyInfo", realm)
    except ConnectorError:
        return None
    return str(info.get("CompanyName") or realm)[:200]
