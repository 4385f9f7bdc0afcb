"""Connecting merchants' accounts by OAuth: the Shopify app install, QuickBooks Online (intuit-oauth) and
HubSpot, each ``GET /connect/<platform>`` → the platform's consent page → ``/connect/<platform>/callback``.

``bp`` is the blueprint to register (its routes are loaded on first access, so that ``sync`` can use
``hub.oauth.shopify_api`` and ``hub.oauth.logscrub`` without importing the web side);
``revoke(hub, platform, secrets)`` is what a disconnect calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.oauth import logscrub

if TYPE_CHECKING:
    from flask import Blueprint

    from hub.runtime import Hub

__all__ = ["bp", "revoke"]

logscrub.install()


def __getattr__(name: str) -> Blueprint:
    if name == "bp":
        from hub.oauth import hubspot, quickbooks, shopify  # noqa: F401 - they add their routes to ``bp``
        from hub.oauth.blueprint import bp

        return bp
    raise AttributeError(name)


def revoke(hub: Hub, platform: str, secrets: dict[str, Any]) -> bool:
    """Revoke a connection's grant at its platform (QuickBooks, HubSpot); True when the platform agreed.
    Never raises: a platform that cannot be reached must not block a disconnect."""
    if platform == "quickbooks":
        from hub.oauth.quickbooks import revoke as revoke_quickbooks

        return revoke_quickbooks(hub, secrets)
    if platform == "hubspot":
        from hub.oauth.hubspot import revoke as revoke_hubspot

        return revoke_hubspot(hub, secrets)
    return False
