"""The batch pipeline: many orders of one merchant synced together, with a few calls for all of them.

The steps are those of ``sync.orders`` (contact → customer → items → invoice → payment → refunds) and
use the same mappings, bindings and idempotency keys, but each step works on the whole list:

* contacts: one HubSpot batch upsert per 100 buyers;
* customers and items: bindings first (one database query), then one ``IN (…)`` look-up for what is not
  bound, then the missing ones created through the QuickBooks batch endpoint;
* invoices and payments: created through the batch endpoint, 30 per request.

**Idempotency without ``requestid``.** Before creating invoices, every order without an invoice binding is
looked up by ``DocNumber`` (one ``DocNumber IN (…)`` query per 100 orders) and an invoice whose
``PrivateNote`` names the order id is taken as its own; before paying an invoice that was not created in
this pass, its ``LinkedTxn`` is read and a payment whose note names the order is taken as its own.
Customers and items are found again by e-mail, SKU or name. A worker killed after QuickBooks created a
batch but before the bindings were written therefore finds the objects on the next attempt and never
creates them twice; each binding is written the moment a batch answers.

**Partial failures: one order never fails another.** Every order carries its own outcome. A batch item's
fault fails only that order's run, with QuickBooks' message and fault code. A call that fails as a whole
for good (a Shopify query over several orders refused for one bad id, a QuickBooks batch or a HubSpot
batch upsert refused for one bad entry) is narrowed within the same pass: the entries the error names, or
else each half, are sent again apart, down to the culprit alone, so the others succeed in this pass and
the culprit fails with its own reason (``sync.narrowing``). A call that fails as a whole for a passing
reason (a timeout, a 5xx, a 429, a lost answer) makes the orders in it retry; a run that shared the call
with others is deferred without using up an attempt (``sync.outcomes``). Orders the batch steps do not
cover — a changed invoice to update,
refunds, a cancelled order, a buyer without e-mail — go through ``sync.orders.OrderPipeline`` for that
step, after the batch steps did what they could.

Entry points: ``run_batch`` (claim the runs, lock their orders, pull what is not given, sync, record the
outcome of each run) and ``sync_entries`` (the steps on entries already claimed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from hub.models import SourceLock, SyncRun, SyncStep, utcnow
from mappings.model import Order
from sync import alerts, locks, runs
from sync.jobs import LOCK_BUSY_DELAY, Outcome, StepRecorder
from sync.narrowing import mark_shared
from sync.outcomes import conclude

if TYPE_CHECKING:
    from hub.runtime import Hub
    from sync.batch_context import BatchContext

log = logging.getLogger("o2c.batch")

Loader = Callable[[], Order | None]


class BufferedRecorder(StepRecorder):
    """A ``StepRecorder`` whose steps are written together (``flush``), not one transaction each."""

    def __init__(self, hub: Hub, run: SyncRun, buffer: list[SyncStep]) -> None:
        super().__init__(hub, run)
        self.buffer = buffer

    def record(self, step: str, outcome: str, *, target_platform: str | None = None,
               target_type: str | None = None, target_id: str | None = None,
               message: str | None = None) -> None:
        self.buffer.append(SyncStep(run_id=self.run.id, attempt=runs.attempt_number(self.run), step=step,
                                    outcome=outcome,
                                    target_platform=target_platform, target_type=target_type,
                                    target_id=target_id, message=message, at=utcnow()))


@dataclass
class Entry:
    """One order of the batch: its run, the order, and what the steps found for it."""

    run: SyncRun
    rec: BufferedRecorder
    load: Loader | None = None
    order: Order | None = None
    error: BaseException | None = None
    outcome: Outcome | None = None
    customer_id: str | None = None
    item_ids: dict[str, str] = field(default_factory=dict)
    invoice: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.error is None and self.outcome is None and self.order is not None

    def fail(self, exc: BaseException) -> None:
        if self.error is None and self.outcome is None:
            self.error = exc


@dataclass
class BatchResult:
    statuses: dict[int, str] = field(default_factory=dict)   # run id → final status of this attempt
    deferred: list[int] = field(default_factory=list)        # order locked elsewhere: given back
    not_due: list[int] = field(default_factory=list)         # claimed by someone else: left alone

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)


def run_batch(hub: Hub, run_ids: list[int], loaders: dict[int, Loader] | None = None) -> BatchResult:
    """Claim each run (a run claimed by someone else is left alone), lock its order (an order locked by
    another worker is given back for later), pull the orders ``loaders`` does not supply, sync them all
    and record each run's outcome. Runs of several merchants are synced merchant by merchant."""
    result = BatchResult()
    lease = hub.settings.run_lease_seconds
    claimed: list[SyncRun] = []
    for run_id in run_ids:
        run = runs.claim(hub.sessions, run_id, lease)
        if run is None:
            result.not_due.append(run_id)
        else:
            claimed.append(run)
    holder = locks.holder_id() + ":batch"
    held: list[tuple[SyncRun, str]] = []
    for run in claimed:
        key = f"{run.merchant_id}:{run.source_platform}:{run.source_id}"
        if any(k == key for _, k in held):  # a second run of the same order: after this one, not beside it
            runs.defer(hub.sessions, run.id, LOCK_BUSY_DELAY)
            result.deferred.append(run.id)
        elif locks.try_acquire(hub.sessions, key, holder, lease):
            held.append((run, key))
        else:
            runs.defer(hub.sessions, run.id, LOCK_BUSY_DELAY)
            result.deferred.append(run.id)
    if not held:
        return result
    stop = threading.Event()
    keeper = threading.Thread(target=_keep_leases, args=(hub, [r.id for r, _ in held], [k for _, k in held], holder,
                                                         stop), name="o2c-batch-lease", daemon=True)
    keeper.start()
    try:
        by_merchant: dict[int, list[SyncRun]] = {}
        for run, _ in held:
            by_merchant.setdefault(run.merchant_id, []).append(run)
        for merchant_id, merchant_runs in by_merchant.items():
            buffer: list[SyncStep] = []
            entries = [Entry(run=r, rec=BufferedRecorder(hub, r, buffer), load=(loaders or {}).get(r.id))
                       for r in merchant_runs]
            try:
                sync_entries(hub, merchant_id, entries, buffer)
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
        stop.set()
        keeper.join(timeout=5)
        for _, key in held:
            locks.release(hub.sessions, key, holder)
    return result


def sync_entries(hub: Hub, merchant_id: int, entries: list[Entry], buffer: list[SyncStep]) -> None:
    """Run every step over ``entries`` (claimed runs of one merchant); each entry ends with its own error or
    outcome, or neither (success)."""
    from sync.batch_context import BatchContext
    from sync.batch_docs import invoices, leftovers, payments
    from sync.batch_pull import pull
    from sync.batch_steps import contacts, customers, items

    ctx = BatchContext(hub, merchant_id, entries)
    pull(ctx)
    triage(ctx)
    for step in (contacts, customers, items, invoices, payments, leftovers):
        if not ctx.live():
            break
        step(ctx)
        flush(hub, buffer)


def triage(ctx: BatchContext) -> None:
    """Deleted and cancelled orders take the single-order path now; the others stay in the batch."""
    from sync.orders import OrderPipeline

    canon: list[Entry] = []
    for e in ctx.entries:
        if e.error is not None or e.outcome is not None:
            continue
        if e.order is None:
            ctx.each([e], lambda e: _deleted(ctx, e))
            continue
        canon.append(e)
        if e.order.cancelled_at and not e.order.is_paid:
            def cancel(e: Entry) -> None:
                pipeline: OrderPipeline = ctx.pipeline(e)
                binding = pipeline.invoice_binding()
                if binding is None:
                    raise Outcome("skipped", f"order {e.order.name} was cancelled before it was invoiced")
                pipeline.void_invoice(binding.target_id)
                e.outcome = Outcome("succeeded", "voided")
            ctx.each([e], cancel)
    with ctx.hub.sessions() as s:
        for e in canon:
            run = s.get(SyncRun, e.run.id)
            if run is not None:
                run.canonical = e.order.to_dict()
                run.source_name = e.order.name or run.source_name
        s.commit()


def _deleted(ctx: BatchContext, e: Entry) -> None:
    from connectors.errors import Permanent
    from sync.ledger import Source

    run = e.run
    invoiced = ctx.ledger.find(Source(run.source_platform, "order", run.source_id), "quickbooks", "invoice")
    if invoiced is None:
        raise Outcome("skipped", f"order {run.source_name or run.source_id} was deleted from the store "
                                 "before it was invoiced")
    raise Permanent(f"order {run.source_name or run.source_id} was deleted from the store after it was "
                    f"invoiced (QuickBooks invoice {invoiced.target_id}): void or keep the invoice by hand",
                    platform=run.source_platform, code="deleted")


def flush(hub: Hub, buffer: list[SyncStep]) -> None:
    """Write the steps recorded so far in one transaction."""
    if not buffer:
        return
    rows = list(buffer)
    buffer.clear()
    with hub.sessions() as s:
        s.add_all(rows)
        s.commit()


def _keep_leases(hub: Hub, run_ids: list[int], keys: list[str], holder: str, stop: threading.Event) -> None:
    from datetime import timedelta

    lease = hub.settings.run_lease_seconds
    while not stop.wait(max(0.5, lease / 3)):
        try:
            until = utcnow() + timedelta(seconds=lease)
            with hub.sessions() as s:
                s.execute(update(SyncRun).where(SyncRun.id.in_(run_ids), SyncRun.status == "running")
                          .values(lease_until=until).execution_options(synchronize_session=False))
                s.execute(update(SourceLock).where(SourceLock.key.in_(keys), SourceLock.holder == holder)
                          .values(expires_at=until).execution_options(synchronize_session=False))
                s.commit()
        except Exception:  # noqa: BLE001 - a missed heartbeat only risks a duplicate claim, which is safe
            log.warning("could not extend the leases of a batch")
