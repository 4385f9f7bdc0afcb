"""Revoking a connection's grant at its platform when it is disconnected (QuickBooks: intuit-oauth's revoke;
HubSpot: the refresh token archived). Best effort: a platform that cannot be reached, or an app that is not
configured, never blocks a disconnect; it is logged without the token."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import requests

from connectors.hubspot import API_URL as HUBSPOT_API_URL
from connectors.quickbooks import intuit_auth_client

if TYPE_CHECKING:
    from hub.runtime import Hub

qb_log = logging.getLogger("o2c.oauth.quickbooks")
hubspot_log = logging.getLogger("o2c.oauth.hubspot")

CALLBACK = "/connect/quickbooks/callback"   # the redirect URI the Intuit app registers (unused by a revoke)


def revoke(hub: Hub, platform: str, secrets: dict[str, Any]) -> bool:
    """Revoke a connection's grant at its platform (QuickBooks, HubSpot); True when the platform agreed.
    Never raises."""
    if platform == "quickbooks":
        return revoke_quickbooks(hub, secrets)
    if platform == "hubspot":
        return revoke_hubspot(hub, secrets)
    return False


def revoke_quickbooks(hub: Hub, secrets: dict[str, Any]) -> bool:
    """Revoke a QuickBooks grant (its refresh token, else its access token) at Intuit."""
    from intuitlib.exceptions import AuthClientError

    token = secrets.get("refresh_token") or secrets.get("access_token")
    st = hub.settings
    if not token:
        return False
    if not (st.quickbooks_client_id and st.quickbooks_client_secret):
        qb_log.warning("could not revoke a QuickBooks token at Intuit (the QuickBooks app is not configured)")
        return False
    try:
        client = intuit_auth_client(st.quickbooks_client_id, st.quickbooks_client_secret,
                                    oauth_url=st.quickbooks_oauth_url, environment=st.quickbooks_environment,
                                    redirect_uri=f"{st.public_url}{CALLBACK}", timeout=st.http_timeout)
        return bool(client.revoke(token=token))
    except (AuthClientError, requests.RequestException) as exc:
        qb_log.warning("could not revoke a QuickBooks token at Intuit (%s)", type(exc).__name__)
        return False
    except Exception as exc:  # noqa: BLE001 - the discovery document could not be read: a disconnect goes on
        qb_log.warning("could not revoke a QuickBooks token at Intuit (%s)", type(exc).__name__)
        return False


def revoke_hubspot(hub: Hub, secrets: dict[str, Any]) -> bool:
    """Delete the refresh token at HubSpot (the access token then dies within its lifetime)."""
    from hubspot import Client

    token = secrets.get("refresh_token")
    if not token:
        return False
    try:
        client = Client.create(host=(hub.settings.hubspot_api_url or HUBSPOT_API_URL).rstrip("/"))
        client.oauth.refresh_tokens_api.archive(token, _preload_content=False,
                                                _request_timeout=hub.settings.http_timeout)
    except Exception as exc:  # noqa: BLE001 - revoking is best effort: disconnecting must still work
        hubspot_log.warning("could not revoke a HubSpot refresh token (%s)", type(exc).__name__)
        return False
    return True
