"""Connecting merchants' accounts by OAuth: the Shopify app install, QuickBooks Online (intuit-oauth) and
HubSpot, each ``GET /connect/<platform>`` → the platform's consent page → ``/connect/<platform>/callback``.

``bp`` is the blueprint to register (its routes are loaded on first access); ``revoke(hub, platform,
secrets)`` (``hub.revocation``) is what a disconnect calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors import logscrub
from hub.revocation import revoke

if TYPE_CHECKING:
    from flask import Blueprint

__all__ = ["bp", "revoke"]

logscrub.install()


def __getattr__(name: str) -> Blueprint:
    if name == "bp":
        from web.oauth import hubspot, quickbooks, shopify  # noqa: F401 - they add their routes to ``bp``
        from web.oauth.blueprint import bp

        return bp
    raise AttributeError(name)
