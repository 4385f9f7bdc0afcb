"""The JSON API under ``/api/v1``: sync runs, failures by cause and connections, for scripts and other
tools, behind bearer tokens (``o2c token create``) that act with their user's console role.

``init_app(app)`` registers it; importing this package alone loads no route (the alert service uses
``hub.redaction`` from the workers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["init_app"]


def init_app(app: Flask) -> None:
    from web.api import openapi, orders, payouts, receivables, routes  # noqa: F401 - they add their routes to ``bp``
    from web.api.blueprint import install

    install(app)
