"""Properties: any consistent order, under every rule mode, maps to an invoice equal to the order to the cent."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.quickbooks import (
    check_invoice_total,
    invoice_payload,
    invoice_total,
    required_items,
    required_tax_codes,
)
from mappings.rules import load_rules
from mappings.shopify import order_from_graphql
from tests.mappings.builders import _bag, _invoice, build_order

_cents = st.integers(min_value=0, max_value=50_000).map(lambda c: Decimal(c) / 100)


_small_cents = st.integers(min_value=0, max_value=5_000).map(lambda c: Decimal(c) / 100)


@st.composite
def _orders(draw):
    lines = []
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        qty = draw(st.integers(min_value=0, max_value=7))
        price = draw(_cents)
        gross = price * qty
        n_disc = draw(st.integers(min_value=0, max_value=2))
        discounts = []
        left = gross
        for _ in range(n_disc):
            a = draw(st.integers(min_value=0, max_value=int(left * 100))) / Decimal(100)
            discounts.append(str(a))
            left -= a
        taxes = [("State tax", "0.0625", str(draw(_small_cents)))] if draw(st.booleans()) else []
        lines.append({"sku": draw(st.sampled_from(["", f"S{i}", "DUP"])), "title": f"Item {i}", "qty": qty,
                      "price": str(price), "discounts": discounts, "taxes": taxes,
                      "taxable": bool(taxes) or draw(st.booleans())})
    shipping = []
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        price = draw(_small_cents)
        disc = draw(st.integers(min_value=0, max_value=int(price * 100))) / Decimal(100)
        shipping.append({"price": str(price), "discounts": [str(disc)] if disc else [],
                         "taxes": [("Shipping tax", "0.05", "0.37")] if draw(st.booleans()) else []})
    return build_order(lines=lines, shipping=shipping, taxes_included=draw(st.booleans()),
                       status=draw(st.sampled_from(["PAID", "PENDING"])))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_orders())
def test_property_invoice_total_equals_order_total(node):
    order = order_from_graphql(node)
    payload = _invoice(order)
    assert invoice_total(payload) == order.total
    check_invoice_total(order, payload)
    for line in payload["Line"]:
        if line["DetailType"] == "SalesItemLineDetail":
            d = line["SalesItemLineDetail"]
            assert line["Amount"] == d["UnitPrice"] * d["Qty"]


_MODES = [{}, {"discounts": {"mode": "unit_price"}},
          {"tax": {"mode": "line_tax_codes", "codes": {"6.25": "State", "5": "Ship"}}},
          {"discounts": {"mode": "unit_price"}, "tax": {"mode": "line_tax_codes", "codes": {"6.25": "S", "5": "X"}}}]


@st.composite
def _orders_with_extras(draw):
    node = draw(_orders())
    extras = []
    if draw(st.booleans()):
        extras.append({"sku": "GC", "title": "Gift card", "price": str(draw(_small_cents)), "gift": True,
                       "taxable": False})
    if draw(st.booleans()):
        extras.append({"sku": None, "title": "Tip", "price": str(draw(_small_cents)), "tip": True, "taxable": False})
    if not extras:
        return node
    more = build_order(lines=extras, order_id=9)
    node["lineItems"]["nodes"] += more["lineItems"]["nodes"]
    for key in ("totalPriceSet", "currentTotalPriceSet", "totalTipReceivedSet"):
        add = Decimal(more[key]["shopMoney"]["amount"])
        if key != "totalTipReceivedSet":
            add += Decimal(node[key]["shopMoney"]["amount"])
        node[key] = _bag(add, "USD", "USD", Decimal(1))
    return node


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_orders_with_extras(), st.sampled_from(range(len(_MODES))))
def test_property_every_rule_mode_balances(node, mode):
    rules = load_rules(_MODES[mode])
    order = order_from_graphql(node)
    targets = required_items(order, rules)
    codes = {n: f"id-{n}" for n in required_tax_codes(order, rules)}
    payload = invoice_payload(order, customer_id="1", rules=rules, tax_code_ids=codes,
                              item_ids={k: "i-" + k for k in targets},
                              shipping_item_id="S", tip_item_id="T", fee_item_id="F")
    assert invoice_total(payload) == order.total
    check_invoice_total(order, payload)
    for line in payload["Line"]:
        if line["DetailType"] == "SalesItemLineDetail":
            d = line["SalesItemLineDetail"]
            assert line["Amount"] == d["UnitPrice"] * d["Qty"]
            assert line["Amount"] == line["Amount"].quantize(Decimal("0.01"))
