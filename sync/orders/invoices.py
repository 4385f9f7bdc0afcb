"""The invoice steps: an invoice per order, created through the QuickBooks batch endpoint (30 a request),
updated one by one when the order changed, voided when the order was cancelled unpaid.

**Stale and unchanged.** The invoice binding keeps the fingerprint of the payload last sent and the
order's ``updated_at`` then: the same payload, or an event older than what was synced, sends nothing.

**Idempotency without ``requestid``.** Before the invoices are sent, the hub notes that it asks for them
(``create_attempts``, committed first). An order without an invoice binding but with such a note may have
an invoice the hub does not know of (a batch whose answer was lost, a worker killed before the binding was
written): those orders are looked up by ``DocNumber`` first (one ``DocNumber IN (…)`` query per 100 orders)
and an invoice whose ``PrivateNote`` names the order id is taken as its own; another order's invoice with
the same number fails the order (a DocNumber collision: set a prefix). An order never asked for before
costs no look-up: should its number be taken, QuickBooks refuses the duplicate ``DocNumber`` and the same
check runs then (``_claim_duplicate``)."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from connectors import jsonmoney
from connectors.errors import Permanent
from connectors.quickbooks import DUPLICATE_DOC_NUMBER, STALE_SYNC_TOKEN, Fault, amount
from mappings import quickbooks as qbmap
from mappings.model import store_label
from mappings.targets import required_tax_codes
from sync.jobs import Outcome
from sync.orders.bindings import NewBinding
from sync.orders.context import names_order
from sync.orders.qb_batch import Op, fault_error
from sync.orders.terms import with_invoice_terms

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

log = logging.getLogger("o2c.invoices")
QB = "quickbooks"
SHIPPING_FIELDS = ("ShipDate", "TrackingNum", "ShipMethodRef")
STALE_RETRIES = 3


def _inputs(ctx: OrderContext, e: Entry) -> dict[str, Any]:
    """What ``invoice_payload`` needs besides the order and the rules, resolved to QuickBooks ids."""
    assert e.order is not None
    ids = e.item_ids
    special = {"shipping", "tip", "fee"}
    return {"customer_id": e.customer_id, "item_ids": {k: v for k, v in ids.items() if k not in special},
            "shipping_item_id": ids.get("shipping"), "tip_item_id": ids.get("tip"), "fee_item_id": ids.get("fee"),
            "tax_code_ids": ctx.refs.tax_codes(required_tax_codes(e.order, ctx.rules)) or None,
            "home_currency": ctx.home_currency, "exchange_rate": e.state.get("exchange_rate"),
            "shipping_fields": bool(e.order.shipments) and ctx.refs.allow_shipping()}


def _summary(invoice: dict[str, Any], fingerprint: str | None, e: Entry) -> dict[str, Any]:
    assert e.order is not None
    return {"doc_number": invoice.get("DocNumber"), "total": str(amount(invoice.get("TotalAmt"))),
            "balance": str(amount(invoice.get("Balance"))), "fingerprint": fingerprint,
            "ship_fingerprint": e.state.get("ship_fingerprint"), "order_updated_at": e.order.updated_at.isoformat(),
            **e.state.get("terms", {})}


def _fingerprints(payload: dict[str, Any]) -> tuple[str, str | None]:
    """(the invoice without its shipping fields, the shipping fields or None): a shipment alone changes only
    the second, and is sent by a sparse update of those fields."""
    def digest(value: Any) -> str:
        return hashlib.sha256(jsonmoney.dumps(value).encode()).hexdigest()[:20]

    core = {k: v for k, v in payload.items() if k not in SHIPPING_FIELDS}
    ship = {k: payload[k] for k in SHIPPING_FIELDS if k in payload}
    return digest(core), (digest(ship) if ship else None)


def _fresh_update(ctx: OrderContext, invoice_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` written over the invoice with its current ``SyncToken``; someone else's edit in between (a
    stale token) is read again and the write retried, never forced."""
    for attempt in range(STALE_RETRIES):
        current = ctx.qb.get("Invoice", invoice_id)
        try:
            return ctx.qb.update("Invoice", {**body, "Id": invoice_id, "SyncToken": current["SyncToken"]})
        except Permanent as exc:
            if str(exc.code) != STALE_SYNC_TOKEN or attempt == STALE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _ship(ctx: OrderContext, e: Entry, invoice_id: str, payload: dict[str, Any], data: dict[str, Any]) -> None:
    assert e.order is not None
    ship = {k: payload[k] for k in SHIPPING_FIELDS if k in payload}
    if not ship:   # every shipment was cancelled: QuickBooks keeps what it shows, the step says so
        e.invoice = {"Id": invoice_id, "TotalAmt": data.get("total"), "Balance": data.get("balance"),
                     "DocNumber": data.get("doc_number")}
        e.rec.record("invoice", "unchanged", target_platform=QB, target_type="invoice", target_id=invoice_id,
                     message="the order's shipments were cancelled; the invoice's shipping fields are kept")
        ctx.ledger.bind_many([NewBinding(ctx.order_source(e), QB, "invoice", invoice_id,
                                         {**data, "ship_fingerprint": None}, e.run.id)])
        return
    e.invoice = _fresh_update(ctx, invoice_id, {**ship, "sparse": True})
    ctx.ledger.bind_many([NewBinding(ctx.order_source(e), QB, "invoice", e.invoice["Id"],
                                     _summary(e.invoice, e.state["fingerprint"], e), e.run.id)])
    e.rec.record("invoice", "shipped", target_platform=QB, target_type="invoice", target_id=invoice_id,
                 message=", ".join(f"{k} {v['value'] if isinstance(v, dict) else v}" for k, v in ship.items()))
    if amount(e.invoice.get("TotalAmt")) != e.order.total:
        _recorded(e, "shipped")


def invoices(ctx: OrderContext) -> None:
    live = ctx.live()
    ctx.begin(live, "invoice")
    existing = ctx.ledger.bound([ctx.order_source(e) for e in live], QB, "invoice")
    fresh: list[Entry] = []

    def prepare(e: Entry) -> None:
        assert e.order is not None
        e.state["invoice_inputs"] = inputs = _inputs(ctx, e)
        payload = qbmap.invoice_payload(e.order, rules=ctx.rules, **inputs)
        payload = with_invoice_terms(ctx, e, payload, existing.get(ctx.order_source(e)))   # net terms, due date
        qbmap.check_invoice_total(e.order, payload)
        fingerprint, ship_fingerprint = _fingerprints(payload)
        e.state.update(fingerprint=fingerprint, ship_fingerprint=ship_fingerprint)
        binding = existing.get(ctx.order_source(e))
        if binding is None:
            e.state.update(payload=payload)
            fresh.append(e)
            return
        data = binding.data or {}
        synced = data.get("order_updated_at")
        same = data.get("fingerprint") == fingerprint
        if (same and data.get("ship_fingerprint") == ship_fingerprint) or (
                synced and e.order.updated_at.isoformat() < synced):
            e.invoice = {"Id": binding.target_id, "TotalAmt": data.get("total"), "Balance": data.get("balance"),
                         "DocNumber": data.get("doc_number")}
            e.rec.record("invoice", "unchanged", target_platform=QB, target_type="invoice",
                         target_id=binding.target_id,
                         message=None if same else "event older than what was synced")
            return
        if same:   # only the shipment changed: its fields alone, by a sparse update
            _ship(ctx, e, binding.target_id, payload, data)
            return
        _update(ctx, e, binding.target_id, payload, fingerprint)  # the order changed: update, one by one

    ctx.each(live, prepare)
    fresh = [e for e in fresh if e.live]
    if not fresh:
        return
    asked = ctx.ledger.attempted([ctx.order_source(e) for e in fresh], QB, "invoice")
    maybe_there = [e for e in fresh if ctx.order_source(e) in asked]   # a note: perhaps sent before
    try:
        if maybe_there:
            _look_up_invoices(ctx, maybe_there)
        todo = [e for e in fresh if e.live and e.invoice is None]
        ctx.ledger.note_attempts({ctx.order_source(e): e.run.id for e in todo}, QB, "invoice", known=asked)
    except Exception as exc:  # noqa: BLE001 - without the look-up (or the note) nothing may be sent: these retry
        ctx.fail_all(fresh, exc)
        return
    ops = [Op(str(i), e.state["payload"], _request_id(ctx, e, asked.get(ctx.order_source(e), 0)))
           for i, e in enumerate(todo)]
    answers = ctx.ops.create_many("Invoice", ops) if ops else {}
    refused = [ctx.order_source(e) for op, e in zip(ops, todo, strict=True) if isinstance(answers[op.key], Fault)]
    try:
        ctx.ledger.note_refusals(refused, QB, "invoice")
    except Exception:  # noqa: BLE001 - the next try then asks with the same id again and gets the same refusal
        log.warning("could not note %d refused invoices", len(refused), exc_info=True)
    for op, e in zip(ops, todo, strict=True):
        answer = answers[op.key]
        if isinstance(answer, dict):
            e.invoice = {**answer, "_created": True}
            e.state["invoice_outcome"] = "created"
        elif isinstance(answer, Fault) and (answer.code == DUPLICATE_DOC_NUMBER
                                            or "duplicate document" in answer.message.lower()):
            ctx.each([e], lambda e: _claim_duplicate(ctx, e))
        else:
            e.fail(fault_error(answer, f"the invoice of order {e.order.name}") if isinstance(answer, Fault)
                   else answer)
    rows = [NewBinding(ctx.order_source(e), QB, "invoice", e.invoice["Id"],
                       _summary(e.invoice, e.state["fingerprint"], e), e.run.id)
            for e in fresh if e.live and e.invoice is not None]
    ctx.ledger.bind_many(rows)
    for e in fresh:
        if e.live and e.invoice is not None:
            _recorded(e, e.state.get("invoice_outcome", "found"))


def _request_id(ctx: OrderContext, e: Entry, refusals: int) -> str:
    """The order's invoice ``requestid``: a new one after each refusal (QuickBooks answers a ``requestid`` it
    refused with the same refusal, whatever was fixed since)."""
    return ctx.order_rid(e, "invoice", *([f"after-{refusals}-refusals"] if refusals else []))


def _recorded(e: Entry, outcome: str) -> None:
    """The invoice step's record, and the check that QuickBooks computed the order's total."""
    assert e.order is not None and e.invoice is not None
    inv = e.invoice
    e.rec.record("invoice", outcome, target_platform=QB, target_type="invoice", target_id=inv["Id"],
                 message=f"DocNumber {inv.get('DocNumber')}, total {amount(inv.get('TotalAmt'))}")
    if amount(inv.get("TotalAmt")) != e.order.total:
        e.fail(Permanent(f"QuickBooks computed invoice {inv['Id']} total {amount(inv.get('TotalAmt'))} "
                         f"but the order total is {e.order.total} {e.order.currency}", platform=QB,
                         code="total_mismatch"))


def _update(ctx: OrderContext, e: Entry, invoice_id: str, payload: dict[str, Any], fingerprint: str) -> None:
    """The order changed since its invoice was sent: the invoice rewritten (QuickBooks has no batch update
    worth its limits for this: one by one)."""
    e.invoice = _fresh_update(ctx, invoice_id, {**payload, "sparse": False})
    ctx.ledger.bind_many([NewBinding(ctx.order_source(e), QB, "invoice", e.invoice["Id"],
                                     _summary(e.invoice, fingerprint, e), e.run.id)])
    _recorded(e, "updated")


def _look_up_invoices(ctx: OrderContext, fresh: list[Entry]) -> None:
    """Invoices already in QuickBooks for these orders (a batch whose answer was lost, a crash before the
    binding): found by DocNumber and taken when their note names the order; another order's invoice with
    the same number fails the order with the reason."""
    refused: dict[str, Exception] = {}
    rows = ctx.ops.find_in("Invoice", "DocNumber", [e.state["payload"]["DocNumber"] for e in fresh], refused=refused)
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_doc.setdefault(str(row.get("DocNumber")), []).append(row)
    for e in fresh:
        doc = e.state["payload"]["DocNumber"]
        if doc in refused:  # the look-up of this number alone was refused: nothing may be created for it
            e.fail(refused[doc])
            continue
        same = by_doc.get(doc) or []
        mine = next((r for r in same if names_order(r.get("PrivateNote"), e.order.source_id, e.order.store)), None)
        if mine is not None:
            e.invoice = mine
        elif same:
            e.fail(_collision(doc, same[0], e))


def _collision(doc: str, other: dict[str, Any], e: Entry) -> Permanent:
    assert e.order is not None
    fix = "set an invoice number prefix in the mapping rules"
    if e.order.store:   # the store numbers its own orders: another store of the merchant may have this number
        fix = (f"give this store its own invoice number prefix (mapping rules: invoice.store_prefixes, "
               f"\"{store_label(e.order.store)}\")")
    return Permanent(f"QuickBooks already has an invoice numbered {doc} (Id {other['Id']}) for another order; "
                     f"{fix}", platform=QB, code=DUPLICATE_DOC_NUMBER)


def _claim_duplicate(ctx: OrderContext, e: Entry) -> None:
    doc = e.state["payload"]["DocNumber"]
    found = ctx.qb.find_one("Invoice", "DocNumber", doc)
    if found is None:
        raise Permanent(f"QuickBooks refused the invoice of order {e.order.name}: duplicate DocNumber {doc}",
                        platform=QB, code=DUPLICATE_DOC_NUMBER)
    if not names_order(found.get("PrivateNote"), e.order.source_id, e.order.store):
        raise _collision(doc, found, e)
    e.invoice = found




def voids(ctx: OrderContext) -> None:
    """A cancelled, unpaid order: its invoice voided (once; a voided invoice stays voided), or the order
    skipped when it was never invoiced. One call each: QuickBooks voids one document at a time."""
    cancelled = [e for e in ctx.live() if e.order.cancelled_at and not e.order.is_paid]
    if not cancelled:
        return
    ctx.begin(cancelled, "void")
    existing = ctx.ledger.bound([ctx.order_source(e) for e in cancelled], QB, "invoice")
    ctx.each(cancelled, lambda e: _void(ctx, e, existing.get(ctx.order_source(e))))


def _void(ctx: OrderContext, e: Entry, binding: Any) -> None:
    assert e.order is not None
    if binding is None:
        raise Outcome("skipped", f"order {e.order.name} was cancelled before it was invoiced")
    invoice_id = binding.target_id
    current = ctx.qb.get("Invoice", invoice_id)
    total, balance = amount(current.get("TotalAmt")), amount(current.get("Balance"))
    if total == 0 and str(current.get("PrivateNote") or "").startswith("Voided"):
        e.rec.record("void", "unchanged", target_platform=QB, target_type="invoice", target_id=invoice_id,
                     message="already voided")
    else:
        if balance < total:
            raise Permanent(f"order {e.order.name} was cancelled but QuickBooks invoice {invoice_id} already has "
                            f"{total - balance} paid against it: refund or unapply the payment first, then re-run",
                            platform=QB, code="paid_invoice")
        ctx.qb.void("Invoice", invoice_id, current["SyncToken"])
        ctx.ledger.bind_many([NewBinding(ctx.order_source(e), QB, "invoice", invoice_id,
                                         {"voided": True, "balance": "0", "fingerprint": None}, e.run.id)])
        e.rec.record("void", "voided", target_platform=QB, target_type="invoice", target_id=invoice_id,
                     message=f"order {e.order.name} was cancelled; invoice {current.get('DocNumber')} voided")
    e.outcome = Outcome("succeeded", "voided")
