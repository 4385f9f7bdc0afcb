"""The receivables page of a merchant: open and overdue balances, the ageing chart, DSO (with its formula
and figures), QuickBooks' AgedReceivables beside the hub's buckets, and the overdue invoices with their
order, customer and dunning stage."""

from __future__ import annotations

from datetime import date

from flask import abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from connectors.errors import ConnectorError
from hub.models import Merchant
from mappings.receivables import BUCKETS
from sync.accounts import NeedsReconnect
from sync.receivables import receivables
from web.console.blueprint import bp
from web.console.run_list import merchant_choices
from web.console.security import hub, require_merchant

LABELS = {"current": "Current", "1_30": "1–30 days", "31_60": "31–60 days", "61_90": "61–90 days",
          "over_90": "Over 90 days"}


@bp.get("/receivables")
def receivables_index() -> Response | str:
    if g.user.scope is not None:
        return redirect(url_for("console.receivables_page", merchant_id=g.user.scope))
    with hub().session() as s:
        merchants = merchant_choices(s, None)
    return render_template("console/receivables_index.html", merchants=merchants)


@bp.get("/receivables/<int:merchant_id>")
def receivables_page(merchant_id: int) -> str:
    require_merchant(merchant_id)
    with hub().session() as s:
        merchant = s.get(Merchant, merchant_id)
        if merchant is None:
            abort(404)
        name = merchant.name
    text = (request.args.get("as_of") or "").strip()
    error, result, as_of = None, None, None
    try:
        as_of = date.fromisoformat(text) if text else None
    except ValueError:
        error = f"{text[:20]!r} is not a date: use YYYY-MM-DD"
    if error is None:
        try:
            result = receivables(hub(), merchant_id, as_of)
        except NeedsReconnect as exc:
            error = f"{exc}: connect QuickBooks first (Connections)"
        except ConnectorError as exc:
            error = f"QuickBooks did not answer ({exc}); try again"
    chart = []
    if result is not None:
        buckets = result.buckets
        top = max(buckets.values()) or 1
        theirs = (result.check or {}).get("quickbooks") or {}
        chart = [{"key": k, "label": LABELS[k], "amount": buckets[k], "quickbooks": theirs.get(k),
                  "width": int(buckets[k] / top * 100)} for k in BUCKETS]
    return render_template("console/receivables.html", merchant_id=merchant_id, merchant_name=name,
                           result=result, view=result.view() if result else None, chart=chart, error=error,
                           as_of=text)
