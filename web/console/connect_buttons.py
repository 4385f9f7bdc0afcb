"""What the Reconnect buttons (``console/_reconnect_button.html``, on the Connections page and a run's page)
need: links into the OAuth flows of ``web.oauth``, shown only when its blueprint is registered."""

from __future__ import annotations

from flask import current_app, g

from web.console.blueprint import bp
from web.console.run_list import merchant_choices
from web.console.security import hub

OAUTH_PLATFORMS = ("shopify", "quickbooks", "hubspot")


def _merchants() -> list[tuple[int, str]]:
    with hub().session() as s:
        return merchant_choices(s, g.user.scope)


@bp.context_processor
def _connect_helpers() -> dict[str, object]:
    return {"oauth_ready": "oauth" in current_app.blueprints, "oauth_merchants": _merchants,
            "oauth_platforms": OAUTH_PLATFORMS}
