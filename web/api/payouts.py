"""``GET /payouts?merchant``: store payouts, newest first, as ``o2c payouts list --json`` prints them."""

from __future__ import annotations

from flask import jsonify
from werkzeug.wrappers import Response

from sync.payouts import list_payouts
from web.api.blueprint import bp, hub
from web.api.orders import _id_arg, _merchant
from web.api.service import DEFAULT_PAGE, MAX_PAGE


@bp.get("/payouts")
def list_store_payouts() -> Response:
    merchant = _merchant()
    limit = _id_arg("limit", 1, MAX_PAGE) or DEFAULT_PAGE
    with hub().session() as s:
        return jsonify(payouts=list_payouts(s, merchant, limit=limit))
