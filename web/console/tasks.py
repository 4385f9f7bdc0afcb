"""Backfill, catch-up and reconcile started by an admin from the console (``sync.operator_tasks``), and the
task's progress page, which updates itself from ``/console/tasks/<id>.json`` until the task and its runs
are done."""

from __future__ import annotations

from flask import abort, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from hub.models import Merchant
from hub.task_models import TASK_KINDS, OperatorTask
from mappings.inputs import parse_date, parse_id
from sync.operator_tasks import start_task, task_progress
from web.console.blueprint import bp
from web.console.security import hub

TITLES = {"backfill": "Backfill", "catch_up": "Catch-up pass", "reconcile": "Reconcile"}


@bp.post("/tasks")
def task_start() -> Response:
    if g.user.role != "admin":
        abort(403)
    kind = request.form.get("kind") or ""
    if kind not in TASK_KINDS:
        abort(400, f"kind must be one of {', '.join(TASK_KINDS)}")
    merchant_id = parse_id(request.form.get("merchant"), name="merchant")
    params: dict[str, str] = {}
    for name in ("since", "until"):
        raw = (request.form.get(name) or "").strip()
        if raw:
            params[name] = parse_date(raw, name=name).isoformat()
    if kind == "backfill" and "since" not in params:
        abort(400, "a backfill needs the first day of orders to bring in (since)")
    with hub().session() as s:
        if s.get(Merchant, merchant_id) is None:
            abort(404)
    task_id = start_task(hub(), kind, merchant_id, g.user.email, params)
    return redirect(url_for("console.task_page", task_id=task_id))


def _task(task_id: int) -> OperatorTask:
    with hub().session() as s:
        task = s.get(OperatorTask, task_id)
        if task is None or not g.user.may_see(task.merchant_id):
            abort(404)
        s.expunge(task)
        return task


@bp.get("/tasks/<int:task_id>")
def task_page(task_id: int) -> str:
    task = _task(task_id)
    with hub().session() as s:
        view = task_progress(s, task)
        name = s.scalar(select(Merchant.name).where(Merchant.id == task.merchant_id))
    return render_template("console/task.html", t=task, p=view, title=TITLES[task.kind], merchant_name=name)


@bp.get("/tasks/<int:task_id>.json")
def task_json(task_id: int) -> Response:
    task = _task(task_id)
    with hub().session() as s:
        response = jsonify(task_progress(s, task))
    response.headers["Cache-Control"] = "no-store"
    return response


def recent_tasks(merchant_id: int, limit: int = 5) -> list[OperatorTask]:
    with hub().session() as s:
        rows = list(s.scalars(select(OperatorTask).where(OperatorTask.merchant_id == merchant_id)
                              .order_by(OperatorTask.id.desc()).limit(limit)))
        s.expunge_all()
        return rows
