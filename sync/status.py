"""What support and scripts see of sync runs: the JSON shapes of ``o2c syncs list|show``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.models import Binding, Merchant, SyncRun, utcnow


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def run_summary(run: SyncRun, merchant_name: str | None = None) -> dict[str, Any]:
    return {
        "id": run.id,
        "merchant": run.merchant_id,
        "merchant_name": merchant_name,
        "kind": run.kind,
        "source": {"platform": run.source_platform, "id": run.source_id, "name": run.source_name},
        "status": run.status,
        "attempts": run.attempts,
        "reason": run.reason,
        "error_kind": run.error_kind,
        "trigger": run.trigger,
        "next_attempt_at": _iso(run.next_attempt_at),
        "created_at": _iso(run.created_at),
        "updated_at": _iso(run.updated_at),
        "finished_at": _iso(run.finished_at),
    }


def list_runs(s: Session, *, merchant_id: int | None = None, status: str | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
    q = select(SyncRun, Merchant.name).join(Merchant, Merchant.id == SyncRun.merchant_id)
    if merchant_id is not None:
        q = q.where(SyncRun.merchant_id == merchant_id)
    if status:
        q = q.where(SyncRun.status == status)
    q = q.order_by(SyncRun.id.desc())
    if limit:
        q = q.limit(limit)
    return [run_summary(run, name) for run, name in s.execute(q)]


def run_detail(s: Session, run_id: int) -> dict[str, Any] | None:
    run = s.get(SyncRun, run_id)
    if run is None:
        return None
    detail = run_summary(run, run.merchant.name)
    detail["attempt_log"] = [{"number": a.number, "started_at": _iso(a.started_at),
                              "finished_at": _iso(a.finished_at), "outcome": a.outcome, "step": a.step,
                              "error_kind": a.error_kind, "error": a.error} for a in run.attempt_log]
    detail["steps"] = [{"attempt": st.attempt, "step": st.step, "outcome": st.outcome,
                        "target": {"platform": st.target_platform, "type": st.target_type, "id": st.target_id}
                        if st.target_id else None,
                        "message": st.message, "at": _iso(st.at)} for st in run.steps]
    detail["bindings"] = [{"source": {"platform": b.source_platform, "type": b.source_type, "id": b.source_id},
                           "target": {"platform": b.target_platform, "type": b.target_type, "id": b.target_id},
                           "data": b.data} for b in s.scalars(
                               select(Binding).where(Binding.sync_run_id == run.id).order_by(Binding.id))]
    detail["order"] = run.canonical
    return detail


def counts_by_status(s: Session, merchant_id: int | None = None) -> dict[str, int]:
    q = select(SyncRun.status, func.count()).group_by(SyncRun.status)
    if merchant_id is not None:
        q = q.where(SyncRun.merchant_id == merchant_id)
    return {status: n for status, n in s.execute(q)}


def counts_for_runs(sessions: sessionmaker[Session], run_ids: list[int], *,
                    soon_seconds: float = 120.0) -> dict[str, int]:
    """Status counts of the given runs; runs retrying later than ``soon_seconds`` from now count as
    ``waiting`` (a worker will take them up; nobody should block on them)."""
    counts: dict[str, int] = {}
    horizon = utcnow() + timedelta(seconds=soon_seconds)
    with sessions() as s:
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start:start + 500]
            for status, next_at in s.execute(select(SyncRun.status, SyncRun.next_attempt_at)
                                             .where(SyncRun.id.in_(chunk))):
                if status == "retrying" and next_at is not None and next_at > horizon:
                    status = "waiting"
                counts[status] = counts.get(status, 0) + 1
    return counts
