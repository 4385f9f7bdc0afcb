"""The refunds step: each refund of an order once, as a QuickBooks CreditMemo while its invoice is open,
else a RefundReceipt (money paid back out of the deposit account). The refund bindings of the whole list
are read first (one query); what is bound is never sent again. One request per refund, with its
``requestid``: the balance that decides the kind is read just before."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from connectors.quickbooks import amount
from mappings import qb_refund as qbrefund
from mappings import quickbooks as qbmap
from mappings.targets import ItemTarget, deposit_account_for
from sync.ledger import Source
from sync.orders.bindings import NewBinding
from sync.orders.items import item_source, resolve

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

QB = "quickbooks"
REFUND_ITEM = "Refunds"   # refunded amounts without line detail (a sum typed by hand, WooCommerce totals)


def refunds(ctx: OrderContext) -> None:
    due = [e for e in ctx.live() if e.order.refunds and e.invoice is not None]
    if not due:
        return
    ctx.begin(due, "refunds")
    known = ctx.ledger.bound([_source(ctx, e, r.source_id) for e in due for r in e.order.refunds], QB, "refund")
    ctx.each(due, lambda e: _refund(ctx, e, known))


def _adjustment_item(ctx: OrderContext) -> str:
    """The item refunded amounts without line detail are booked to (found or created by the items step)."""
    target = ItemTarget("refund", REFUND_ITEM, "refund", True, (("Name", REFUND_ITEM),), type="Service")
    src = item_source(target)
    ids, errors, _, _ = resolve(ctx, {src: target})
    if src in errors:
        raise errors[src]
    return ids[src]


def _source(ctx: OrderContext, e: Entry, refund_id: str) -> Source:
    assert e.order is not None
    return ctx.ledger.order_source(e.order.platform, f"{e.order.source_id}:{refund_id}", e.run.connection_id,
                                   "refund")


def _refund(ctx: OrderContext, e: Entry, known: dict[Source, object]) -> None:
    order, invoice = e.order, e.invoice
    assert order is not None and invoice is not None
    balance: Decimal | None = None
    doc = invoice.get("DocNumber") or qbmap.doc_number(order, ctx.rules)
    ids = e.item_ids
    for index, refund in enumerate(order.refunds, start=1):
        source = _source(ctx, e, refund.source_id)
        if source in known:
            continue
        if balance is None:  # as QuickBooks has it now (the payment step may just have paid it)
            balance = amount(ctx.qb.get("Invoice", invoice["Id"]).get("Balance"))
        kind = qbrefund.CREDIT_MEMO if balance > 0 else qbrefund.REFUND_RECEIPT
        adjustment = _adjustment_item(ctx)
        payload = qbrefund.refund_payload(
            order, refund, kind=kind, customer_id=e.customer_id, item_ids=ids,
            shipping_item_id=ids.get("shipping"), adjustment_item_id=adjustment,
            deposit_account_id=ctx.refs.account(deposit_account_for(order, ctx.rules))
            if kind == qbrefund.REFUND_RECEIPT else None, doc_number=f"{doc}-R{index}"[:21],
            exchange_rate=e.state.get("exchange_rate"))
        created = ctx.qb.create(kind, payload, request_id=ctx.order_rid(e, "refund", refund.source_id))
        ctx.ledger.bind_many([NewBinding(source, QB, "refund", created["Id"], {
            "order_id": order.source_id, "amount": str(refund.amount), "kind": kind}, e.run.id)])
        e.rec.record("refunds", "created", target_platform=QB, target_type=kind, target_id=created["Id"],
                     message=f"refund {refund.source_id}: {kind} for {refund.amount}")
