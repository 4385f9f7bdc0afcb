"""The payment step: a paid order's payment applied to its invoice, created through the QuickBooks batch
endpoint. The skip rules live here: an unpaid order, a payment bound earlier, a zero total, an invoice
QuickBooks already shows as paid. An invoice not created in this pass is read first (one ``Id IN`` query):
a payment already linked to it whose note names the order is taken as its own (a lost answer, a crash
before the binding), and a part-paid invoice is paid only its balance."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from connectors.errors import Permanent
from connectors.quickbooks import OBJECT_NOT_FOUND, Fault, amount
from mappings import quickbooks as qbmap
from mappings.targets import deposit_account_for
from sync.orders.bindings import NewBinding
from sync.orders.context import names_order
from sync.orders.qb_batch import Op, fault_error

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

QB = "quickbooks"


def payments(ctx: OrderContext) -> None:
    """Paid orders get a payment on their invoice. An invoice not created in this pass is read first (one
    ``Id IN`` query): a payment already linked to it whose note names the order is taken as its own, and an
    invoice QuickBooks shows as paid is not paid again."""
    live = [e for e in ctx.live() if e.invoice is not None]
    ctx.begin(live, "payment")
    paid_ones = ctx.ledger.bound([ctx.order_source(e) for e in live], QB, "payment")
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
            ops.append((e, Op(str(len(ops)), payload, ctx.order_rid(e, "payment"))))
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
    ctx.ledger.bind_many([
        NewBinding(ctx.order_source(e), QB, "payment", e.state["payment"]["Id"],
                   {"amount": str(amount(e.state["payment"].get("TotalAmt"))), "invoice_id": e.invoice["Id"]},
                   e.run.id) for e in done])
    for e in done:
        p = e.state["payment"]
        e.rec.record("payment", e.state.get("payment_outcome", "found"), target_platform=QB, target_type="payment",
                     target_id=p["Id"], message=f"amount {amount(p.get('TotalAmt'))}")


def _check_paid(ctx: OrderContext, check: list[Entry]) -> None:
    current = {str(r["Id"]): r for r in ctx.ops.find_in("Invoice", "Id", [e.invoice["Id"] for e in check])}
    linked: dict[str, list[str]] = {}
    for e in check:
        inv = current.get(str(e.invoice["Id"]))
        if inv is None:
            e.fail(Permanent(f"QuickBooks invoice {e.invoice['Id']} of order {e.order.name} no longer exists",
                             platform=QB, code=OBJECT_NOT_FOUND))
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
                     and names_order(payments_[p].get("PrivateNote"), e.order.source_id, e.order.store)), None)
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
