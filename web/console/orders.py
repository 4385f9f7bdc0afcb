"""The orders pages, from the order ledger: the list support lands on (state, documents, filters, keyset
pages) and one order's story (summary, documents linked to each platform, timeline, runs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import abort, g, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from hub.models import SyncAttempt, SyncRun
from hub.order_models import STATES
from mappings.inputs import parse_optional_id
from sync.fixes import fix_for
from sync.order_lookup import DOCUMENT_FILTERS, OrderQuery, find_order, list_orders, order_detail, order_views
from web.console.blueprint import bp
from web.console.formatting import pretty_json
from web.console.links import accounts_of, fix_view, object_link
from web.console.run_list import merchant_choices
from web.console.security import hub

PAGE = 50
PLATFORMS = ("shopify", "woocommerce")   # the stores orders come from


def _day(name: str) -> datetime | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d")
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)") from None


@bp.get("/orders")
def orders() -> str:
    scope = g.user.scope
    merchant = scope if scope is not None else parse_optional_id(request.args.get("merchant"), name="merchant")
    state = request.args.get("state") or None
    platform = request.args.get("platform") or None
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}")
    if platform is not None and platform not in PLATFORMS:
        raise BadRequest(f"platform must be one of {', '.join(PLATFORMS)}")
    has = request.args.get("has") or None
    if has is not None and has not in DOCUMENT_FILTERS:
        raise BadRequest(f"has must be one of {', '.join(DOCUMENT_FILTERS)}")
    before = parse_optional_id(request.args.get("before"), name="before")
    until = _day("ordered_to")
    query = OrderQuery(merchant=merchant, state=state, platform=platform, before=before,
                       search=(request.args.get("q") or "").strip()[:100] or None, ordered_from=_day("ordered_from"),
                       ordered_to=until + timedelta(days=1) if until else None, has=has)
    with hub().session() as s:
        rows = list_orders(s, query, limit=PAGE + 1)
        views = order_views(s, rows[:PAGE])
        merchants = merchant_choices(s, scope)
        names = dict(merchants)
        accounts = {m: accounts_of(s, m) for m in {v["merchant"] for v in views}}
    sandbox = hub().settings.quickbooks_environment == "sandbox"
    for v in views:
        v["invoice_link"] = object_link("quickbooks", "invoice", v["quickbooks"]["invoice_id"],
                                        accounts.get(v["merchant"], {}), sandbox=sandbox)
    cursor = rows[PAGE - 1].id if len(rows) > PAGE else None
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    return render_template("console/orders.html", orders=views, names=names, cursor=cursor, before=before,
                           args=args, merchants=merchants, states=STATES, platforms=PLATFORMS, query=query,
                           document_filters=DOCUMENT_FILTERS,
                           raw=request.args)


@bp.get("/orders/<int:merchant_id>/<platform>/<order_id>")
def order_page(merchant_id: int, platform: str, order_id: str) -> str:
    if not g.user.may_see(merchant_id) or platform not in PLATFORMS:
        abort(404)
    with hub().session() as s:
        row = find_order(s, merchant_id, order_id[:255], platform)
        if row is None or row.order_id != order_id:
            abort(404)
        detail = order_detail(s, row)
        runs = run_summaries(s, detail["runs"])
        accounts = accounts_of(s, merchant_id)
        failing = s.execute(select(SyncRun.error_kind, SyncRun.error_code).where(SyncRun.id == row.last_run_id)) \
            .first() if row.state in ("failing", "waiting") and row.last_run_id else None
        names = dict(merchant_choices(s, g.user.scope))
    sandbox = hub().settings.quickbooks_environment == "sandbox"
    documents = _documents(detail, platform, accounts, sandbox)
    canonical = next((r["canonical"] for r in runs if r["canonical"]), None)
    fix = fix_view(fix_for(*failing), merchant_id) if failing else None
    return render_template("console/order.html", order=detail, documents=documents, runs=runs,
                           sold=sold_lines(canonical), canonical=pretty_json(canonical) if canonical else None,
                           merchant_name=names.get(merchant_id, merchant_id), fix=fix)


def run_summaries(s: Session, run_ids: list[int]) -> list[dict[str, Any]]:
    """The order's runs, newest first, each with its attempts (number, outcome, step, error)."""
    if not run_ids:
        return []
    attempts: dict[int, list[SyncAttempt]] = {}
    for a in s.scalars(select(SyncAttempt).where(SyncAttempt.run_id.in_(run_ids))
                       .order_by(SyncAttempt.run_id, SyncAttempt.number)):
        attempts.setdefault(a.run_id, []).append(a)
    out = []
    for run in s.scalars(select(SyncRun).where(SyncRun.id.in_(run_ids)).order_by(SyncRun.id.desc())):
        out.append({"id": run.id, "kind": run.kind, "status": run.status, "reason": run.reason,
                    "created_at": run.created_at, "canonical": run.canonical if isinstance(run.canonical, dict)
                    else None,
                    "attempts": [{"number": a.number, "outcome": a.outcome, "step": a.step, "error": a.error,
                                  "at": a.finished_at or a.started_at} for a in attempts.get(run.id, [])]})
    return out


def sold_lines(canonical: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the buyer bought, from the canonical order: lines, shipping, fees and the totals."""
    if not canonical:
        return None
    order = canonical.get("order") if isinstance(canonical.get("order"), dict) else canonical
    lines = [{"title": line.get("title"), "sku": line.get("sku"), "quantity": line.get("quantity"),
              "unit_price": line.get("unit_price"), "discount": line.get("discount")}
             for line in order.get("lines") or [] if isinstance(line, dict)]
    extras = [{"title": f"Shipping: {x.get('title') or ''}", "amount": x.get("amount")}
              for x in order.get("shipping_lines") or [] if isinstance(x, dict)]
    extras += [{"title": f"Fee: {x.get('title') or ''}", "amount": x.get("amount")}
               for x in order.get("fee_lines") or [] if isinstance(x, dict)]
    return {"lines": lines, "extras": extras, "total_tax": order.get("total_tax"), "total": order.get("total"),
            "currency": order.get("currency"), "taxes_included": order.get("taxes_included"),
            "refunded": order.get("total_refunded")}


def _documents(o: dict[str, Any], platform: str, accounts: dict[str, str], sandbox: bool) -> list[dict[str, Any]]:
    """What exists for the order, each with its link into the platform's app where it has a page."""
    qb, hs = o["quickbooks"], o["hubspot"]
    docs = [{"what": f"{platform} order {o['name'] or o['id']}", "link": object_link(platform, "order", o["id"],
                                                                                   accounts)}]
    if qb["invoice_id"]:
        docs.append({"what": f"QuickBooks invoice {qb['doc_number'] or qb['invoice_id']} (total {qb['total']}, "
                             f"balance {qb['balance']})",
                     "link": object_link("quickbooks", "invoice", qb["invoice_id"], accounts, sandbox=sandbox)})
    docs += [{"what": f"QuickBooks payment {p}", "link": object_link("quickbooks", "payment", p, accounts,
                                                                     sandbox=sandbox)} for p in qb["payment_ids"]]
    docs += [{"what": f"QuickBooks refund {r}", "link": None} for r in qb["refund_ids"]]
    if qb["deposit_id"]:
        docs.append({"what": f"QuickBooks deposit {qb['deposit_id']}",
                     "link": object_link("quickbooks", "deposit", qb["deposit_id"], accounts, sandbox=sandbox)})
    if hs["contact_id"]:
        docs.append({"what": f"HubSpot contact {hs['contact_id']}",
                     "link": object_link("hubspot", "contact", hs["contact_id"], accounts)})
    if hs["deal_id"]:
        docs.append({"what": f"HubSpot deal {hs['deal_id']}",
                     "link": object_link("hubspot", "deal", hs["deal_id"], accounts)})
    return docs
