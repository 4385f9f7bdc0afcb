"""``GET /receivables?merchant&as_of``: the merchant's receivables (the JSON of ``o2c receivables --json``)
plus ``check``: QuickBooks' AgedReceivables buckets for the same day and the hub's difference from them."""

from __future__ import annotations

from datetime import date

from flask import jsonify, request
from werkzeug.wrappers import Response

from connectors.errors import ConnectorError
from hub.models import Merchant
from sync.accounts import NeedsReconnect
from sync.receivables import receivables
from web.api.blueprint import ApiError, bp, hub
from web.api.orders import _merchant


@bp.get("/receivables")
def get_receivables() -> Response:
    merchant_id = _merchant()
    if merchant_id is None:
        raise ApiError(400, "merchant is required: GET /receivables?merchant=<id>")
    text = request.args.get("as_of") or None
    try:
        as_of = date.fromisoformat(text) if text else None
    except ValueError:
        raise ApiError(400, "as_of must be a date (YYYY-MM-DD)") from None
    with hub().session() as s:
        if s.get(Merchant, merchant_id) is None:
            raise ApiError(404, f"no merchant {merchant_id}")
    try:
        result = receivables(hub(), merchant_id, as_of)
    except NeedsReconnect as exc:
        raise ApiError(409, f"{exc}: connect QuickBooks (o2c connect quickbooks) first") from None
    except ConnectorError as exc:
        raise ApiError(502, f"QuickBooks did not answer: {exc}; try again") from None
    return jsonify({**result.view(), "check": result.check})
