"""Traces for the mapping preview: for each value a payload carries, where in the order it came from.

``Trace(path, value, source)``: ``path`` is where the value sits in the payload (``Line[0].Amount``,
``TxnTaxDetail.TotalTax``, ``firstname``), ``value`` the value as text, ``source`` the canonical order
field(s) it was computed from, in words a support agent can check against the store, e.g.
``lines[0].unit_price × lines[0].quantity (order line "Blue T-shirt", SKU TS-1; Shopify lineItems[0])``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mappings.model import FeeLine, Order, OrderLine, ShippingLine


@dataclass(frozen=True)
class Trace:
    path: str
    value: str
    source: str

    def __str__(self) -> str:
        return f"{self.path} = {self.value}  ← {self.source}"


def text(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"value"}:
        return str(value["value"])
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def line_context(line: OrderLine) -> str:
    """``order line "Blue T-shirt", SKU TS-1; Shopify lineItems[0]`` (what a person looks for)."""
    kind = "gift card" if line.is_gift_card else "order line"
    parts = [f'{kind} "{line.title}", ' + (f"SKU {line.sku}" if line.sku else "no SKU")]
    if line.source_path:
        parts.append(line.source_path)
    return "; ".join(parts)


def shipping_context(lines: list[ShippingLine]) -> str:
    titles = ", ".join(f'"{s.title}"' for s in lines)
    paths = ", ".join(s.source_path for s in lines if s.source_path)
    return f"shipping {titles}" + (f"; {paths}" if paths else "")


def fee_context(fee: FeeLine) -> str:
    return f'{fee.kind} "{fee.title}"' + (f"; {fee.source_path}" if fee.source_path else "")


def field_source(order: Order, name: str) -> str:
    """``total (Shopify totalPriceSet)``: a canonical order field and the store field behind it."""
    store = order.source_fields.get(name)
    return f"{name} ({store})" if store else name


def as_table(traces: list[Trace]) -> list[dict[str, str]]:
    """Plain rows for JSON (the support console, ``o2c`` previews)."""
    return [{"path": t.path, "value": t.value, "source": t.source} for t in traces]
