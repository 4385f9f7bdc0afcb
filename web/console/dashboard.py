"""The dashboard: the cycle's health at a glance for one merchant or, for staff, across merchants
(``sync.health``): orders received per hour or day by where they stand now, as a chart and as a table,
the failure rate, order-to-invoice and order-to-cash times, backlog and queue depth, and the connections
(a connection that needs a reconnect is flagged and links to the connections page)."""

from __future__ import annotations

from flask import abort, g, render_template, request

from hub.models import Merchant
from mappings.inputs import parse_optional_id
from sync.health import UNITS, Health, by_merchant, health
from web.console.blueprint import bp
from web.console.charts import flow_chart
from web.console.run_list import merchant_choices
from web.console.security import hub


def duration(seconds: float | None) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``, ``3.2 days``; an em dash for no figure."""
    if seconds is None:
        return "—"
    for size, unit in ((86400, "days"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


def _queue_depth() -> int | None:
    try:
        return hub().queue_depth()
    except Exception:  # noqa: BLE001 - Redis away: the page still shows everything the database knows
        return None


def _chart_alt(h: Health) -> str:
    span = "24 hours, by hour" if h.unit == "hour" else "30 days, by day"
    busiest = max(h.flow, key=lambda b: b.received)
    top = f"; the busiest {h.unit} received {busiest.received}" if busiest.received else ""
    return (f"Bar chart of the orders received over the last {span}: {h.received} received, {h.in_sync} now in "
            f"sync, {h.failing} failing{top}. The table below gives every bar's numbers.")


@bp.get("/dashboard")
def dashboard() -> str:
    scope = g.user.scope
    merchant_id = scope if scope is not None else parse_optional_id(request.args.get("merchant"), name="merchant")
    unit = request.args.get("unit") if request.args.get("unit") in UNITS else "hour"
    with hub().session() as s:
        name = None
        if merchant_id is not None:
            merchant = s.get(Merchant, merchant_id)
            if merchant is None:
                abort(404)
            name = merchant.name
        h = health(s, merchant_id, unit, queue_depth=_queue_depth())
        merchants = by_merchant(s, h.since) if merchant_id is None else []
        choices = merchant_choices(s, scope)
    chart = flow_chart([b.start for b in h.flow], [[b.in_sync for b in h.flow], [b.failing for b in h.flow],
                                                   [b.other for b in h.flow]], unit)
    return render_template("console/dashboard.html", h=h, merchant_id=merchant_id, merchant_name=name,
                           merchants=merchants, choices=choices, unit=unit, chart=chart, chart_alt=_chart_alt(h),
                           duration=duration, percent=percent)
