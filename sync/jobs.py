"""The job function every mode runs: claim the run, hold its source lock, run its pipeline, record
the outcome (``sync.outcomes``: retry timing lives there, not at the call site)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from connectors.errors import Permanent
from hub.models import SyncRun, SyncStep
from mappings.inputs import shown
from sync import alerts, locks, runs

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
            s.add(SyncStep(run_id=self.run.id, attempt=runs.attempt_number(self.run), step=step, outcome=outcome,
                           target_platform=target_platform, target_type=target_type,
                           target_id=target_id, message=message))
            s.commit()


def _pipelines() -> dict[str, Callable[[Hub, SyncRun, StepRecorder], None]]:
    from sync.compliance import erase_requested
    from sync.orders.runner import sync_order
    from sync.payments import sync_payment

    return {"order": sync_order, "payment": sync_payment, "privacy": erase_requested}


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
    key = runs.lock_key(run)
    holder = locks.holder_id() + f":run{run_id}"
    if not locks.try_acquire(hub.sessions, key, holder, st.run_lease_seconds):
        runs.defer(hub.sessions, run_id, LOCK_BUSY_DELAY)
        return "deferred"
    recorder = StepRecorder(hub, run)
    try:
        with runs.leases_kept(hub.sessions, [run_id], [key], holder, st.run_lease_seconds):
            status = _execute(hub, run, recorder)
    finally:
        locks.release(hub.sessions, key, holder)
    return alerts.after_run(hub, run_id, status)  # alerts when it failed for good (never raises)


def _execute(hub: Hub, run: SyncRun, recorder: StepRecorder) -> str:
    """Run the pipeline and record how the attempt ended (``sync.outcomes.conclude``: the classification
    the order pipeline applies to each run of a list too)."""
    from sync.outcomes import conclude

    pipeline = _pipelines().get(run.kind)
    try:
        if pipeline is None:
            raise Permanent(f"no pipeline for runs of kind {shown(run.kind)}")
        pipeline(hub, run, recorder)
    except Exception as exc:  # noqa: BLE001 - every failure is classified; a bug fails visibly, never retries
        status = conclude(hub, run, recorder.current, exc, None)
        log.info("run %s ended %s (%s)", run.id, status, type(exc).__name__)
        return status
    return conclude(hub, run, recorder.current, None, None)
