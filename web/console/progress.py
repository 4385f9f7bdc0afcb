"""Live progress of work started from the console: a re-run, a group re-run, a resume.

The work is the list of runs its audit entry names (``web.console.actions.rerun`` writes it). The page
counts them by status — done (succeeded or skipped), failed, remaining (pending, running, retrying) — and
the console's script asks ``/console/progress/<entry>.json`` again until nothing remains; without
JavaScript the page has a Refresh link. A merchant's user sees the progress of its own merchant's work only.
"""

from __future__ import annotations

from typing import Any

from flask import abort, g, jsonify, render_template
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from hub.models import AuditEntry, SyncRun
from sync.operator_tasks import run_tally
from web.console.blueprint import bp
from web.console.security import hub

CHUNK = 900    # ids per IN (SQLite's host-parameter limit stays far away)


def progress_of(s: Session, entry: AuditEntry) -> dict[str, Any]:
    ids = [i for i in (entry.detail or {}).get("runs") or [] if isinstance(i, int)]
    done, failed, remaining = run_tally(s, ids)
    failing = list(s.scalars(select(SyncRun.id).where(SyncRun.id.in_(ids[:CHUNK]), SyncRun.status == "failed")
                             .order_by(SyncRun.id).limit(20))) if failed else []
    return {"entry": entry.id, "action": entry.action, "total": len(ids), "done": done, "failed": failed,
            "remaining": remaining, "finished": remaining == 0, "failing_runs": failing}


def _entry(s: Session, entry_id: int) -> AuditEntry:
    entry = s.get(AuditEntry, entry_id)
    if entry is None or not isinstance((entry.detail or {}).get("runs"), list):
        abort(404)
    if g.user.scope is not None and entry.merchant_id != g.user.scope:
        abort(404)
    return entry


@bp.get("/progress/<int:entry_id>")
def progress_page(entry_id: int) -> str:
    with hub().session() as s:
        entry = _entry(s, entry_id)
        view = progress_of(s, entry)
        what = ACTION_TITLES.get(entry.action, entry.action.replace("_", " ").replace(".", ": "))
        started, actor = entry.at, entry.actor
    return render_template("console/progress.html", p=view, what=what, started=started, actor=actor)


@bp.get("/progress/<int:entry_id>.json")
def progress_json(entry_id: int) -> Response:
    with hub().session() as s:
        view = progress_of(s, _entry(s, entry_id))
    response = jsonify(view)
    response.headers["Cache-Control"] = "no-store"
    return response


ACTION_TITLES = {
    "run.rerun": "Re-run of one run",
    "failures.rerun_group": "Re-run of a failure group",
    "connection.resume": "Resume after a reconnect",
    "rules.rerun_failed": "Re-run of the orders that failed on a mapping rule",
}
