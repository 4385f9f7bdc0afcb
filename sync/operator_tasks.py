"""Backfill, catch-up and reconcile started by an admin from the console, as tasks with a progress page.

``start_task`` writes the task row (and an audit entry) and hands it to a worker: an rq job in scale-out
mode (``run_job``, on the hub's queue), a thread in embedded mode; both call ``run_task``, which marks the
task running, does the work with the same functions as ``o2c backfill`` / ``o2c catchup`` /
``o2c reconcile``, records each run it opens (dispatched at once, so progress moves while the store is
still being listed), and ends ``done`` with a short result, or ``failed`` with a plain reason.
``task_progress`` is what the progress page shows.
"""

from __future__ import annotations

import logging
import threading
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import audit
from hub.models import SyncRun, utcnow
from hub.task_models import TASK_KINDS, OperatorTask

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.tasks")
CHUNK = 900
SAVE_EVERY = 50      # runs opened between two saves of the task's run list


def start_task(hub: Hub, kind: str, merchant_id: int, actor: str, params: dict[str, Any] | None = None) -> int:
    if kind not in TASK_KINDS:
        raise ValueError(f"kind must be one of {', '.join(TASK_KINDS)}")
    with hub.session() as s:
        task = OperatorTask(merchant_id=merchant_id, kind=kind, params=params or {}, status="queued", actor=actor,
                            run_ids=[], result={})
        s.add(task)
        s.flush()
        audit.record(s, actor, f"task.{kind}", target_type="task", target_id=task.id, merchant_id=merchant_id,
                     detail={"params": params or {}})
        task_id = task.id
    if hub.settings.redis_url:
        from redis import Redis
        from rq import Queue

        with Redis.from_url(hub.settings.redis_url) as redis:
            Queue(hub.settings.queue_name, connection=redis).enqueue(
                "sync.operator_tasks.run_job", task_id, job_id=f"o2c-task-{task_id}", job_timeout=6 * 3600,
                result_ttl=3600, failure_ttl=86400)
    else:
        threading.Thread(target=run_task, args=(hub, task_id), name=f"o2c-task-{task_id}", daemon=True).start()
    return task_id


def run_job(task_id: int) -> None:
    """The rq entry point: the worker process's hub runs the task."""
    from hub.runtime import current_hub

    run_task(current_hub(), task_id)


def run_task(hub: Hub, task_id: int) -> None:
    with hub.session() as s:
        task = s.get(OperatorTask, task_id)
        if task is None or task.status != "queued":    # a duplicate job, or already done: nothing twice
            return
        task.status, task.started_at = "running", utcnow()
        kind, merchant_id, params = task.kind, task.merchant_id, dict(task.params or {})
    opened: list[int] = []

    def on_run(run_id: int, *, dispatch: bool = True) -> None:
        opened.append(run_id)
        if dispatch:
            hub.dispatcher.dispatch(run_id)
        if len(opened) % SAVE_EVERY == 0:
            _save(hub, task_id, run_ids=list(opened))

    try:
        result = _work(hub, kind, merchant_id, params, on_run)
    except Exception as exc:  # noqa: BLE001 - the task records why it stopped; support reads it
        log.warning("task %s (%s of merchant %s) failed: %s", task_id, kind, merchant_id, exc)
        _save(hub, task_id, run_ids=list(opened), status="failed", error=_plain(exc), finished_at=utcnow())
        return
    _save(hub, task_id, run_ids=list(opened), status="done", result=result, finished_at=utcnow())


def _work(hub: Hub, kind: str, merchant_id: int, params: dict[str, Any], on_run: Any) -> dict[str, Any]:
    if kind == "backfill":
        from sync.backfill import backfill

        since = date.fromisoformat(params["since"])
        until = date.fromisoformat(params["until"]) if params.get("until") else None
        found = backfill(hub, merchant_id, since, until, on_run=on_run)
        return {"listed": found.listed, "queued": found.queued, "up_to_date": found.up_to_date,
                "connections": found.connections}
    if kind == "catch_up":
        from sync.catchup import catch_up

        errors: dict[str, str] = {}
        for conn_id, outcome in catch_up(hub, merchant_id).items():
            if isinstance(outcome, str):
                errors[str(conn_id)] = outcome
            else:
                for run_id in outcome:
                    on_run(run_id, dispatch=False)   # catch_up dispatched them already
        return {"errors": errors}
    from sync.reconcile import reconcile

    since = date.fromisoformat(params["since"]) if params.get("since") else None
    report = reconcile(hub, merchant_id, since)
    kinds: dict[str, int] = {}
    for row in report.rows:
        kinds[row.kind] = kinds.get(row.kind, 0) + 1
    return {"orders_checked": report.orders_checked, "discrepancies": len(report.rows), "by_kind": kinds}


def _plain(exc: Exception) -> str:
    if isinstance(exc, LookupError):
        return str(exc.args[0]) if exc.args else "nothing to work on"
    return str(exc) or type(exc).__name__


def _save(hub: Hub, task_id: int, **values: Any) -> None:
    with hub.session() as s:
        task = s.get(OperatorTask, task_id)
        if task is not None:
            for key, value in values.items():
                setattr(task, key, value)


def run_tally(s: Session, ids: list[int]) -> tuple[int, int, int]:
    """How many of these runs are done (succeeded or skipped), failed, and still to finish."""
    counts: dict[str, int] = {}
    for start in range(0, len(ids), CHUNK):
        for status, n in s.execute(select(SyncRun.status, func.count())
                                   .where(SyncRun.id.in_(ids[start:start + CHUNK])).group_by(SyncRun.status)):
            counts[status] = counts.get(status, 0) + n
    done = counts.get("succeeded", 0) + counts.get("skipped", 0)
    failed = counts.get("failed", 0)
    return done, failed, len(ids) - done - failed


def task_progress(s: Session, task: OperatorTask) -> dict[str, Any]:
    """The task's phase and its runs by status: done (succeeded or skipped), failed, remaining."""
    ids = [i for i in task.run_ids or [] if isinstance(i, int)]
    done, failed, remaining = run_tally(s, ids)
    over = task.status in ("done", "failed")
    return {"task": task.id, "kind": task.kind, "status": task.status, "total": len(ids), "done": done,
            "failed": failed, "remaining": remaining, "finished": over and remaining == 0,
            "result": task.result or {}, "error": task.error}
