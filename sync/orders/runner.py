"""The runner of the order pipeline: claim the runs, lock their orders, run the steps (``STEPS``) over the
list of entries, record each run's outcome (``sync.outcomes.conclude``) and keep the leases alive while
it works. A webhook is a list of one (``sync_order``, from ``sync.jobs``), a micro-batch a burst
(``sync.microbatch``), a backfill thousands (``sync.backfill``): one pipeline for them all."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hub.models import SyncRun, SyncStep
from sync import alerts, locks, runs
from sync.jobs import LOCK_BUSY_DELAY, StepRecorder
from sync.narrowing import mark_shared
from sync.orders.contacts import contacts
from sync.orders.context import BufferedRecorder, Entry, Loader, OrderContext
from sync.orders.credit import credit, credit_review
from sync.orders.customers import customers
from sync.orders.deals import deals
from sync.orders.invoices import invoices, voids
from sync.orders.items import items
from sync.orders.payments import payments
from sync.orders.pull import pull
from sync.orders.refunds import refunds
from sync.outcomes import conclude

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.orders")

# the O2C steps in order, each over the whole list (the pull also settles deleted orders; the voids
# cancelled ones; credit checks net-terms orders against the customer's limit before they are invoiced)
STEPS: tuple[Callable[[OrderContext], None], ...] = (pull, voids, contacts, customers, credit, items, invoices,
                                                     payments, credit_review, refunds, deals)

# steps that also act for orders already done in this pass (a cancelled order's deal, its credit hold)
ALWAYS = (pull, credit, credit_review, deals)


@dataclass
class RunsResult:
    statuses: dict[int, str] = field(default_factory=dict)   # run id → final status of this attempt
    deferred: list[int] = field(default_factory=list)        # order locked elsewhere: given back
    not_due: list[int] = field(default_factory=list)         # claimed by someone else: left alone

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)


def run_orders(hub: Hub, run_ids: list[int], loaders: dict[int, Loader] | None = None) -> RunsResult:
    """Claim each run (a run claimed by someone else is left alone), lock its order (an order locked by
    another worker is given back for later), pull the orders ``loaders`` does not supply, sync them all
    and record each run's outcome. Runs of several merchants are synced merchant by merchant."""
    result = RunsResult()
    lease = hub.settings.run_lease_seconds
    claimed: list[SyncRun] = []
    for run_id in run_ids:
        run = runs.claim(hub.sessions, run_id, lease)
        if run is None:
            result.not_due.append(run_id)
        else:
            claimed.append(run)
    holder = locks.holder_id() + ":orders"
    # every order's lock in one statement when no other worker has any of them, else one by one
    all_taken = locks.try_acquire_all(hub.sessions, {runs.lock_key(r): holder for r in claimed}, lease)
    held: list[tuple[SyncRun, str]] = []
    for run in claimed:
        key = runs.lock_key(run)
        if any(k == key for _, k in held):  # a second run of the same order: after this one, not beside it
            runs.defer(hub.sessions, run.id, LOCK_BUSY_DELAY)
            result.deferred.append(run.id)
        elif all_taken or locks.try_acquire(hub.sessions, key, holder, lease):
            held.append((run, key))
        else:
            runs.defer(hub.sessions, run.id, LOCK_BUSY_DELAY)
            result.deferred.append(run.id)
    if not held:
        return result
    try:
        with runs.leases_kept(hub.sessions, [r.id for r, _ in held], [k for _, k in held], holder, lease):
            by_merchant: dict[int, list[SyncRun]] = {}
            for run, _ in held:
                by_merchant.setdefault(run.merchant_id, []).append(run)
            for merchant_id, merchant_runs in by_merchant.items():
                buffer: list[SyncStep] = []
                entries = [Entry(run=r, rec=BufferedRecorder(hub, r, buffer), load=(loaders or {}).get(r.id))
                           for r in merchant_runs]
                try:
                    sync_entries(OrderContext(hub, merchant_id, entries), lambda buffer=buffer: flush(hub, buffer))
                except Exception as exc:  # noqa: BLE001 - a failure of the batch itself: every open entry has it
                    log.exception("batch of merchant %s failed", merchant_id)
                    mark_shared(exc, len(entries))
                    for e in entries:
                        e.fail(exc)
                finally:
                    flush(hub, buffer)
                for e in entries:
                    status = conclude(hub, e.run, e.rec.current, e.error, e.outcome)
                    result.statuses[e.run.id] = alerts.after_run(hub, e.run.id, status)  # never raises
    finally:
        locks.release_all(hub.sessions, {key: holder for _, key in held})
    return result


def sync_entries(ctx: OrderContext, flush_steps: Callable[[], None] = lambda: None) -> None:
    """Run every step over the entries of ``ctx`` (claimed runs of one merchant); each entry ends with its
    own error or outcome, or neither (success)."""
    for step in STEPS:
        if step not in ALWAYS and not ctx.live():
            continue
        step(ctx)
        flush_steps()


def sync_order(hub: Hub, run: SyncRun, rec: StepRecorder) -> None:
    """One run already claimed and locked (``sync.jobs.run_sync``): the same steps over a list of one;
    raises what ended the run early (``sync.outcomes.conclude`` classifies it)."""
    entry = Entry(run=run, rec=rec)
    sync_entries(OrderContext(hub, run.merchant_id, [entry]))
    if entry.error is not None:
        raise entry.error
    if entry.outcome is not None:
        raise entry.outcome


def flush(hub: Hub, buffer: list[SyncStep]) -> None:
    """Write the steps recorded so far in one transaction."""
    if not buffer:
        return
    rows = list(buffer)
    buffer.clear()
    with hub.sessions() as s:
        s.add_all(rows)
        s.commit()

