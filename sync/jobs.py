"""The job function every mode runs: claim the run, hold its source lock, run its pipeline, record
the outcome. Retry timing lives here, not at the call site."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from connectors.errors import AuthExpired, ConnectorError, Permanent, Retryable
from hub import alerts
from hub.models import SyncRun, SyncStep, utcnow
from mappings.model import MappingError
from sync import locks, runs
from sync.accounts import NeedsReconnect

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.jobs")

RECONNECT_WAIT = timedelta(hours=1)
LOCK_BUSY_DELAY = 0.5


class Outcome(Exception):
    """A pipeline ends early with a final status other than success (e.g. ``skipped``)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class StepRecorder:
    """Writes what each step did (``SyncStep`` rows) and remembers the step in progress."""

    def __init__(self, hub: Hub, run: SyncRun) -> None:
        self.hub = hub
        self.run = run
        self.current: str | None = None

    def begin(self, step: str) -> None:
        self.current = step

    def record(self, step: str, outcome: str, *, target_platform: str | None = None,
               target_type: str | None = None, target_id: str | None = None,
               message: str | None = None) -> None:
        with self.hub.sessions() as s:
            s.add(SyncStep(run_id=self.run.id, attempt=self.run.attempts, step=step, outcome=outcome,
                           target_platform=target_platform, target_type=target_type,
                           target_id=target_id, message=message))
            s.commit()


def _pipelines() -> dict[str, Callable[[Hub, SyncRun, StepRecorder], None]]:
    from sync.orders import sync_order
    from sync.payments import sync_payment

    return {"order": sync_order, "payment": sync_payment}


def run_job(run_id: int) -> str:
    """The rq entry point: the process's hub comes from the environment."""
    from hub.runtime import current_hub

    return run_sync(run_id, hub=current_hub())


def run_sync(run_id: int, *, hub: Hub) -> str:
    """Work on one run if it is due. Returns the run's new status (or ``not-due``/``deferred``)."""
    st = hub.settings
    run = runs.claim(hub.sessions, run_id, st.run_lease_seconds)
    if run is None:
        return "not-due"
    key = f"{run.merchant_id}:{run.source_platform}:{run.source_id}"
    holder = locks.holder_id() + f":run{run_id}"
    if not locks.try_acquire(hub.sessions, key, holder, st.run_lease_seconds):
        runs.defer(hub.sessions, run_id, LOCK_BUSY_DELAY)
        return "deferred"
    stop = threading.Event()
    keeper = threading.Thread(target=_keep_lease, args=(hub, run_id, key, holder, stop),
                              name=f"o2c-lease-{run_id}", daemon=True)
    keeper.start()
    recorder = StepRecorder(hub, run)
    try:
        status = _execute(hub, run, recorder)
    finally:
        stop.set()
        keeper.join(timeout=5)
        locks.release(hub.sessions, key, holder)
    return alerts.after_run(hub, run_id, status)  # alerts when it failed for good (never raises)


def _execute(hub: Hub, run: SyncRun, recorder: StepRecorder) -> str:
    st = hub.settings
    pipeline = _pipelines().get(run.kind)
    try:
        if pipeline is None:
            raise Permanent(f"no pipeline for runs of kind {run.kind!r}")
        pipeline(hub, run, recorder)
    except Outcome as out:
        runs.finish(hub.sessions, run.id, out.status, reason=out.reason, step=recorder.current)
        return out.status
    except MappingError as exc:
        reason = f"mapping: {exc}"
        runs.finish(hub.sessions, run.id, "failed", reason=reason, error_kind="mapping", step=recorder.current,
                    error_code=exc.rule)
        log.info("run %s failed: %s", run.id, reason)
        return "failed"
    except NeedsReconnect as exc:
        reason = f"waiting: {exc}"
        runs.finish(hub.sessions, run.id, "retrying", reason=reason, error_kind="auth",
                    step=recorder.current, next_attempt_at=utcnow() + RECONNECT_WAIT, error_code=_code(exc))
        return "retrying"
    except (Retryable, OperationalError, locks.LockBusy) as exc:
        retry_after = exc.retry_after if isinstance(exc, Retryable) else None
        reason = (str(exc) if isinstance(exc, Retryable) else
                  f"another sync holds {exc}" if isinstance(exc, locks.LockBusy) else
                  "database temporarily unavailable")
        code = _code(exc) if isinstance(exc, ConnectorError) else None
        excerpt = getattr(exc, "excerpt", None)
        if run.attempts >= st.max_attempts:
            runs.finish(hub.sessions, run.id, "failed", reason=f"gave up after {run.attempts} attempts: {reason}",
                        error_kind="retryable", step=recorder.current, error_code=code, excerpt=excerpt)
            return "failed"
        delay = runs.backoff(run.attempts, base=st.backoff_base, cap=st.backoff_cap, retry_after=retry_after)
        runs.finish(hub.sessions, run.id, "retrying", reason=reason, error_kind="retryable",
                    step=recorder.current, next_attempt_at=utcnow() + timedelta(seconds=delay), error_code=code,
                    excerpt=excerpt)
        return "retrying"
    except (Permanent, AuthExpired, ConnectorError) as exc:
        runs.finish(hub.sessions, run.id, "failed", reason=str(exc), error_kind=exc.kind, step=recorder.current,
                    error_code=_code(exc), excerpt=getattr(exc, "excerpt", None))
        return "failed"
    except Exception as exc:  # a bug: fail visibly, keep the trace in the log, never retry blindly
        log.error("run %s crashed in step %s:\n%s", run.id, recorder.current, traceback.format_exc())
        runs.finish(hub.sessions, run.id, "failed", reason=f"internal error: {type(exc).__name__}: {exc}"[:1000],
                    error_kind="internal", step=recorder.current)
        return "failed"
    runs.finish(hub.sessions, run.id, "succeeded", step=recorder.current)
    return "succeeded"


def _code(exc: ConnectorError) -> str | None:
    """``quickbooks:6000``: the platform and its own fault code, for grouping failures by cause."""
    return f"{exc.platform}:{exc.code}" if exc.platform and exc.code else exc.platform or None


def _keep_lease(hub: Hub, run_id: int, key: str, holder: str, stop: threading.Event) -> None:
    lease = hub.settings.run_lease_seconds
    while not stop.wait(max(0.5, lease / 3)):
        try:
            runs.extend_lease(hub.sessions, run_id, lease)
            locks.extend(hub.sessions, key, holder, lease)
        except Exception:  # noqa: BLE001 - a missed heartbeat only risks a duplicate claim, which is safe
            log.warning("could not extend the lease of run %s", run_id)
