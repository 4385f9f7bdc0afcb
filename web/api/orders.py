"""The API's order routes: the order ledger, newest first in keyset pages, and one order with its timeline.

``GET /orders?merchant&state&platform&limit&before`` and ``GET /orders/<platform>/<order id>[?merchant]``;
the JSON shapes are the CLI's (``o2c orders list|show --json``, DESIGN.md "What scripts may rely on").
"""

from __future__ import annotations

from flask import jsonify, request
from werkzeug.wrappers import Response

from hub.order_models import STATES
from mappings.inputs import ROW_ID_MAX, InvalidInput, parse_optional_id
from sync.order_lookup import OrderQuery, find_order, list_orders, order_detail, order_views
from web.api.blueprint import ApiError, bp, hub, user
from web.api.openapi import STORE_PLATFORMS as PLATFORMS
from web.api.service import DEFAULT_PAGE, MAX_PAGE


def _id_arg(name: str, low: int = 1, high: int = ROW_ID_MAX) -> int | None:
    try:
        return parse_optional_id(request.args.get(name), name=name, low=low, high=high)
    except InvalidInput as exc:
        raise ApiError(400, str(exc)) from None


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}")
    return value


def _merchant() -> int | None:
    merchant, scope = _id_arg("merchant"), user().scope
    if scope is not None:
        if merchant not in (None, scope):
            raise ApiError(403, "a merchant user's token sees its own merchant's orders only")
        return scope
    return merchant


@bp.get("/orders")
def list_ledger_orders() -> Response:
    query = OrderQuery(merchant=_merchant(), state=_choice("state", STATES),
                       platform=_choice("platform", PLATFORMS), before=_id_arg("before"))
    limit = _id_arg("limit", 1, MAX_PAGE) or DEFAULT_PAGE
    with hub().session() as s:
        rows = list_orders(s, query, limit=limit + 1)
        page = order_views(s, rows[:limit])
        cursor = rows[limit - 1].id if len(rows) > limit else None
    return jsonify(orders=page, next=cursor)


@bp.get("/orders/<platform>/<order_id>")
def get_ledger_order(platform: str, order_id: str) -> Response:
    if platform not in PLATFORMS:
        raise ApiError(404, f"no platform {platform}: one of {', '.join(PLATFORMS)}")
    with hub().session() as s:
        found = find_order(s, _merchant(), order_id, platform)
        if found is None:
            raise ApiError(404, f"no {platform} order {order_id}")
        return jsonify(order_detail(s, found))
