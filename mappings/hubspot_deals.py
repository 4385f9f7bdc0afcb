"""Canonical order → a HubSpot deal and its line items. Pure: no I/O.

One deal per order, keyed by ``o2c_order_key`` (a unique deal property: ``<platform>:<store>:<order id>``),
so an upsert never makes a second one. Its stage follows the order (rule ``hubspot.deal_stages``):
awaiting payment → paid (``closedate`` the payment's time) → shipped, and refunded in full or cancelled;
a partial refund lowers ``amount`` and sets ``o2c_refunded_amount`` without moving the stage. Line items
carry each order line at its list price (HubSpot refuses negative prices); the order's discounts are in
the deal's amount, which is what the buyer paid.
"""

from __future__ import annotations

from decimal import Decimal

from mappings.model import Order, OrderLine, cents, store_label
from mappings.rules import MappingRules
from mappings.trace import Trace

ORDER_KEY = "o2c_order_key"
REFUNDED = "o2c_refunded_amount"
NAME_MAX = 255


def order_key(order: Order) -> str:
    return ":".join([order.platform, store_label(order.store) if order.store else "", order.source_id])


def deal_stage_of(order: Order) -> str:
    """Where the order stands, as a key of ``hubspot.deal_stages``."""
    if order.cancelled_at is not None:
        return "cancelled"
    if order.total > 0 and order.total_refunded >= order.total:
        return "refunded"
    if order.shipments:
        return "shipped"
    if order.is_paid:
        return "paid"
    return "awaiting_payment"


def explain_deal(order: Order, rules: MappingRules) -> tuple[dict[str, str], list[Trace]]:
    """The deal's properties (with ``ORDER_KEY``) and where each came from."""
    q = cents(order.currency)
    stage_key = deal_stage_of(order)
    stage = rules.hubspot.deal_stages[stage_key]
    amount = max(order.total - order.total_refunded, Decimal("0")).quantize(q)
    props = {ORDER_KEY: order_key(order), "dealname": f"Order {order.name}"[:NAME_MAX],
             "pipeline": rules.hubspot.deal_pipeline, "dealstage": stage, "amount": str(amount),
             "deal_currency_code": order.currency.upper()}
    traces = [Trace("dealstage", stage, f"the order is {stage_key.replace('_', ' ')}, by rule hubspot.deal_stages"),
              Trace("amount", str(amount), "total − total_refunded")]
    if order.total_refunded > 0:
        props[REFUNDED] = str(order.total_refunded.quantize(q))
        traces.append(Trace(REFUNDED, props[REFUNDED], "total_refunded"))
    paid_at = max((p.processed_at for p in order.payments if p.processed_at), default=None)
    if stage_key in ("paid", "shipped"):
        closed = paid_at or order.updated_at
        props["closedate"] = closed.isoformat().replace("+00:00", "Z")
        traces.append(Trace("closedate", props["closedate"], "payments[*].processed_at (latest)"
                            if paid_at else "updated_at"))
    return props, traces


def line_item_properties(line: OrderLine, currency: str) -> dict[str, str]:
    """One order line as a HubSpot line item (list price, never negative)."""
    q = cents(currency)
    props = {"name": (line.title or line.sku or "Item")[:NAME_MAX], "quantity": str(line.quantity),
             "price": str(max(line.unit_price, Decimal("0")).quantize(q))}
    if line.sku:
        props["hs_sku"] = line.sku
    return props


def line_item_key(props: dict[str, str]) -> tuple[str, str, str]:
    """What tells a line item of the deal from the others when the hub finds them again."""
    return props.get("name", ""), props.get("hs_sku", ""), props.get("quantity", "")
