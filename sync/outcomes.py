"""How a run's attempt ends, from what its pipeline raised: one classification for a run synced alone
(``sync.jobs``) and for the runs of a batch (each ends with its own error or outcome).

A retryable fault of a call the run shared with other runs (``sync.narrowing.mark_shared``) *defers* the
run: it retries after the platform's wait without using up an attempt, up to ``max_deferrals`` times;
a fault of a call the run had to itself counts as one of its attempts, as always."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from connectors.errors import AuthExpired, ConnectorError, Permanent, Retryable
from hub.models import SyncRun, utcnow
from mappings.model import MappingError
from sync import locks, runs
from sync.accounts import NeedsReconnect
from sync.jobs import RECONNECT_WAIT, Outcome
from sync.narrowing import shared_by

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.orders")


# how often one run may wait for a platform's rate limit (429, Shopify THROTTLED, the hub's own limiter)
# without the wait counting as an attempt: far more than any real throttle lasts, but not forever
THROTTLE_DEFERRALS = 100
THROTTLE_CODES = frozenset({429, "429", "THROTTLED", "RATE_LIMIT_WAIT"})


def is_throttle(error: BaseException) -> bool:
    """A rate-limit answer (or the hub's own limiter refusing a slot): a wait, never a fault."""
    return isinstance(error, Retryable) and (error.status == 429 or error.code in THROTTLE_CODES)


def max_deferrals(max_attempts: int) -> int:
    """How often a run may be deferred for faults of calls it shared with other runs before such a fault
    counts as one of its attempts (so that a call that always fails cannot keep a run waiting forever)."""
    return 2 * max(1, max_attempts)


def error_code(exc: BaseException) -> str | None:
    """``quickbooks:6140``: the platform and its own fault code (a mapping error: the rule it names)."""
    if isinstance(exc, MappingError):
        return getattr(exc, "rule", None)
    if isinstance(exc, ConnectorError):
        return f"{exc.platform}:{exc.code}" if exc.platform and exc.code else exc.platform or None
    return None


def conclude(hub: Hub, run: SyncRun, step: str | None, error: BaseException | None,
             outcome: Outcome | None) -> str:
    """Record the end of ``run``'s attempt and return its new status."""
    st = hub.settings
    if error is None:
        if outcome is not None and outcome.status != "succeeded":
            runs.finish(hub.sessions, run.id, outcome.status, reason=outcome.reason, step=step)
            return outcome.status
        runs.finish(hub.sessions, run.id, "succeeded", step=step)
        return "succeeded"
    if isinstance(error, Outcome):
        runs.finish(hub.sessions, run.id, error.status, reason=error.reason, step=step)
        return error.status
    code = error_code(error)
    excerpt = getattr(error, "excerpt", None)  # the failing call, redacted by the connector
    if isinstance(error, MappingError):
        runs.finish(hub.sessions, run.id, "failed", reason=f"mapping: {error}", error_kind="mapping", step=step,
                    error_code=code)
        return "failed"
    if isinstance(error, NeedsReconnect):
        runs.finish(hub.sessions, run.id, "retrying", reason=f"waiting: {error}", error_kind="auth", step=step,
                    next_attempt_at=utcnow() + RECONNECT_WAIT, error_code=code)
        return "retrying"
    if isinstance(error, Retryable | OperationalError | locks.LockBusy):
        retry_after = error.retry_after if isinstance(error, Retryable) else None
        reason = (str(error) if isinstance(error, Retryable) else
                  f"another sync holds {error}" if isinstance(error, locks.LockBusy) else
                  "database temporarily unavailable")
        if is_throttle(error) and runs.deferrals(hub.sessions, run.id) < THROTTLE_DEFERRALS:
            # the platform's rate limit is no fault of the run: wait as long as it says, uncounted
            delay = retry_after if retry_after is not None and retry_after > 0 else 1.0
            runs.postpone(hub.sessions, run.id, reason=f"{reason}: waiting {delay:g} s as the platform asks "
                                                       "(not counted as an attempt)",
                          error_kind="retryable", step=step, next_attempt_at=utcnow() + timedelta(seconds=delay),
                          error_code=code, excerpt=excerpt)
            return "retrying"
        if shared_by(error) > 1 and _defer(hub, run, step, error, reason, retry_after, code, excerpt):
            return "retrying"
        if run.attempts >= st.max_attempts:
            runs.finish(hub.sessions, run.id, "failed", reason=f"gave up after {run.attempts} attempts: {reason}",
                        error_kind="retryable", step=step, error_code=code, excerpt=excerpt)
            return "failed"
        delay = runs.backoff(run.attempts, base=st.backoff_base, cap=st.backoff_cap, retry_after=retry_after)
        runs.finish(hub.sessions, run.id, "retrying", reason=reason, error_kind="retryable", step=step,
                    next_attempt_at=utcnow() + timedelta(seconds=delay), error_code=code, excerpt=excerpt)
        return "retrying"
    if isinstance(error, Permanent | AuthExpired | ConnectorError):
        runs.finish(hub.sessions, run.id, "failed", reason=str(error), error_kind=error.kind, step=step,
                    error_code=code, excerpt=excerpt)
        return "failed"
    log.error("run %s crashed in step %s", run.id, step, exc_info=error)
    where = f" in the {step} step" if step else ""
    runs.finish(hub.sessions, run.id, "failed",   # the exception's text (a repr, often) stays in the log
                reason=f"internal error: the hub failed unexpectedly{where} ({type(error).__name__}); the worker's "
                       "log has the details for a developer; re-run once it is fixed",
                error_kind="internal", step=step)
    return "failed"


def _defer(hub: Hub, run: SyncRun, step: str | None, error: BaseException, reason: str,
           retry_after: float | None, code: str | None, excerpt: dict | None) -> bool:
    """Defer the run for a fault of a shared call (returns False once it was deferred too often)."""
    st = hub.settings
    deferred = runs.deferrals(hub.sessions, run.id)
    if deferred >= max_deferrals(st.max_attempts):
        return False
    delay = runs.backoff(deferred + 1, base=st.backoff_base, cap=st.backoff_cap, retry_after=retry_after)
    runs.postpone(hub.sessions, run.id, reason=f"{reason} (a call shared by {shared_by(error)} runs: "
                                               "not counted as an attempt)",
                  error_kind="retryable", step=step, next_attempt_at=utcnow() + timedelta(seconds=delay),
                  error_code=code, excerpt=excerpt)
    return True
