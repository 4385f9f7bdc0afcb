"""Batch steps that write documents: invoices and payments through the QuickBooks batch endpoint, then
what only the single-order pipeline does (refunds). See ``sync.batch`` for the idempotency rules."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors import jsonmoney
from connectors.errors import Permanent
from connectors.quickbooks import Fault, amount
from mappings import quickbooks as qbmap
from mappings.targets import deposit_account_for, required_tax_codes
from sync.batch_context import names_order
from sync.batch_ops import NewBinding, Op, bind_many, bound, fault_error

if TYPE_CHECKING:
    from sync.batch import Entry
    from sync.batch_context import BatchContext

QB = "quickbooks"
DUPLICATE_DOC_NUMBER = "6140"


def _inputs(ctx: BatchContext, e: Entry) -> dict[str, Any]:
    """What ``invoice_payload`` needs besides the order and the rules (as ``OrderPipeline.invoice_inputs``)."""
    assert e.order is not None
    ids = e.item_ids
    special = {"shipping", "tip", "fee"}
    return {"customer_id": e.customer_id, "item_ids": {k: v for k, v in ids.items() if k not in special},
            "shipping_item_id": ids.get("shipping"), "tip_item_id": ids.get("tip"), "fee_item_id": ids.get("fee"),
            "tax_code_ids": ctx.refs.tax_codes(required_tax_codes(e.order, ctx.rules)) or None,
            "home_currency": ctx.home_currency}


def _summary(invoice: dict[str, Any], fingerprint: str | None, e: Entry) -> dict[str, Any]:
    assert e.order is not None
    return {"doc_number": invoice.get("DocNumber"), "total": str(amount(invoice.get("TotalAmt"))),
            "balance": str(amount(invoice.get("Balance"))), "fingerprint": fingerprint,
            "order_updated_at": e.order.updated_at.isoformat()}


def invoices(ctx: BatchContext) -> None:
    live = ctx.live()
    ctx.begin(live, "invoice")
    existing = bound(ctx.hub.sessions, ctx.merchant_id, [ctx.order_source(e) for e in live], QB, "invoice")
    fresh: list[Entry] = []

    def prepare(e: Entry) -> None:
        assert e.order is not None
        payload = qbmap.invoice_payload(e.order, rules=ctx.rules, **_inputs(ctx, e))
        qbmap.check_invoice_total(e.order, payload)
        fingerprint = hashlib.sha256(jsonmoney.dumps(payload).encode()).hexdigest()[:20]
        binding = existing.get(ctx.order_source(e))
        if binding is None:
            e.state.update(payload=payload, fingerprint=fingerprint)
            fresh.append(e)
            return
        data = binding.data or {}
        synced = data.get("order_updated_at")
        if data.get("fingerprint") == fingerprint or (synced and e.order.updated_at.isoformat() < synced):
            e.invoice = {"Id": binding.target_id, "TotalAmt": data.get("total"), "Balance": data.get("balance"),
                         "DocNumber": data.get("doc_number")}
            e.rec.record("invoice", "unchanged", target_platform=QB, target_type="invoice",
                         target_id=binding.target_id,
                         message=None if data.get("fingerprint") == fingerprint else "event older than what was synced")
            return
        e.invoice = ctx.pipeline(e).invoice(e.customer_id, e.item_ids)  # the order changed: update, one by one

    ctx.each(live, prepare)
    fresh = [e for e in fresh if e.live]
    if not fresh:
        return
    try:
        _look_up_invoices(ctx, fresh)
    except Exception as exc:  # noqa: BLE001 - without the look-up nothing may be created: these retry
        ctx.fail_all(fresh, exc)
        return
    todo = [e for e in fresh if e.live and e.invoice is None]
    ops = [Op(str(i), e.state["payload"], ctx.rid(e.order.platform, e.order.source_id, "invoice"))
           for i, e in enumerate(todo)]
    answers = ctx.ops.create_many("Invoice", ops) if ops else {}
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
    bind_many(ctx.hub.sessions, ctx.merchant_id, rows)
    for e in fresh:
        if not e.live or e.invoice is None:
            continue
        inv = e.invoice
        e.rec.record("invoice", e.state.get("invoice_outcome", "found"), target_platform=QB, target_type="invoice",
                     target_id=inv["Id"],
                     message=f"DocNumber {inv.get('DocNumber')}, total {amount(inv.get('TotalAmt'))}")
        if amount(inv.get("TotalAmt")) != e.order.total:
            e.fail(Permanent(f"QuickBooks computed invoice {inv['Id']} total {amount(inv.get('TotalAmt'))} "
                             f"but the order total is {e.order.total} {e.order.currency}", platform=QB,
                             code="total_mismatch"))


def _look_up_invoices(ctx: BatchContext, fresh: list[Entry]) -> None:
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
        mine = next((r for r in same if names_order(r.get("PrivateNote"), e.order.source_id)), None)
        if mine is not None:
            e.invoice = mine
        elif same:
            e.fail(_collision(doc, same[0]))


def _collision(doc: str, other: dict[str, Any]) -> Permanent:
    return Permanent(f"QuickBooks already has an invoice numbered {doc} (Id {other['Id']}) for another order; "
                     "set an invoice number prefix in the mapping rules", platform=QB, code=DUPLICATE_DOC_NUMBER)


def _claim_duplicate(ctx: BatchContext, e: Entry) -> None:
    doc = e.state["payload"]["DocNumber"]
    found = ctx.qb.find_one("Invoice", "DocNumber", doc)
    if found is None:
        raise Permanent(f"QuickBooks refused the invoice of order {e.order.name}: duplicate DocNumber {doc}",
                        platform=QB, code=DUPLICATE_DOC_NUMBER)
    if not names_order(found.get("PrivateNote"), e.order.source_id):
        raise _collision(doc, found)
    e.invoice = found


def payments(ctx: BatchContext) -> None:
    """Paid orders get a payment on their invoice. An invoice not created in this pass is read first (one
    ``Id IN`` query): a payment already linked to it whose note names the order is taken as its own, and an
    invoice QuickBooks shows as paid is not paid again."""
    live = [e for e in ctx.live() if e.invoice is not None]
    ctx.begin(live, "payment")
    paid_ones = bound(ctx.hub.sessions, ctx.merchant_id, [ctx.order_source(e) for e in live], QB, "payment")
    due: list[Entry] = []
    for e in live:
        assert e.order is not None
        if not e.order.is_paid:
            e.rec.record("payment", "skipped", message=f"order is {e.order.financial_status}")
        elif (b := paid_ones.get(ctx.order_source(e))) is not None:
            e.rec.record("payment", "found", target_platform=QB, target_type="payment", target_id=b.target_id,
                         message="bound earlier")
        elif e.order.total <= Decimal("0"):
            e.rec.record("payment", "skipped", message="nothing to pay on a zero-total order")
        else:
            e.state["pay"] = e.order.total
            due.append(e)
    check = [e for e in due if not e.invoice.get("_created")]
    if check:
        try:
            _check_paid(ctx, check)
        except Exception as exc:  # noqa: BLE001 - cannot tell whether it is paid: do not pay, retry
            ctx.fail_all(check, exc)
    todo = [e for e in due if e.live and "payment" not in e.state and not e.state.get("skip_pay")]
    ops = []
    for e in todo:
        def build(e: Entry) -> None:
            payload = qbmap.payment_payload(
                e.order, customer_id=e.customer_id, invoice_id=e.invoice["Id"], amount=e.state["pay"],
                rules=ctx.rules, deposit_account_id=ctx.refs.account(deposit_account_for(e.order, ctx.rules)),
                home_currency=ctx.home_currency)
            ops.append((e, Op(str(len(ops)), payload, ctx.rid(e.order.platform, e.order.source_id, "payment"))))
        ctx.each([e], build)
    answers = ctx.ops.create_many("Payment", [op for _, op in ops]) if ops else {}
    for e, op in ops:
        answer = answers[op.key]
        if isinstance(answer, dict):
            e.state["payment"], e.state["payment_outcome"] = answer, "created"
        else:
            e.fail(fault_error(answer, f"the payment of order {e.order.name}") if isinstance(answer, Fault)
                   else answer)
    done = [e for e in due if e.live and e.state.get("payment")]
    bind_many(ctx.hub.sessions, ctx.merchant_id, [
        NewBinding(ctx.order_source(e), QB, "payment", e.state["payment"]["Id"],
                   {"amount": str(amount(e.state["payment"].get("TotalAmt"))), "invoice_id": e.invoice["Id"]},
                   e.run.id) for e in done])
    for e in done:
        p = e.state["payment"]
        e.rec.record("payment", e.state.get("payment_outcome", "found"), target_platform=QB, target_type="payment",
                     target_id=p["Id"], message=f"amount {amount(p.get('TotalAmt'))}")


def _check_paid(ctx: BatchContext, check: list[Entry]) -> None:
    current = {str(r["Id"]): r for r in ctx.ops.find_in("Invoice", "Id", [e.invoice["Id"] for e in check])}
    linked: dict[str, list[str]] = {}
    for e in check:
        inv = current.get(str(e.invoice["Id"]))
        if inv is None:
            e.fail(Permanent(f"QuickBooks invoice {e.invoice['Id']} of order {e.order.name} no longer exists",
                             platform=QB, code="610"))
            continue
        e.state["invoice_now"] = inv
        linked[e.invoice["Id"]] = [str(t.get("TxnId")) for t in inv.get("LinkedTxn") or []
                                   if t.get("TxnType") == "Payment"]
    payment_ids = [p for ids in linked.values() for p in ids]
    payments_ = {str(p["Id"]): p for p in ctx.ops.find_in("Payment", "Id", payment_ids)} if payment_ids else {}
    for e in check:
        if not e.live:
            continue
        mine = next((payments_[p] for p in linked.get(e.invoice["Id"], []) if p in payments_
                     and names_order(payments_[p].get("PrivateNote"), e.order.source_id)), None)
        if mine is not None:
            e.state["payment"] = mine
            continue
        balance = amount(e.state["invoice_now"].get("Balance"))
        if balance <= 0:
            e.state["skip_pay"] = True
            e.rec.record("payment", "skipped", target_platform=QB, target_type="invoice", target_id=e.invoice["Id"],
                         message="the invoice is already paid in QuickBooks")
            continue
        e.state["pay"] = min(e.state["pay"], balance)


def leftovers(ctx: BatchContext) -> None:
    """Refunds: each refund once, by the single-order pipeline (a credit memo or a refund receipt)."""
    for e in ctx.live():
        if e.order is not None and e.order.refunds and e.invoice is not None:
            ctx.each([e], lambda e: ctx.pipeline(e).refunds(e.customer_id, e.invoice, e.item_ids))
