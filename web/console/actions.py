"""What support does from the console: re-run and skip runs, resume the runs waiting for a reconnect.
Each action writes an audit entry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from hub import audit
from hub.models import Connection, SyncRun, utcnow
from mappings.inputs import clean_text
from sync import order_ledger, runs

if TYPE_CHECKING:
    from hub.runtime import Hub

SKIPPABLE = ("pending", "retrying", "failed")


TRACKED_RUNS = 10_000   # the runs an audit entry lists, so its progress page can follow them


class ActionRefused(ValueError):
    """The action does not apply to the run now; the message says why."""


class Requeued(list[int]):
    """The ids of the runs re-queued, and the audit entry that lists them (the progress page's key)."""

    entry_id: int | None = None


def rerun(hub: Hub, run_ids: list[int], actor: str, *, action: str = "run.rerun", target_type: str = "run",
          target_id: str | None = None, detail: dict[str, Any] | None = None) -> Requeued:
    """Make the runs due now and hand them to the workers; returns the ids re-queued (running ones are not).
    One audit entry: for the run, or for the group named by ``target_id``; it lists the runs, so
    ``web.console.progress`` can show how far they got."""
    changed = Requeued(runs.requeue(hub.sessions, run_ids, trigger=f"console:{actor}"[:100]))
    with hub.session() as s:
        merchants = set(s.scalars(select(SyncRun.merchant_id).where(SyncRun.id.in_(changed)))) if changed else set()
        entry = audit.record(s, actor, action, target_type=target_type,
                             target_id=target_id or (str(run_ids[0]) if len(run_ids) == 1 else None),
                             merchant_id=next(iter(merchants)) if len(merchants) == 1 else None,
                             detail={**(detail or {}), "runs": changed[:TRACKED_RUNS], "requeued": len(changed),
                                     "requested": len(run_ids)})
        s.flush()
        changed.entry_id = entry.id
    for run_id in changed:
        hub.dispatcher.dispatch(run_id)
    return changed


def skip_run(hub: Hub, run_id: int, actor: str, reason: str) -> None:
    """Mark a waiting or failed run as skipped, with who skipped it and why."""
    reason = " ".join(clean_text(reason).split())  # storable whoever typed it (console, API, CLI)
    if not reason:
        raise ActionRefused("say why the run is skipped")
    now = utcnow()
    with hub.session() as s:
        run = s.get(SyncRun, run_id)
        if run is None:
            raise ActionRefused(f"no sync run {run_id}")
        done = s.execute(update(SyncRun).where(SyncRun.id == run_id, SyncRun.status.in_(SKIPPABLE))
                         .values(status="skipped", reason=f"skipped by {actor}: {reason}"[:2000], error_kind=None,
                                 next_attempt_at=None, lease_until=None, finished_at=now, updated_at=now)
                         .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            s.rollback()
            raise ActionRefused(f"a {run.status} run cannot be skipped (only {', '.join(SKIPPABLE)} runs)")
        audit.record(s, actor, "run.skip", target_type="run", target_id=run_id, merchant_id=run.merchant_id,
                     detail={"reason": reason, "was": run.status})
        order_ledger.refresh(s, [run_id])


def waiting_for_reconnect(s: Session, merchant_id: int, platform: str | None = None) -> list[int]:
    """Ids of the merchant's runs waiting for a reconnect (retrying, error kind auth); with ``platform``,
    those waiting for that platform (or for an unnamed one)."""
    q = select(SyncRun.id).where(SyncRun.merchant_id == merchant_id, SyncRun.status == "retrying",
                                 SyncRun.error_kind == "auth")
    if platform:
        q = q.where(or_(SyncRun.error_code.is_(None), SyncRun.error_code == platform,
                        SyncRun.error_code.startswith(f"{platform}:")))
    return list(s.scalars(q.order_by(SyncRun.id)))


def resume_connection(hub: Hub, connection_id: int, actor: str) -> list[int]:
    """Make the merchant's runs that wait for a reconnect due now, once the connection is active again
    (its credentials re-entered by ``o2c connect``); refused, with what to do, while it is not."""
    with hub.session() as s:
        conn = s.get(Connection, connection_id)
        if conn is None:
            raise ActionRefused(f"no connection {connection_id}")
        if conn.status != "active":
            audit.record(s, actor, "connection.resume_refused", target_type="connection", target_id=conn.id,
                         merchant_id=conn.merchant_id, detail={"platform": conn.platform, "status": conn.status})
            s.commit()
            why = f" ({conn.status_reason})" if conn.status_reason else ""
            raise ActionRefused(
                f"the {conn.platform} connection {conn.account} is {conn.status.replace('_', ' ')}{why}. "
                f"The merchant must reconnect it first (o2c connect {conn.platform} {conn.merchant_id} … with "
                f"new credentials); then resume")
        detail = {"platform": conn.platform, "account": conn.account, "merchant": conn.merchant_id}
        ids = waiting_for_reconnect(s, conn.merchant_id)
        if not ids:
            audit.record(s, actor, "connection.resume", target_type="connection", target_id=conn.id,
                         merchant_id=conn.merchant_id, detail={**detail, "runs": [], "requeued": 0, "requested": 0})
            s.commit()
            return []
    return rerun(hub, ids, actor, action="connection.resume", target_type="connection",
                 target_id=str(connection_id), detail=detail)
