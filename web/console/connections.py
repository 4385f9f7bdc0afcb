"""The merchants' connections (platform, account, status and why; never a secret) and the Resume action
for runs that waited while a connection needed reconnecting."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from hub.models import Connection, Merchant
from mappings.inputs import InvalidInput, parse_optional_id
from web.console.actions import ActionRefused, resume_connection, waiting_for_reconnect
from web.console.blueprint import bp
from web.console.security import hub


def connection_rows(s: Session, scope: int | None, *, merchant_id: int | None = None,
                    platform: str | None = None) -> list[dict[str, Any]]:
    """The connections the user may see, as plain dicts (only columns that hold no secret are read)."""
    q = (select(Connection.id, Connection.merchant_id, Merchant.name, Connection.platform, Connection.account,
                Connection.status, Connection.status_reason, Connection.updated_at)
         .join(Merchant, Merchant.id == Connection.merchant_id).order_by(Connection.merchant_id, Connection.id))
    if scope is not None:
        q = q.where(Connection.merchant_id == scope)
    if merchant_id is not None:
        q = q.where(Connection.merchant_id == merchant_id)
    if platform:
        q = q.where(Connection.platform == platform)
    rows = []
    for cid, mid, name, plat, account, status, reason, updated in s.execute(q):
        waiting = len(waiting_for_reconnect(s, mid, plat)) if status != "disconnected" else 0
        rows.append({"id": cid, "merchant": mid, "merchant_name": name, "platform": plat, "account": account,
                     "status": status, "reason": reason, "updated_at": updated, "waiting": waiting,
                     "resumable": status == "needs_reconnect" or (status == "active" and waiting > 0)})
    return rows


@bp.get("/connections")
def connections() -> str:
    with hub().session() as s:
        rows = connection_rows(s, g.user.scope)
    return render_template("console/connections.html", connections=rows)


@bp.post("/connections/<int:connection_id>/resume")
def connection_resume(connection_id: int) -> Response:
    with hub().session() as s:
        merchant_id = s.scalar(select(Connection.merchant_id).where(Connection.id == connection_id))
    if merchant_id is None or not g.user.may_see(merchant_id):
        abort(404)
    try:
        changed = resume_connection(hub(), connection_id, g.user.email)
    except ActionRefused as exc:
        flash(f"Not resumed: {exc}.", "error")
    else:
        flash(f"Resumed {len(changed)} run(s) that were waiting for the reconnect." if changed else
              "The connection is active; no run was waiting for it.", "ok")
    try:  # resumed from a run's page: go back to it
        back_to_run = parse_optional_id(request.form.get("run"), name="run")
    except InvalidInput:
        back_to_run = None
    return redirect(url_for("console.run_page", run_id=back_to_run) if back_to_run
                    else url_for("console.connections"))
