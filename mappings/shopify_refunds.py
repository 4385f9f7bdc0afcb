"""Shopify refunds (``Order.refunds`` of ``ORDER_QUERY``) → canonical ``Refund``s. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from mappings.model import MappingError, Refund, RefundLine
from mappings.shopify_values import _datetime, _gid_tail, _nodes, _str

Money = Callable[..., Decimal]


def refunds_from_graphql(raw: Any, money: Money, where: str) -> list[Refund]:
    """Every refund of the order: what was refunded per line (``refundLineItems``), for shipping
    (``refundShippingLines``) and in all (``totalRefundedSet``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MappingError(f"{where}: refunds is not a list", rule="order.refunds")
    out = []
    for i, r in enumerate(raw):
        if not isinstance(r, dict):
            raise MappingError(f"{where}: refund {i + 1} is not an object", rule="order.refunds")
        refund_id = _str(r.get("legacyResourceId")) or _gid_tail(_str(r.get("id")))
        if not refund_id:
            raise MappingError(f"{where}: refund {i + 1} has no id", rule="order.refunds.id")
        lines = []
        for ln in _nodes(r.get("refundLineItems") or {"nodes": []}, "refundLineItems", where):
            qty = ln.get("quantity")
            line_id = _gid_tail(_str((ln.get("lineItem") or {}).get("id")))
            if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0 or not line_id:
                raise MappingError(f"{where}: refund {refund_id} has a line without quantity or line item",
                                   rule="order.refunds.refundLineItems")
            lines.append(RefundLine(line_id, qty, money(ln.get("subtotalSet"), "refundLineItems.subtotalSet"),
                                    money(ln.get("totalTaxSet"), "refundLineItems.totalTaxSet")))
        shipping = shipping_tax = Decimal("0")
        for s in _nodes(r.get("refundShippingLines") or {"nodes": []}, "refundShippingLines", where):
            shipping += money(s.get("subtotalAmountSet"), "refundShippingLines.subtotalAmountSet")
            shipping_tax += money(s.get("taxAmountSet"), "refundShippingLines.taxAmountSet")
        out.append(Refund(source_id=refund_id, amount=money(r.get("totalRefundedSet"), "refunds.totalRefundedSet"),
                          created_at=_datetime(r.get("createdAt"), "refunds.createdAt", where), lines=lines,
                          shipping=shipping, shipping_tax=shipping_tax, note=_str(r.get("note"))))
    return out
