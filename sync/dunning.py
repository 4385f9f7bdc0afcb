"""Dunning: overdue invoices moved through the merchant's stages (``receivables.dunning`` in the mapping
rules), each (invoice, stage) acted on exactly once, even with several workers running at once.

A pass (``dunning_pass``):

1. QuickBooks' open invoices (``sync.receivables``; one query per 1,000), aged as of the day; only the
   invoices of store orders (the order ledger's) are chased, not those the merchant made in QuickBooks.
2. For every stage an invoice has reached (days past due ≥ the stage's days), not yet done: the stage is
   *claimed* by inserting its ``dunning_actions`` row (unique per merchant, invoice and stage) **before**
   anything is sent. The insert of a second worker fails and it leaves the stage alone; a failed stage is
   claimed again by the next pass; a claim whose worker died is taken over after ``CLAIM_LEASE``.
3. The claimed stages' actions: ``task`` (a HubSpot task for the contact's owner, due the same day, naming
   the invoice and amount: 1 call for the owner + 1 to create) and ``send_invoice`` (QuickBooks e-mails the
   invoice again, ``POST /invoice/{id}/send`` with a requestid per (invoice, stage): 1 call).
4. ``properties``: the HubSpot contact properties ``o2c_ar_balance``, ``o2c_overdue_balance``,
   ``o2c_days_past_due`` and ``o2c_dunning_stage`` of every contact being chased, written when they changed
   (one batch update per 100 contacts); a contact whose invoices were paid gets them cleared (a payment stops
   the chase: a paid invoice is no longer open, so it reaches no further stage). The properties are created
   in HubSpot when missing (checked once, then remembered).

Every action is an audit entry (``dunning.<stage>``) on the order's ledger row, so it shows in the order's
timeline. Calls per pass: 1 + (1 batch update if any contact's figures changed) + per newly reached stage 2
for a task and 1 for a send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from hub import audit
from hub.mapping_rules import rules_for
from hub.models import Connection, utcnow
from hub.receivables_models import DunningAction
from mappings import quickbooks as qbmap
from mappings.receivables import DunningStage
from sync import locks
from sync.accounts import Accounts
from sync.ledger import Ledger, Source
from sync.receivables import OpenInvoice, home_currency, open_invoices, receivables, today

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.dunning")
ACTOR = "dunning"
CLAIM_LEASE = timedelta(minutes=10)
DAILY = timedelta(hours=23)
PROPERTIES = {   # name → (label, type, field type)
    "o2c_ar_balance": ("Open receivables (O2C Hub)", "number", "number"),
    "o2c_overdue_balance": ("Overdue receivables (O2C Hub)", "number", "number"),
    "o2c_days_past_due": ("Days past due (O2C Hub)", "number", "number"),
    "o2c_dunning_stage": ("Dunning stage (O2C Hub)", "string", "text"),
}


@dataclass
class DunningPass:
    merchant_id: int
    as_of: date
    acted: list[tuple[str, str]] = field(default_factory=list)        # (doc number or invoice id, stage)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (invoice, stage, why)
    contacts_written: int = 0
    calls: dict[str, int] = field(default_factory=lambda: {"quickbooks": 0, "hubspot": 0})
    note: str | None = None


def run_dunning(hub: Hub, merchant_id: int | None = None, as_of: date | None = None) -> list[DunningPass]:
    """A pass for the merchant (or every merchant with QuickBooks and a dunning policy)."""
    with hub.session() as s:
        q = select(Connection.merchant_id).where(Connection.platform == "quickbooks", Connection.status == "active")
        if merchant_id is not None:
            q = q.where(Connection.merchant_id == merchant_id)
        merchants = sorted(set(s.scalars(q)))
    if merchant_id is not None and merchant_id not in merchants:
        return [DunningPass(merchant_id, as_of or today(), note="no active QuickBooks connection")]
    return [dunning_pass(hub, m, as_of) for m in merchants]


def run_daily_dunning(hub: Hub) -> None:
    """Beside the catch-up: a pass per merchant once a day (one worker at a time)."""
    holder = locks.holder_id() + ":dunning"
    if not locks.try_acquire(hub.sessions, "dunning", holder, ttl=600):
        return
    try:
        with hub.session() as s:
            merchants = sorted(set(s.scalars(select(Connection.merchant_id).where(
                Connection.platform == "quickbooks", Connection.status == "active"))))
        for merchant_id in merchants:
            ledger = Ledger(hub.sessions, merchant_id)
            last = ledger.find(Source("hub", "dunning", "daily"), "hub", "dunning_pass")
            if last is not None and utcnow() - last.updated_at < DAILY:
                continue
            try:
                dunning_pass(hub, merchant_id)
                receivables(hub, merchant_id, check=False)     # the day's figures kept: the DSO trend
            except Exception as exc:  # noqa: BLE001 - a platform away: the next pass tries again
                log.warning("dunning of merchant %s failed: %s", merchant_id, exc)
                continue
            ledger.bind(Source("hub", "dunning", "daily"), "hub", "dunning_pass", today().isoformat())
    finally:
        locks.release(hub.sessions, "dunning", holder)


def dunning_pass(hub: Hub, merchant_id: int, as_of: date | None = None) -> DunningPass:
    as_of = as_of or today()
    result = DunningPass(merchant_id, as_of)
    with hub.session() as s:
        policy = rules_for(s, merchant_id).receivables
    if not policy.dunning:
        result.note = "no dunning stages in the mapping rules (receivables.dunning)"
        return result
    accounts = Accounts(hub, merchant_id)
    qb = accounts.quickbooks()
    rows = qb.open_invoices()
    result.calls["quickbooks"] += 1
    invoices = open_invoices(hub, merchant_id, rows, as_of, home_currency(hub, merchant_id, qb))
    done = _finished(hub, merchant_id)
    hs = None
    for inv in invoices:
        if inv.order is None:              # not a store order's invoice: the merchant's own, left to them
            continue
        new = [st for st in policy.stages_reached(inv.days_overdue) if (inv.invoice_id, st.stage) not in done]
        for i, stage in enumerate(new):
            claim = _claim(hub, merchant_id, inv, stage)
            if claim is None:
                continue                       # another worker has it (or had it)
            if i < len(new) - 1:               # reached together with a later stage: only the latest acts
                _record(hub, inv, stage, claim, {"skipped": f"reached together with {new[-1].stage}"}, None, result)
                continue
            if hs is None and {"task", "properties"} & set(stage.actions):
                hs = accounts.hubspot()
            _act(hub, qb, hs, inv, stage, claim, result)
    if any("properties" in s.actions for s in policy.dunning):
        hs = hs or accounts.hubspot()
        if hs is not None:
            _write_properties(hub, merchant_id, hs, invoices, policy.stages_reached, result)
    return result


def _finished(hub: Hub, merchant_id: int) -> set[tuple[str, str]]:
    with hub.session() as s:
        return {(i, st) for i, st in s.execute(select(DunningAction.invoice_id, DunningAction.stage).where(
            DunningAction.merchant_id == merchant_id, DunningAction.status == "done"))}


def _claim(hub: Hub, merchant_id: int, inv: OpenInvoice, stage: DunningStage) -> int | None:
    """The id of the (invoice, stage) row this worker now holds, or None when someone else holds or did it."""
    holder = locks.holder_id()
    with hub.session() as s:
        row = DunningAction(merchant_id=merchant_id, invoice_id=inv.invoice_id, stage=stage.stage,
                            store_order_id=inv.order.id if inv.order else None, doc_number=inv.doc_number,
                            status="claimed", holder=holder, attempts=1, done={})
        s.add(row)
        try:
            s.commit()
            return row.id
        except IntegrityError:
            s.rollback()
        stale = utcnow() - CLAIM_LEASE
        taken = s.execute(update(DunningAction).where(
            DunningAction.merchant_id == merchant_id, DunningAction.invoice_id == inv.invoice_id,
            DunningAction.stage == stage.stage,
            (DunningAction.status == "failed") | ((DunningAction.status == "claimed")
                                                  & (DunningAction.claimed_at < stale)))
            .values(status="claimed", holder=holder, claimed_at=utcnow(), attempts=DunningAction.attempts + 1))
        s.commit()
        if taken.rowcount != 1:
            return None
        return s.scalar(select(DunningAction.id).where(DunningAction.merchant_id == merchant_id,
                                                       DunningAction.invoice_id == inv.invoice_id,
                                                       DunningAction.stage == stage.stage))


def _act(hub: Hub, qb: Any, hs: Any, inv: OpenInvoice, stage: DunningStage, claim: int, result: DunningPass) -> None:
    label = inv.doc_number or inv.invoice_id
    with hub.session() as s:           # what an earlier, failed attempt of this stage already did
        row = s.get(DunningAction, claim)
        done: dict[str, Any] = {k: v for k, v in ((row.done if row else None) or {}).items() if k != "skipped"}
    error: str | None = None
    try:
        if "task" in stage.actions and "task" not in done:
            contact = inv.order.contact_id if inv.order else None
            if hs is None or not contact:
                done["task"] = "skipped: no HubSpot contact for this invoice"
            else:
                owner = hs.contact_owner(contact)
                due = datetime.combine(result.as_of, time(17, 0), UTC)
                done["task"] = hs.create_task(
                    contact, subject=f"Collect invoice {label}: {inv.balance} overdue {max(inv.days_overdue, 0)} days",
                    body=f"Invoice {label} for order {inv.order.name if inv.order else '?'}, {inv.balance} open, "
                         f"due {inv.due_date.isoformat()} (dunning stage {stage.stage}).",
                    due=due, owner_id=owner, priority="HIGH" if inv.days_overdue > 30 else "MEDIUM")
                result.calls["hubspot"] += 2
        if "send_invoice" in stage.actions and "send_invoice" not in done:
            sent = qb.send_invoice(inv.invoice_id, request_id=qbmap.request_id(
                str(result.merchant_id), "dunning", inv.invoice_id, stage.stage))
            result.calls["quickbooks"] += 1
            done["send_invoice"] = f"e-mailed to {(sent.get('BillEmail') or {}).get('Address') or 'the customer'}"
        if "properties" in stage.actions:
            contact = inv.order.contact_id if inv.order else None
            done["properties"] = (f"kept in step on HubSpot contact {contact}" if hs is not None and contact
                                  else "skipped: no HubSpot contact for this invoice")
    except Exception as exc:  # noqa: BLE001 - recorded on the stage's row; the next pass claims it again
        error = str(exc)[:500]
    _record(hub, inv, stage, claim, done, error, result)


def _record(hub: Hub, inv: OpenInvoice, stage: DunningStage, claim: int, done: dict[str, Any], error: str | None,
            result: DunningPass) -> None:
    """The stage's row finished (done or failed) and the audit entry on the order, in one transaction."""
    label = inv.doc_number or inv.invoice_id
    with hub.session() as s:
        row = s.get(DunningAction, claim)
        if row is not None:
            row.status, row.done, row.error, row.finished_at = ("failed" if error else "done"), done, error, utcnow()
        audit.record(s, ACTOR, f"dunning.{stage.stage}", target_type="store_order",
                     target_id=inv.order.id if inv.order else None, merchant_id=result.merchant_id,
                     detail={"invoice_id": inv.invoice_id, "doc_number": inv.doc_number, "stage": stage.stage,
                             "days_past_due": inv.days_overdue, "balance": str(inv.balance), "done": done,
                             **({"error": error} if error else {})})
        s.commit()
    if error:
        result.failed.append((label, stage.stage, error))
    elif "skipped" not in done:
        result.acted.append((label, stage.stage))


def after_payment(hub: Hub, merchant_id: int, invoice_ids: list[str]) -> int:
    """A payment recorded in QuickBooks paid these invoices: their contacts' o2c_ properties are brought up to
    date at once (cleared when nothing of theirs is overdue any more) instead of at the next daily pass.
    Returns the contacts written (1 QuickBooks query + 1 HubSpot batch update when any changed)."""
    from hub.order_models import StoreOrder

    with hub.session() as s:
        contacts = {c for c in s.scalars(select(StoreOrder.contact_id).where(
            StoreOrder.merchant_id == merchant_id, StoreOrder.invoice_id.in_(invoice_ids))) if c}
        policy = rules_for(s, merchant_id).receivables
    chased = {b.source_id for b in _property_bindings(hub, merchant_id)}
    contacts &= chased
    if not contacts or not any("properties" in st.actions for st in policy.dunning):
        return 0
    accounts = Accounts(hub, merchant_id)
    hs = accounts.hubspot()
    if hs is None:
        return 0
    qb = accounts.quickbooks()
    result = DunningPass(merchant_id, today())
    invoices = open_invoices(hub, merchant_id, qb.open_invoices(), result.as_of, home_currency(hub, merchant_id, qb))
    _write_properties(hub, merchant_id, hs, invoices, policy.stages_reached, result, only=contacts)
    return result.contacts_written


def _write_properties(hub: Hub, merchant_id: int, hs: Any, invoices: list[OpenInvoice], reached: Any,
                      result: DunningPass, *, only: set[str] | None = None) -> None:
    """The four o2c_ properties of every chased contact (and cleared for contacts no longer chased),
    written only where they changed since the last pass (``only``: these contacts alone)."""
    ledger = Ledger(hub.sessions, merchant_id)
    figures: dict[str, dict[str, Any]] = {}
    for inv in invoices:
        contact = inv.order.contact_id if inv.order else None
        if not contact:
            continue
        f = figures.setdefault(contact, {"ar": Decimal(0), "overdue": Decimal(0), "days": 0, "stage": None,
                                         "stage_days": None, "chased": False})
        f["ar"] += inv.balance
        if inv.days_overdue > 0:
            f["overdue"] += inv.balance
            f["days"] = max(f["days"], inv.days_overdue)
        stages = [s for s in reached(inv.days_overdue) if "properties" in s.actions]
        if stages:
            f["chased"] = True
            if f["stage_days"] is None or stages[-1].days > f["stage_days"]:
                f["stage"], f["stage_days"] = stages[-1].stage, stages[-1].days
    wanted = {c: {"o2c_ar_balance": str(f["ar"]), "o2c_overdue_balance": str(f["overdue"]),
                  "o2c_days_past_due": str(f["days"]), "o2c_dunning_stage": f["stage"] or ""}
              for c, f in figures.items() if f["chased"]}
    written = {b.source_id: b for b in _property_bindings(hub, merchant_id)}
    cleared = dict.fromkeys(PROPERTIES, "")
    for contact, b in written.items():
        if contact not in wanted and (b.data or {}).get("values") not in (None, cleared):
            wanted[contact] = cleared                   # paid (or written off): the chase stops
    changes = {c: v for c, v in wanted.items() if c not in written or (written[c].data or {}).get("values") != v}
    if only is not None:
        changes = {c: v for c, v in changes.items() if c in only}
    if not changes:
        return
    _ensure_properties(ledger, hs, result)
    hs.update_contacts(changes)
    result.calls["hubspot"] += (len(changes) + 99) // 100
    result.contacts_written += len(changes)
    for contact, values in changes.items():
        ledger.bind(Source("hub", "ar_contact", contact), "hubspot", "ar_properties", contact, data={"values": values})


def _property_bindings(hub: Hub, merchant_id: int) -> list[Any]:
    from hub.models import Binding

    with hub.session() as s:
        rows = list(s.scalars(select(Binding).where(Binding.merchant_id == merchant_id,
                                                    Binding.source_platform == "hub",
                                                    Binding.source_type == "ar_contact")))
        s.expunge_all()
    return rows


def _ensure_properties(ledger: Ledger, hs: Any, result: DunningPass) -> None:
    """The o2c_ contact properties exist in HubSpot: checked once (then remembered), created when missing."""
    for name, (label, type_, field_type) in PROPERTIES.items():
        source = Source("hub", "hubspot_property", name)
        if ledger.target_id(source, "hubspot", "property"):
            continue
        result.calls["hubspot"] += 1
        if not hs.contact_property_exists(name):
            hs.create_contact_property(name, label, type_, field_type,
                                       description="Written by O2C Hub from QuickBooks' open invoices")
            result.calls["hubspot"] += 1
        ledger.bind(source, "hubspot", "property", name)
