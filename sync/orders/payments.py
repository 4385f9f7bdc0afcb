"""The payment step: each capture of an order (``mappings.targets.captures``: a Shopify SALE or CAPTURE, a
WooCommerce payment, or the whole order when the store marks it paid without one) becomes its own QuickBooks
payment applied to the invoice, created through the batch endpoint and bound per capture, so a later capture
adds its payment and a retry adds none. A capture the store voided has its payment voided.

Skip rules live here: an order with no capture yet (pending, authorized), a capture bound earlier, a zero
total, an invoice QuickBooks already shows as paid. An invoice not created in this pass is read first (one
``Id IN`` query): a payment already linked to it whose note names the order and the capture is taken as its
own (a lost answer, a crash before the binding), and what is paid never exceeds the invoice's balance.

Orders paid before payments were bound per capture have one payment bound to the order itself: it stands
for every capture of the order."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from connectors.errors import Permanent
from connectors.quickbooks import OBJECT_NOT_FOUND, Fault, amount
from mappings import quickbooks as qbmap
from mappings.model import Payment
from mappings.targets import WHOLE_ORDER, captures
from sync.ledger import Source
from sync.orders.bindings import NewBinding
from sync.orders.context import names_order
from sync.orders.qb_batch import Op, fault_error

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

log = logging.getLogger("o2c.payments")
QB = "quickbooks"


def capture_source(ctx: OrderContext, e: Entry, capture_id: str) -> Source:
    """The source of one capture of the order: ``<order id>:<capture id>`` (per store where the store
    numbers its orders), so the order ledger finds its order."""
    order = ctx.order_source(e)
    return Source(order.platform, "capture", f"{order.id}:{capture_id}", order.store)


def payments(ctx: OrderContext) -> None:
    """Every capture of an invoiced order gets its payment on the invoice; voided captures their payment
    voided."""
    live = [e for e in ctx.live() if e.invoice is not None]
    ctx.begin(live, "payment")
    whole = ctx.ledger.bound([ctx.order_source(e) for e in live], QB, "payment")
    wanted: list[tuple[Entry, Payment, Source]] = []
    for e in live:
        assert e.order is not None
        if (b := whole.get(ctx.order_source(e))) is not None:
            e.rec.record("payment", "found", target_platform=QB, target_type="payment", target_id=b.target_id,
                         message="bound earlier")
            continue
        caps = captures(e.order)
        if not caps:
            message = ("nothing to pay on a zero-total order" if e.order.total <= 0
                       else f"order is {e.order.financial_status}: nothing captured yet")
            e.rec.record("payment", "skipped", message=message)
        wanted += [(e, c, capture_source(ctx, e, c.source_id)) for c in caps]
        e.state["voided_captures"] = [capture_source(ctx, e, v) for v in e.order.voided_payments]
    bound = ctx.ledger.bound([src for _, _, src in wanted] +
                             [src for e in live for src in e.state.get("voided_captures", [])], QB, "payment")
    due: list[tuple[Entry, Payment, Source]] = []
    for e, c, src in wanted:
        if (b := bound.get(src)) is not None:
            e.rec.record("payment", "found", target_platform=QB, target_type="payment", target_id=b.target_id,
                         message=f"capture {c.source_id} bound earlier")
        else:
            due.append((e, c, src))
    ctx.each([e for e in live if any(s in bound for s in e.state.get("voided_captures", []))],
             lambda e: _void_payments(ctx, e, bound))
    for e in _distinct(e for e, _, _ in due if e.invoice.get("_created")):
        if e.invoice.get("TotalAmt") is not None:   # created in this pass: open for its whole total
            e.state["balance_left"] = amount(e.invoice.get("Balance", e.invoice["TotalAmt"]))
    check = _distinct(e for e, _, _ in due if not e.invoice.get("_created") and e.live)
    if check:
        try:
            _check_invoices(ctx, check)
        except Exception as exc:  # noqa: BLE001 - cannot tell what is paid: do not pay, retry
            ctx.fail_all(check, exc)
    _pay(ctx, [(e, c, src) for e, c, src in due if e.live])


def _distinct(entries: Iterable[Entry]) -> list[Entry]:
    return list({id(e): e for e in entries}.values())


def _pay(ctx: OrderContext, due: list[tuple[Entry, Payment, Source]]) -> None:
    found: list[tuple[Entry, Payment, Source, dict]] = []
    ops: list[tuple[Entry, Payment, Source, Op]] = []
    try:
        refusals = ctx.ledger.attempted([src for _, _, src in due], QB, "payment") if due else {}
    except Exception as exc:  # noqa: BLE001 - cannot tell which requestid to use: these retry
        ctx.fail_all(_distinct(e for e, _, _ in due), exc)
        return
    for e, c, src in due:
        if not e.live:
            continue
        linked = e.state.get("linked_payments")
        mine = next((p for p in linked or [] if _names_capture(p, e, c)), None)
        if mine is not None:
            found.append((e, c, src, mine))
            continue
        balance = e.state.get("balance_left")
        value = c.amount if balance is None else min(c.amount, balance)
        if value <= 0:
            e.rec.record("payment", "skipped", target_platform=QB, target_type="invoice", target_id=e.invoice["Id"],
                         message=f"capture {c.source_id}: the invoice is already paid in QuickBooks")
            continue
        if balance is not None:
            e.state["balance_left"] = balance - value

        def build(e: Entry, c: Payment = c, src: Source = src, value: Decimal = value) -> None:
            payload = qbmap.payment_payload(
                e.order, customer_id=e.customer_id, invoice_id=e.invoice["Id"], amount=value, rules=ctx.rules,
                deposit_account_id=ctx.refs.account(ctx.rules.payments.account_for(c.gateway)),
                home_currency=ctx.home_currency, exchange_rate=e.state.get("exchange_rate"), capture=c)
            rid = ctx.order_rid(e, "payment" if c.source_id == WHOLE_ORDER else f"payment:{c.source_id}",
                                *([f"after-{n}-refusals"] if (n := refusals.get(src, 0)) else []))
            ops.append((e, c, src, Op(str(len(ops)), payload, rid)))
        ctx.each([e], build)
    try:   # a refused requestid answers the same refusal forever: refusals are counted for the next try
        ctx.ledger.note_attempts({src: e.run.id for e, _, src, _ in ops}, QB, "payment", known=refusals)
    except Exception as exc:  # noqa: BLE001 - nothing is sent without its note: these retry
        ctx.fail_all(_distinct(e for e, *_ in ops), exc)
        return
    answers = ctx.ops.create_many("Payment", [op for *_, op in ops]) if ops else {}
    try:
        ctx.ledger.note_refusals([src for _, _, src, op in ops if isinstance(answers[op.key], Fault)], QB, "payment")
    except Exception:  # noqa: BLE001 - the next try asks with the same id and gets the same refusal again
        log.warning("could not note the refused payments", exc_info=True)
    for e, c, src, op in ops:
        answer = answers[op.key]
        if isinstance(answer, dict):
            found.append((e, c, src, {**answer, "_created": True}))
        else:
            e.fail(fault_error(answer, f"the payment of order {e.order.name}") if isinstance(answer, Fault)
                   else answer)
    done = [(e, c, src, p) for e, c, src, p in found if e.live]
    ctx.ledger.bind_many([
        NewBinding(src, QB, "payment", str(p["Id"]),
                   {"amount": str(amount(p.get("TotalAmt"))), "invoice_id": e.invoice["Id"],
                    "order_id": e.order.source_id, "capture": c.source_id}, e.run.id) for e, c, src, p in done])
    for e, c, _, p in done:
        e.rec.record("payment", "created" if p.get("_created") else "found", target_platform=QB,
                     target_type="payment", target_id=str(p["Id"]),
                     message=f"amount {amount(p.get('TotalAmt'))}" +
                             ("" if c.source_id == WHOLE_ORDER else f" (capture {c.source_id})"))


def _names_capture(payment: dict, e: Entry, c: Payment) -> bool:
    """Whether a payment found on the invoice is this capture's: its note names the order, and the capture
    (a note without a capture stands for the whole order)."""
    note = payment.get("PrivateNote")
    if not names_order(note, e.order.source_id, e.order.store):
        return False
    named = re.search(r", capture (\S+)", note or "")
    return (named.group(1) if named else WHOLE_ORDER) == c.source_id


def _check_invoices(ctx: OrderContext, check: list[Entry]) -> None:
    """Read the invoices not created in this pass, and the payments linked to them."""
    current = {str(r["Id"]): r for r in ctx.ops.find_in("Invoice", "Id", [e.invoice["Id"] for e in check])}
    linked: dict[str, list[str]] = {}
    for e in check:
        inv = current.get(str(e.invoice["Id"]))
        if inv is None:
            e.fail(Permanent(f"QuickBooks invoice {e.invoice['Id']} of order {e.order.name} no longer exists",
                             platform=QB, code=OBJECT_NOT_FOUND))
            continue
        e.state["balance_left"] = amount(inv.get("Balance"))
        linked[e.invoice["Id"]] = [str(t.get("TxnId")) for t in inv.get("LinkedTxn") or []
                                   if t.get("TxnType") == "Payment"]
    payment_ids = [p for ids in linked.values() for p in ids]
    found = {str(p["Id"]): p for p in ctx.ops.find_in("Payment", "Id", payment_ids)} if payment_ids else {}
    for e in check:
        if e.live:
            e.state["linked_payments"] = [found[p] for p in linked.get(e.invoice["Id"], []) if p in found]


def _void_payments(ctx: OrderContext, e: Entry, bound: dict[Source, object]) -> None:
    """The store voided a capture: its QuickBooks payment is voided (once), the invoice open for it again."""
    for src in e.state.get("voided_captures", []):
        b = bound.get(src)
        if b is None or (b.data or {}).get("voided"):
            continue
        current = ctx.qb.get("Payment", b.target_id)
        if amount(current.get("TotalAmt")) != 0:
            ctx.qb.void("Payment", b.target_id, current["SyncToken"])
        ctx.ledger.bind_many([NewBinding(src, QB, "payment", b.target_id, {"voided": True}, e.run.id)])
        e.rec.record("payment", "voided", target_platform=QB, target_type="payment", target_id=b.target_id,
                     message=f"capture {src.id.split(':', 1)[-1]} was voided in the store; payment voided")
