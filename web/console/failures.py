"""The console's failures page: failed runs grouped by cause (``sync.failures``), one Re-run button a group."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from sync.failures import failure_groups, group_run_ids
from web.console.actions import rerun
from web.console.blueprint import bp
from web.console.security import hub


@bp.get("/failures")
def failures() -> str:
    with hub().session() as s:
        groups = failure_groups(s, g.user.scope)
    return render_template("console/failures.html", groups=groups, total=sum(gr.count for gr in groups))


@bp.post("/failures/<key>/rerun")
def failures_rerun(key: str) -> Response:
    scope = g.user.scope
    with hub().session() as s:
        group = next((gr for gr in failure_groups(s, scope) if gr.key == key), None)
        ids = group_run_ids(s, group, scope) if group is not None else []
    if group is None or not ids:
        flash("That group has no failed runs any more.", "error")
        return redirect(url_for("console.failures"))
    changed = rerun(hub(), ids, g.user.email, action="failures.rerun_group", target_type="failure_group",
                    target_id=key, detail={"cause": group.pattern, "error_kind": group.error_kind,
                                           "source": group.source, "code": group.code})
    flash(f"Re-queued {len(changed)} run(s) failing with: {group.pattern}", "ok")
    return redirect(url_for("console.failures"))
