"""The support console: server-rendered pages to follow sync runs, see why they failed (with the failing
call's redacted excerpt), re-run or skip them, resume runs waiting for a reconnect, preview an order and
edit a merchant's mapping rules; every action is written to the audit log.

``init_app(app, hub)`` sets up sessions and registers the blueprint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from web.console import (  # noqa: F401 - they add their routes to ``bp``
    auth,
    books,
    connect_buttons,
    connections,
    dashboard,
    failures,
    orders,
    pages,
    payouts,
    progress,
    receivables,
    rule_history,
    runs,
    staff,
    tasks,
)
from web.console.blueprint import bp
from web.console.security import configure

if TYPE_CHECKING:
    from flask import Flask

    from hub.runtime import Hub

__all__ = ["bp", "init_app"]


def init_app(app: Flask, hub: Hub) -> None:
    configure(app, hub)
    app.register_blueprint(bp)
