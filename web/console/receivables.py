"""The receivables page of a merchant: open and overdue balances, the ageing chart, DSO (with its formula
and figures) and its daily trend, QuickBooks' AgedReceivables beside the hub's buckets, the overdue invoices
with their order, customer and dunning stage, and credit: the orders held over their customer's limit (with
an approver's Release) and the limits (set here by support and admin staff; every change audited)."""

from __future__ import annotations

from datetime import date

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from connectors.errors import ConnectorError
from hub.models import Merchant
from mappings.receivables import BUCKETS
from sync.accounts import NeedsReconnect
from sync.credit import CreditError, limits_view, release_by_approver, set_limit
from sync.locks import LockBusy
from sync.receivables import receivables, trend
from web.console.blueprint import bp
from web.console.run_list import merchant_choices
from web.console.security import hub, require_merchant

STAFF = ("support", "admin")
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
    days = trend(hub(), merchant_id, result.as_of if result else as_of)
    top_dso = max((float(d["dso_days"]) for d in days), default=0.0) or 1.0
    dso_chart = [{**d, "width": int(float(d["dso_days"]) / top_dso * 100)} for d in days]
    return render_template("console/receivables.html", merchant_id=merchant_id, merchant_name=name,
                           result=result, view=result.view() if result else None, chart=chart, error=error,
                           as_of=text, dso_chart=dso_chart, limits=limits_view(hub(), merchant_id),
                           staff=g.user.role in STAFF)


def _staff_only(merchant_id: int) -> None:
    require_merchant(merchant_id)
    if g.user.role not in STAFF:
        abort(404)


@bp.post("/receivables/<int:merchant_id>/credit")
def receivables_credit(merchant_id: int) -> Response:
    """Set (or remove: limit "none") a customer's credit limit."""
    _staff_only(merchant_id)
    customer = (request.form.get("customer") or "").strip()[:255]
    try:
        if not customer:
            raise CreditError("name the customer: the buyer's e-mail or the QuickBooks customer id")
        view = set_limit(hub(), merchant_id, customer, (request.form.get("limit") or "")[:40], g.user.email)
    except CreditError as exc:
        flash(f"Not set: {exc}.", "error")
    except ConnectorError as exc:
        flash(f"Not set: QuickBooks did not answer ({exc}); try again.", "error")
    else:
        said = f"Credit limit of {customer}: {view['limit'] or 'removed'}."
        if view["released"]:
            said += f" Released: {', '.join(view['released'])}."
        if view["not_reviewed"]:
            said += f" Its holds were not reviewed now ({view['not_reviewed']}); the next payment reviews them."
        flash(said, "ok")
    return redirect(url_for("console.receivables_page", merchant_id=merchant_id))


@bp.post("/receivables/<int:merchant_id>/holds/<int:hold_id>/release")
def receivables_release(merchant_id: int, hold_id: int) -> Response:
    """An approver releases one credit hold (audited as theirs)."""
    _staff_only(merchant_id)
    try:
        name = release_by_approver(hub(), merchant_id, hold_id, g.user.email)
    except (ConnectorError, LockBusy) as exc:
        flash(f"Not released: the store did not answer ({exc or 'busy'}); try again.", "error")
    else:
        if name is None:
            flash("That order is not held any more.", "error")
        else:
            flash(f"Order {name} released for fulfilment.", "ok")
    return redirect(url_for("console.receivables_page", merchant_id=merchant_id))
