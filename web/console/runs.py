"""Pages of sync runs: the filtered list, one run in full (each attempt with its error code and the
redacted excerpt of the failing call), and its Re-run and Skip actions; a run waiting for a reconnect
offers Resume for the connection it waits for."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from connectors.redact import redact_body, redact_url
from hub.models import SyncAttempt, SyncRun
from mappings.inputs import parse_optional_id
from sync.fixes import fix_for
from sync.status import counts_by_status, run_detail
from web.console.actions import ActionRefused, rerun, skip_run
from web.console.blueprint import bp
from web.console.connections import connection_rows
from web.console.formatting import pretty_json
from web.console.links import accounts_of, fix_view, object_link
from web.console.run_list import KINDS, PLATFORMS, STATUSES, RunFilters, find_runs, merchant_choices
from web.console.security import hub


@bp.get("/")
def index() -> Response:
    return redirect(url_for("console.orders"))


@bp.get("/runs")
def runs() -> str:
    filters = RunFilters.from_args(request.args)
    scope = g.user.scope
    if scope is not None:
        filters.merchant = scope   # a merchant user's every query is its own merchant's
    before = parse_optional_id(request.args.get("before"), name="before")  # InvalidInput: a 400
    with hub().session() as s:
        page, cursor = find_runs(s, filters, before=before)
        counts = counts_by_status(s, filters.merchant)
        merchants = merchant_choices(s, scope)
    return render_template("console/runs.html", runs=page, cursor=cursor, before=before, counts=counts,
                           filters=filters, args=filters.query_args(), merchants=merchants,
                           statuses=STATUSES, kinds=KINDS, platforms=PLATFORMS)


def _visible_run(run_id: int) -> SyncRun:
    with hub().session() as s:
        run = s.get(SyncRun, run_id)
    if run is None or not g.user.may_see(run.merchant_id):
        abort(404)
    return run


@bp.get("/runs/<int:run_id>")
def run_page(run_id: int) -> str:
    _visible_run(run_id)
    with hub().session() as s:
        detail = run_detail(s, run_id)
        if detail is None:
            abort(404)
        accounts = accounts_of(s, detail["merchant"])
        detail["error_code"] = s.scalar(select(SyncRun.error_code).where(SyncRun.id == run_id))
        recorded = {a.number: a for a in s.scalars(select(SyncAttempt).where(SyncAttempt.run_id == run_id))}
        for a in detail["attempt_log"]:
            row = recorded.get(a["number"])
            a["error_code"] = row.error_code if row else None
            a["excerpt"] = excerpt_view(row.excerpt if row else None)
        waiting_for = []
        if detail["status"] == "retrying" and detail["error_kind"] == "auth":
            platform = (detail["error_code"] or "").partition(":")[0] or None
            waiting_for = [c for c in connection_rows(s, g.user.scope, merchant_id=detail["merchant"],
                                                      platform=platform) if c["status"] != "disconnected"]
    src = detail["source"]
    source_link = object_link(src["platform"], "order" if detail["kind"] == "order" else None, src["id"], accounts)
    for st in detail["steps"]:
        t = st["target"]
        st["link"] = object_link(t["platform"], t["type"], t["id"], accounts) if t else None
    for b in detail["bindings"]:
        b["target_link"] = object_link(b["target"]["platform"], b["target"]["type"], b["target"]["id"], accounts)
        b["source_link"] = object_link(b["source"]["platform"], b["source"]["type"], b["source"]["id"], accounts)
    order_json = pretty_json(detail["order"]) if detail["order"] else None
    fix = fix_view(fix_for(detail["error_kind"], detail["error_code"]), detail["merchant"]) \
        if detail["status"] in ("failed", "retrying") else None
    return render_template("console/run.html", run=detail, source_link=source_link, order_json=order_json,
                           waiting_for=waiting_for, fix=fix)


def excerpt_view(excerpt: Any) -> dict[str, Any] | None:
    """A stored excerpt ready for ``<pre>``: request line, bodies pretty-printed when they are JSON. Redacted
    once more on the way out (it was when it was recorded): a page never shows a credential."""
    if not isinstance(excerpt, dict):
        return None
    req = excerpt.get("request") or {}
    resp = excerpt.get("response") or {}
    line = " ".join(str(p) for p in (req.get("method"), redact_url(req.get("url"))) if p)
    return {"request": line or None, "request_body": _pretty(redact_body(req.get("body"))),
            "status": resp.get("status"), "response_body": _pretty(redact_body(resp.get("body")))}


def _pretty(text: str | None) -> str | None:
    if not text:
        return text
    try:
        return pretty_json(json.loads(text, parse_float=Decimal))
    except ValueError:
        return text


@bp.post("/runs/<int:run_id>/rerun")
def run_rerun(run_id: int) -> Response:
    _visible_run(run_id)
    changed = rerun(hub(), [run_id], g.user.email)
    if changed:
        flash(f"Run {run_id} re-queued.", "ok")
    else:
        flash(f"Run {run_id} is being worked on right now; it was not re-queued.", "error")
    return redirect(url_for("console.run_page", run_id=run_id))


@bp.post("/runs/<int:run_id>/skip")
def run_skip(run_id: int) -> Response:
    _visible_run(run_id)
    try:
        skip_run(hub(), run_id, g.user.email, request.form.get("reason", ""))
    except ActionRefused as exc:
        flash(f"Not skipped: {exc}.", "error")
    else:
        flash(f"Run {run_id} skipped.", "ok")
    return redirect(url_for("console.run_page", run_id=run_id))
