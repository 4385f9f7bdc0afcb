"""Sync runs: opening one per source event, claiming it atomically, recording attempts and outcomes.

States: pending → running → succeeded | retrying(next_attempt_at) | failed(reason) | skipped(reason).
A run whose lease ran out while ``running`` (its worker died) is due again.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from hub.models import SourceLock, SyncAttempt, SyncRun, utcnow
from sync import order_ledger  # noqa: F401 - the order ledger follows every run written through these functions
from sync.ledger import PER_STORE_PLATFORMS

ACTIVE = ("pending", "retrying")
FINAL = ("succeeded", "failed", "skipped")

log = logging.getLogger(__name__)


def lock_key(run: SyncRun) -> str:
    """The lock a worker holds while it works on a run: one source worked on by one worker at a time (per
    store, where the store numbers its own orders)."""
    store = f"@{run.connection_id}" if run.source_platform in PER_STORE_PLATFORMS and run.connection_id else ""
    return f"{run.merchant_id}:{run.source_platform}:{run.source_id}{store}"


@contextlib.contextmanager
def leases_kept(sessions: sessionmaker[Session], run_ids: list[int], keys: list[str], holder: str,
                lease_seconds: float) -> Iterator[None]:
    """For the block: the runs' leases and the locks ``keys`` (held by ``holder``) extended every third of
    the lease, so a long pass is not taken for a dead worker's; a missed heartbeat only risks a duplicate
    claim, which the bindings make safe."""
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(max(0.5, lease_seconds / 3)):
            try:
                until = utcnow() + timedelta(seconds=lease_seconds)
                with sessions() as s:
                    s.execute(update(SyncRun).where(SyncRun.id.in_(run_ids), SyncRun.status == "running")
                              .values(lease_until=until).execution_options(synchronize_session=False))
                    s.execute(update(SourceLock).where(SourceLock.key.in_(keys), SourceLock.holder == holder)
                              .values(expires_at=until).execution_options(synchronize_session=False))
                    s.commit()
            except Exception:  # noqa: BLE001 - see the docstring
                log.warning("could not extend the leases of runs %s", run_ids[:5])

    keeper = threading.Thread(target=keep, name=f"o2c-lease-{run_ids[0] if run_ids else 0}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join(timeout=5)


def open_run(session: Session, *, merchant_id: int, kind: str, platform: str, source_id: str,
             source_name: str | None, trigger: str, connection_id: int | None = None) -> tuple[SyncRun, bool]:
    """The run that will carry this event: the source's open run (pending, or retrying after a fault)
    absorbs it, since it pulls the source fresh anyway; otherwise a new pending run is added (returns it
    and whether it is new). The caller commits."""
    waiting = session.scalar(
        select(SyncRun).where(SyncRun.merchant_id == merchant_id, SyncRun.kind == kind,
                              SyncRun.source_platform == platform, SyncRun.source_id == source_id,
                              SyncRun.status.in_(ACTIVE),
                              *([SyncRun.connection_id == connection_id] if connection_id is not None else []))
        .order_by(SyncRun.id.desc()).limit(1))
    if waiting is not None:
        waiting.trigger = trigger
        waiting.source_name = source_name or waiting.source_name
        return waiting, False
    run = SyncRun(merchant_id=merchant_id, kind=kind, source_platform=platform, source_id=source_id,
                  source_name=source_name, trigger=trigger, status="pending", attempts=0,
                  connection_id=connection_id)
    session.add(run)
    session.flush()
    return run, True


def due_clause(now: datetime):  # noqa: ANN201
    return or_(
        and_(SyncRun.status.in_(ACTIVE),
             or_(SyncRun.next_attempt_at.is_(None), SyncRun.next_attempt_at <= now)),
        and_(SyncRun.status == "running", SyncRun.lease_until < now),
    )


def due_runs(sessions: sessionmaker[Session], limit: int = 500) -> list[tuple[int, str]]:
    """(id, status) of runs that should be worked on now, oldest first."""
    now = utcnow()
    with sessions() as s:
        rows = s.execute(select(SyncRun.id, SyncRun.status).where(due_clause(now))
                         .order_by(SyncRun.id).limit(limit)).all()
    return [(r[0], r[1]) for r in rows]


def claim(sessions: sessionmaker[Session], run_id: int, lease_seconds: float) -> SyncRun | None:
    """Take the run if it is due (atomically: one claimer wins); records a new attempt."""
    now = utcnow()
    with sessions() as s:
        run = s.scalars(update(SyncRun).where(SyncRun.id == run_id, due_clause(now))   # the row it claimed
                        .values(status="running", attempts=SyncRun.attempts + 1,
                                lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
                        .returning(SyncRun).execution_options(synchronize_session=False)).one_or_none()
        if run is None:
            s.rollback()
            return None
        # the attempt's row number: one more than the last row's (deferred attempts keep their rows but do not
        # count in ``attempts``, see ``postpone``), so rows stay numbered 1, 2, 3… in order
        number = (s.scalar(select(func.max(SyncAttempt.number)).where(SyncAttempt.run_id == run_id)) or 0) + 1
        s.add(SyncAttempt(run_id=run_id, number=number, started_at=now))
        s.commit()
        run.attempt_number = number  # type: ignore[attr-defined] - what the steps of this attempt record
        return run


def defer(sessions: sessionmaker[Session], run_id: int, seconds: float) -> None:
    """Give the run back without using up an attempt (its order is locked by another worker)."""
    now = utcnow()
    with sessions() as s:
        run = s.get(SyncRun, run_id)
        if run is None or run.status != "running":
            return
        run.status = "pending" if run.attempts <= 1 else "retrying"
        run.attempts -= 1
        run.lease_until = None
        run.next_attempt_at = now + timedelta(seconds=seconds)
        attempt = _last_attempt(s, run)
        if attempt is not None:
            s.delete(attempt)
        s.commit()


def postpone(sessions: sessionmaker[Session], run_id: int, *, reason: str, next_attempt_at: datetime,
             error_kind: str | None = None, step: str | None = None, error_code: str | None = None,
             excerpt: dict[str, Any] | None = None) -> None:
    """End this attempt as *deferred*: a call the run shared with others failed for a reason that was
    not the run's own (a timeout, a 5xx, a throttle). The run retries at ``next_attempt_at`` and the
    attempt does not count (``attempts`` goes back down); its row stays, outcome ``deferred``, so support
    sees why the run waited. ``deferrals`` bounds how often this may happen to one run."""
    finish(sessions, run_id, "retrying", reason=reason, error_kind=error_kind, step=step,
           next_attempt_at=next_attempt_at, error_code=error_code, excerpt=excerpt, counted=False)


def deferrals(sessions: sessionmaker[Session], run_id: int) -> int:
    """How many of the run's attempts were deferred (``postpone``) so far."""
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(SyncAttempt).where(
            SyncAttempt.run_id == run_id, SyncAttempt.outcome == "deferred")) or 0


def finish(sessions: sessionmaker[Session], run_id: int, status: str, *, reason: str | None = None,
           error_kind: str | None = None, step: str | None = None,
           next_attempt_at: datetime | None = None, canonical: dict[str, Any] | None = None,
           error_code: str | None = None, excerpt: dict[str, Any] | None = None, counted: bool = True) -> None:
    """Record the end of the run's current attempt (``counted=False``: see ``postpone``)."""
    now = utcnow()
    with sessions() as s:
        run = s.get(SyncRun, run_id)
        if run is None:
            return
        run.status = status
        if not counted:
            run.attempts = max(0, run.attempts - 1)
        run.reason = reason
        run.error_kind = error_kind
        run.error_code = (error_code or None) and error_code[:100]
        run.lease_until = None
        run.next_attempt_at = next_attempt_at
        if canonical is not None:
            run.canonical = canonical
        if status in FINAL:
            run.finished_at = now
        attempt = _last_attempt(s, run)
        if attempt is not None:
            attempt.finished_at = now
            attempt.outcome = status if counted else "deferred"
            attempt.step = step
            attempt.error_kind = error_kind
            attempt.error_code = run.error_code
            attempt.error = reason
            attempt.excerpt = excerpt
        s.commit()


def save_canonical(sessions: sessionmaker[Session], run_id: int, canonical: dict[str, Any],
                   source_name: str | None) -> None:
    with sessions() as s:
        run = s.get(SyncRun, run_id)
        if run is not None:
            run.canonical = canonical
            run.source_name = source_name or run.source_name
            s.commit()


def requeue(sessions: sessionmaker[Session], run_ids: list[int], trigger: str = "retry") -> list[int]:
    """Make finished or waiting runs due now (support's re-run); returns the ids that were changed."""
    now = utcnow()
    changed: list[int] = []
    with sessions() as s:
        for run in s.scalars(select(SyncRun).where(SyncRun.id.in_(run_ids))):
            if run.status == "running":
                continue
            run.status = "pending"
            run.next_attempt_at = now
            run.reason = None
            run.error_kind = None
            run.finished_at = None
            run.trigger = trigger
            changed.append(run.id)
        s.commit()
    return changed


def backoff(attempt: int, *, base: float, cap: float, retry_after: float | None = None,
            rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter, never sooner than the platform's ``Retry-After``."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = (rng or random).uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def attempt_number(run: SyncRun) -> int:
    """The number of the attempt ``run`` is in (as ``claim`` numbered its row)."""
    return int(getattr(run, "attempt_number", None) or run.attempts)


def _last_attempt(s: Session, run: SyncRun) -> SyncAttempt | None:
    return s.scalar(select(SyncAttempt).where(SyncAttempt.run_id == run.id)
                    .order_by(SyncAttempt.number.desc(), SyncAttempt.id.desc()).limit(1))
