"""Pages of sync runs: the filtered list, one run in full, and its Re-run and Skip actions."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from hub.console.actions import ActionRefused, rerun, skip_run
from hub.console.blueprint import bp
from hub.console.formatting import pretty_json
from hub.console.links import accounts_of, object_link
from hub.console.run_list import KINDS, PLATFORMS, STATUSES, RunFilters, find_runs, merchant_choices
from hub.console.security import hub
from hub.models import SyncRun
from sync.status import counts_by_status, run_detail


@bp.get("/")
def index() -> Response:
    return redirect(url_for("console.runs"))


@bp.get("/runs")
def runs() -> str:
    filters = RunFilters.from_args(request.args)
    scope = g.user.scope
    if scope is not None:
        filters.merchant = scope   # a merchant user's every query is its own merchant's
    before = request.args.get("before", type=int)
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
    src = detail["source"]
    source_link = object_link(src["platform"], "order" if detail["kind"] == "order" else None, src["id"], accounts)
    for st in detail["steps"]:
        t = st["target"]
        st["link"] = object_link(t["platform"], t["type"], t["id"], accounts) if t else None
    for b in detail["bindings"]:
        b["target_link"] = object_link(b["target"]["platform"], b["target"]["type"], b["target"]["id"], accounts)
        b["source_link"] = object_link(b["source"]["platform"], b["source"]["type"], b["source"]["id"], accounts)
    order_json = pretty_json(detail["order"]) if detail["order"] else None
    return render_template("console/run.html", run=detail, source_link=source_link, order_json=order_json)


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
