"""The console's failures page: the orders failing now, grouped by cause (``sync.failures``), each group
with its merchant, first and last seen, its orders (each with its own reason, linked to its order page),
the fix where one is known (linked to the mapping rules or the connections), and two actions: re-run all,
or skip all with a reason (each order's run is skipped, so the ledger marks the orders skipped; audited)."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from hub import audit
from sync.failures import FailureGroup, failure_groups, group_run_ids
from web.console.actions import ActionRefused, rerun, skip_run
from web.console.blueprint import bp
from web.console.links import fix_view
from web.console.security import hub


def _group(key: str) -> tuple[FailureGroup | None, list[int]]:
    scope = g.user.scope
    with hub().session() as s:
        group = next((gr for gr in failure_groups(s, scope) if gr.key == key), None)
        return group, (group_run_ids(s, group, scope) if group is not None else [])


@bp.get("/failures")
def failures() -> str:
    with hub().session() as s:
        groups = failure_groups(s, g.user.scope)
    fixes = {gr.key: fix_view(gr.fix, gr.merchant_id) for gr in groups}
    return render_template("console/failures.html", groups=groups, fixes=fixes,
                           total=sum(gr.count for gr in groups))


@bp.post("/failures/<key>/rerun")
def failures_rerun(key: str) -> Response:
    group, ids = _group(key)
    if group is None or not ids:
        flash("That group has no failing orders any more.", "error")
        return redirect(url_for("console.failures"))
    changed = rerun(hub(), ids, g.user.email, action="failures.rerun_group", target_type="failure_group",
                    target_id=key, detail={"cause": group.cause, "pattern": group.pattern,
                                           "error_kind": group.error_kind, "source": group.source,
                                           "code": group.code})
    flash(f"Re-queued {len(changed)} run(s) failing with: {group.cause}", "ok")
    if changed.entry_id is not None:   # follow them until they are done
        return redirect(url_for("console.progress_page", entry_id=changed.entry_id))
    return redirect(url_for("console.failures"))


@bp.post("/failures/<key>/skip")
def failures_skip(key: str) -> Response:
    reason = " ".join((request.form.get("reason") or "").split())
    group, ids = _group(key)
    if group is None or not ids:
        flash("That group has no failing orders any more.", "error")
        return redirect(url_for("console.failures"))
    if not reason:
        flash("Not skipped: say why the orders are skipped.", "error")
        return redirect(url_for("console.failures"))
    skipped, refused = [], []
    for run_id in ids:
        try:
            skip_run(hub(), run_id, g.user.email, reason)
        except ActionRefused:
            refused.append(run_id)   # re-run or finished meanwhile
        else:
            skipped.append(run_id)
    with hub().session() as s:
        audit.record(s, g.user.email, "failures.skip_group", target_type="failure_group", target_id=key,
                     merchant_id=group.merchant_id,
                     detail={"cause": group.cause, "reason": reason, "runs": skipped[:500], "skipped": len(skipped),
                             "refused": len(refused)})
        s.commit()
    flash(f"Skipped {len(skipped)} order(s): {reason}", "ok")
    return redirect(url_for("console.failures"))
