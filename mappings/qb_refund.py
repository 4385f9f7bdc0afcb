"""A store refund → QuickBooks RefundReceipt (money went back to the buyer) or CreditMemo (credit against
an invoice that is still open). Pure: no I/O.

Lines: the refunded units of each order line on that line's item (``Amount = Qty × UnitPrice`` exactly,
split in two when the refunded amount does not divide into cents), refunded shipping on the shipping
item, and whatever else was refunded (an amount typed by hand, a refund without line detail) on the
adjustment item. ``TxnTaxDetail.TotalTax`` is the refunded tax. The document's total is the refund's
amount to the cent, or ``MappingError`` says why not.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mappings.inputs import shown
from mappings.model import MappingError, Order, Refund, cents
from mappings.qb_common import DESCRIPTION_MAX, PRIVATE_NOTE_MAX, clean, order_label, truncate
from mappings.qb_invoice import invoice_total, split_net
from mappings.targets import sku_key

REFUND_RECEIPT = "RefundReceipt"
CREDIT_MEMO = "CreditMemo"


def refund_payload(order: Order, refund: Refund, *, kind: str, customer_id: str, item_ids: dict[str, str],
                   shipping_item_id: str | None, adjustment_item_id: str | None,
                   deposit_account_id: str | None = None, doc_number: str | None = None,
                   exchange_rate: Decimal | None = None) -> dict[str, Any]:
    """A refund receipt (the money went back) or a credit memo (the invoice is still open) for ``refund``;
    ``exchange_rate``: its invoice's, when the order is in a foreign currency."""
    if kind not in (REFUND_RECEIPT, CREDIT_MEMO):
        raise ValueError(f"kind must be {REFUND_RECEIPT} or {CREDIT_MEMO}")
    q = cents(order.currency)
    where = f"refund {refund.source_id} of {order_label(order)}"
    by_id = {ln.source_id: ln for ln in order.lines}
    lines: list[dict[str, Any]] = []
    for r in refund.lines:
        if r.quantity <= 0 or r.amount == 0:
            continue
        line = by_id.get(r.line_source_id)
        if line is None:
            raise MappingError(f"{where} refunds line {r.line_source_id}, which the order does not have",
                               rule="refunds.lines")
        item = item_ids.get(sku_key(line))
        if not item:
            raise MappingError(f"{where}: no QuickBooks item for {shown(sku_key(line))}", rule="items")
        for qty, price in split_net(r.amount.quantize(q), r.quantity, q):
            lines.append(_line(item, qty, price, q, f"Refund: {line.title}", taxed=r.tax != 0))
    if refund.shipping:
        if not shipping_item_id:
            raise MappingError(f"{where} refunds shipping but no shipping item was given", rule="shipping.item")
        lines.append(_line(shipping_item_id, 1, refund.shipping.quantize(q), q, "Refund: shipping",
                           taxed=refund.shipping_tax != 0))
    tax = refund.tax.quantize(q)
    rest = (refund.amount - sum((Decimal(str(ln["Amount"])) for ln in lines), Decimal("0")) - tax).quantize(q)
    if rest:
        if not adjustment_item_id:
            raise MappingError(f"{where}: {rest} refunded without line detail and no adjustment item",
                               rule="refunds.item")
        if rest < 0 and not lines:
            raise MappingError(f"{where}: refunded tax {tax} exceeds the refund {refund.amount}", rule="refunds")
        if rest > 0:
            lines.append(_line(adjustment_item_id, 1, rest, q, "Refund" + (
                f": {clean(refund.note)}" if refund.note else " (no line detail)"), taxed=False))
        else:  # less was refunded than the lines' list price: the difference is a discount
            lines.append({"DetailType": "DiscountLineDetail", "Amount": -rest, "Description": "Refund adjustment",
                          "DiscountLineDetail": {"PercentBased": False}})
    if not lines:
        raise MappingError(f"{where} is for nothing (amount {refund.amount})", rule="refunds")
    payload: dict[str, Any] = {
        "CustomerRef": {"value": str(customer_id)},
        "CurrencyRef": {"value": order.currency},
        "TxnDate": (refund.created_at or order.updated_at).date().isoformat(),
        "Line": lines,
        "TxnTaxDetail": {"TotalTax": tax},
        "PrivateNote": truncate(f"Refund {refund.source_id} of {order_label(order)}", PRIVATE_NOTE_MAX),
    }
    if doc_number:
        payload["DocNumber"] = doc_number
    if exchange_rate is not None:
        payload["ExchangeRate"] = exchange_rate
    if kind == REFUND_RECEIPT:
        if not deposit_account_id:
            raise MappingError(f"{where}: a refund receipt needs the account the money left from",
                               rule="payments.deposit_accounts")
        payload["DepositToAccountRef"] = {"value": str(deposit_account_id)}
    total = invoice_total(payload)
    if total != refund.amount.quantize(q):
        raise MappingError(f"{where}: the {kind} would total {total}, the refund is {refund.amount}",
                           rule="refunds.total")
    return payload


def _line(item: str, qty: int, price: Decimal, q: Decimal, description: str, *, taxed: bool) -> dict[str, Any]:
    return {"DetailType": "SalesItemLineDetail", "Amount": (price * qty).quantize(q),
            "Description": truncate(clean(description), DESCRIPTION_MAX),
            "SalesItemLineDetail": {"ItemRef": {"value": str(item)}, "Qty": qty, "UnitPrice": price,
                                    "TaxCodeRef": {"value": "TAX" if taxed else "NON"}}}
