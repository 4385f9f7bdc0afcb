"""Canonical model → HubSpot contact properties. Pure: no I/O."""

from __future__ import annotations

from mappings.model import Address, Customer, Order
from mappings.rules import MappingRules

_MAX = 1000  # keep single-line text properties reasonable


def contact_properties(customer: Customer, order: Order | None, rules: MappingRules) -> dict[str, str]:
    """HubSpot contact properties for ``customer`` (upsert by ``email``): only non-empty strings.

    The address comes from the customer's billing address, else the shipping address (falling back to
    the order's buyer when the customer carries none).
    """
    props: dict[str, str] = {}
    _put(props, "email", (customer.email or "").strip().lower())
    _put(props, "firstname", customer.first_name)
    _put(props, "lastname", customer.last_name)
    address = _pick_address(customer, order)
    _put(props, "phone", customer.phone or (address.phone if address else None))
    _put(props, "company", customer.company or (address.company if address else None))
    if address:
        street = ", ".join(p.strip() for p in (address.line1, address.line2) if p and p.strip())
        _put(props, "address", street)
        _put(props, "city", address.city)
        _put(props, "state", address.region)
        _put(props, "zip", address.postal_code)
        _put(props, "country", address.country)
    if rules.hubspot.lifecycle_stage:
        props["lifecyclestage"] = rules.hubspot.lifecycle_stage
    return props


def _pick_address(customer: Customer, order: Order | None) -> Address | None:
    candidates = [customer.billing_address, customer.shipping_address]
    if order is not None:
        candidates += [order.customer.billing_address, order.customer.shipping_address]
    for a in candidates:
        if a is not None and (a.line1 or a.city or a.postal_code or a.country):
            return a
    return None


def _put(props: dict[str, str], key: str, value: object) -> None:
    if value is None:
        return
    text = " ".join(str(value).split())
    if text:
        props[key] = text[:_MAX]
