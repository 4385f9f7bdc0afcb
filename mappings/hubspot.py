"""Canonical model → HubSpot contact properties. Pure: no I/O.

Which standard properties are written follows ``hubspot.properties``; buyer figures (total spent, order
count, last order) go to the custom properties named in ``hubspot.custom``, from ``BuyerStats`` the
pipeline supplies (else the store's own lifetime figures on the customer, when it sends them).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from mappings.model import Address, Customer, Order
from mappings.rules import MappingRules
from mappings.trace import Trace

_MAX = 1000  # keep single-line text properties reasonable


@dataclass(frozen=True)
class BuyerStats:
    """What the buyer has bought so far, across the merchant's orders the hub knows."""

    order_count: int
    total_spent: Decimal


def contact_properties(customer: Customer, order: Order | None, rules: MappingRules,
                       stats: BuyerStats | None = None) -> dict[str, str]:
    """HubSpot contact properties for ``customer`` (upsert by ``email``): only non-empty strings.

    The address comes from the customer's billing address, else the shipping address (falling back to
    the order's buyer when the customer carries none).
    """
    return explain_contact(customer, order, rules, stats)[0]


def explain_contact(customer: Customer, order: Order | None, rules: MappingRules,
                    stats: BuyerStats | None = None) -> tuple[dict[str, str], list[Trace]]:
    """``contact_properties`` and, for each property, the customer/order field it came from."""
    props: dict[str, str] = {}
    traces: list[Trace] = []
    wanted = set(rules.hubspot.properties)

    def put(key: str, value: object, source: str) -> None:
        if key in wanted and _put(props, key, value):
            traces.append(Trace(key, props[key], source))

    put("email", (customer.email or "").strip().lower(), "customer.email (lower-cased)")
    put("firstname", customer.first_name, "customer.first_name")
    put("lastname", customer.last_name, "customer.last_name")
    address, where = _pick_address(customer, order)
    put("phone", customer.phone or (address.phone if address else None),
        "customer.phone" if customer.phone else f"{where}.phone")
    put("company", customer.company or (address.company if address else None),
        "customer.company" if customer.company else f"{where}.company")
    if address:
        street = ", ".join(p.strip() for p in (address.line1, address.line2) if p and p.strip())
        put("address", street, f"{where}.line1, {where}.line2")
        put("city", address.city, f"{where}.city")
        put("state", address.region, f"{where}.region")
        put("zip", address.postal_code, f"{where}.postal_code")
        put("country", address.country, f"{where}.country")
    if rules.hubspot.lifecycle_stage:
        props["lifecyclestage"] = rules.hubspot.lifecycle_stage
        traces.append(Trace("lifecyclestage", props["lifecyclestage"], "rule hubspot.lifecycle_stage"))
    _custom(props, traces, customer, order, rules, stats)
    return props, traces


def _custom(props: dict[str, str], traces: list[Trace], customer: Customer, order: Order | None,
            rules: MappingRules, stats: BuyerStats | None) -> None:
    custom = rules.hubspot.custom
    figures: dict[str, tuple[object, str]] = {}
    if stats is not None:
        figures["total_spent"] = (stats.total_spent, "stats.total_spent (the hub's orders of this buyer)")
        figures["order_count"] = (stats.order_count, "stats.order_count (the hub's orders of this buyer)")
    else:
        if customer.amount_spent is not None:
            figures["total_spent"] = (customer.amount_spent, "customer.amount_spent (the store's lifetime figure)")
        if customer.number_of_orders is not None:
            figures["order_count"] = (customer.number_of_orders, "customer.number_of_orders (the store's figure)")
    if order is not None:
        figures["last_order_number"] = (order.name, "order name")
    for key, prop in custom.items():
        if prop and key in figures:
            value, source = figures[key]
            if isinstance(value, Decimal):
                value = format(value, "f")
            if _put(props, prop, value):
                traces.append(Trace(prop, props[prop], f"{source} → rule hubspot.custom.{key}"))


def _pick_address(customer: Customer, order: Order | None) -> tuple[Address | None, str]:
    candidates = [(customer.billing_address, "customer.billing_address"),
                  (customer.shipping_address, "customer.shipping_address")]
    if order is not None:
        candidates += [(order.customer.billing_address, "order.customer.billing_address"),
                       (order.customer.shipping_address, "order.customer.shipping_address")]
    for a, where in candidates:
        if a is not None and (a.line1 or a.city or a.postal_code or a.country):
            return a, where
    return None, "address"


def _put(props: dict[str, str], key: str, value: object) -> bool:
    if value is None:
        return False
    text = " ".join(str(value).split())
    if text:
        props[key] = text[:_MAX]
        return True
    return False
