"""Builders shared by the mapping tests: GraphQL order objects shaped as ``connectors.shopify_queries.ORDER_QUERY``
returns them, the recorded Shopify fixtures, and the default rules."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

from mappings.model import Order, cents
from mappings.quickbooks import (
    invoice_payload,
    sku_key,
)
from mappings.rules import MappingRules, load_rules

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shopify"


RULES = load_rules()


ONE = Decimal(1)


def _d(value) -> Decimal:
    return Decimal(str(value))


def _fmt(value: Decimal, currency: str) -> str:
    return str(value.quantize(cents(currency)))


def _shop(amount: Decimal, currency: str) -> dict:
    return {"shopMoney": {"amount": _fmt(amount, currency), "currencyCode": currency}}


def _bag(amount: Decimal, currency: str, presentment: str, fx: Decimal) -> dict:
    return {"shopMoney": {"amount": _fmt(amount, currency), "currencyCode": currency},
            "presentmentMoney": {"amount": _fmt(amount * fx, presentment), "currencyCode": presentment}}


def _tax_nodes(taxes, currency):
    return [{"title": t, "rate": float(r), "ratePercentage": float(_d(r) * 100),
             "priceSet": _shop(_d(a), currency)} for t, r, a in taxes]


def build_order(*, order_id=4501, number=1001, currency="USD", presentment=None, fx="1", lines=(),
                shipping=(), taxes_included=False, status="PAID", email="ada@example.com",
                customer="default", billing="default", shipping_address="default",
                created="2024-05-01T10:00:00Z", updated="2024-05-01T10:05:00Z", note=None,
                has_next_page=False) -> dict:
    """lines: dicts sku/title/qty/price/discounts/taxes/taxable/gift/tip; shipping: title/price/discounts/taxes.
    Totals are computed as Shopify computes them (a tip line has no variant; the tips sum to
    totalTipReceivedSet)."""
    presentment = presentment or currency
    fx = _d(fx)
    money = lambda a: _bag(a, currency, presentment, fx)  # noqa: E731
    line_nodes, subtotal, discounts, tax_by_title, tips = [], Decimal(0), Decimal(0), {}, Decimal(0)
    for i, ln in enumerate(lines, start=1):
        price, qty = _d(ln.get("price", "10.00")), ln.get("qty", 1)
        allocs = [_d(a) for a in ln.get("discounts", ())]
        disc = sum(allocs, Decimal(0))
        taxes = ln.get("taxes", ())
        for t, r, a in taxes:
            tax_by_title.setdefault(t, [r, Decimal(0)])[1] += _d(a)
        subtotal += price * qty - disc
        discounts += disc
        sku = ln.get("sku", f"SKU-{i}")
        tip = ln.get("tip", False)
        tips += price * qty - disc if tip else 0
        line_nodes.append({
            "id": f"gid://shopify/LineItem/{order_id}{i:04d}", "name": ln.get("title", f"Item {i}"),
            "title": ln.get("title", f"Item {i}"), "sku": sku, "quantity": qty, "currentQuantity": qty,
            "taxable": ln.get("taxable", True), "requiresShipping": not (tip or ln.get("gift")),
            "isGiftCard": ln.get("gift", False),
            "originalUnitPriceSet": _shop(price, currency),
            "discountedUnitPriceSet": _shop(price - (disc / qty if qty else 0), currency),
            "originalTotalSet": _shop(price * qty, currency),
            "totalDiscountSet": _shop(disc, currency),
            "discountAllocations": [{"allocatedAmountSet": _shop(a, currency)} for a in allocs],
            "taxLines": _tax_nodes(taxes, currency),
            "variant": None if tip else {"id": f"gid://shopify/ProductVariant/{900 + i}", "sku": sku},
        })
    ship_nodes, ship_total = [], Decimal(0)
    for i, s in enumerate(shipping, start=1):
        price = _d(s.get("price", "5.00"))
        allocs = [_d(a) for a in s.get("discounts", ())]
        disc = sum(allocs, Decimal(0))
        for t, r, a in s.get("taxes", ()):
            tax_by_title.setdefault(t, [r, Decimal(0)])[1] += _d(a)
        discounts += disc
        ship_total += price - disc
        ship_nodes.append({
            "id": f"gid://shopify/ShippingLine/{order_id}{i:02d}", "title": s.get("title", "Standard"),
            "code": s.get("code", "STANDARD"), "originalPriceSet": _shop(price, currency),
            "discountedPriceSet": _shop(price - disc, currency),
            "discountAllocations": [{"allocatedAmountSet": _shop(a, currency)} for a in allocs],
            "taxLines": _tax_nodes(s.get("taxes", ()), currency),
        })
    tax = sum((v[1] for v in tax_by_title.values()), Decimal(0))
    total = subtotal + ship_total + (0 if taxes_included else tax)
    paid = status == "PAID"
    received = total if paid else Decimal(0)
    if customer == "default":
        customer = {"id": "gid://shopify/Customer/7001", "legacyResourceId": "7001", "email": email,
                    "firstName": "Ada", "lastName": "Lovelace", "displayName": "Ada Lovelace",
                    "phone": "+15555550100", "numberOfOrders": "1",
                    "amountSpent": {"amount": _fmt(total, currency), "currencyCode": currency}}
    if billing == "default":
        billing = {"firstName": "Ada", "lastName": "Lovelace", "name": "Ada Lovelace", "company": "Analytical Ltd",
                   "address1": "1 Engine Way", "address2": "Suite 2", "city": "Springfield",
                   "province": "Illinois", "provinceCode": "IL", "country": "United States",
                   "countryCodeV2": "US", "zip": "62701", "phone": "+15555550100"}
    if shipping_address == "default":
        shipping_address = copy.deepcopy(billing)
    transactions = []
    if paid:
        transactions.append({"id": f"gid://shopify/OrderTransaction/{order_id}1", "kind": "SALE",
                             "status": "SUCCESS", "gateway": "shopify_payments", "processedAt": created,
                             "test": False, "amountSet": money(total)})
    return {
        "id": f"gid://shopify/Order/{order_id}", "legacyResourceId": str(order_id), "name": f"#{number}",
        "email": email, "phone": None, "createdAt": created, "updatedAt": updated, "processedAt": created,
        "cancelledAt": None, "cancelReason": None, "closed": False, "test": False, "note": note, "tags": [],
        "currencyCode": currency, "presentmentCurrencyCode": presentment, "taxesIncluded": taxes_included,
        "displayFinancialStatus": status, "fullyPaid": paid,
        "paymentGatewayNames": ["shopify_payments"] if paid else [],
        "customer": customer, "billingAddress": billing, "shippingAddress": shipping_address,
        "subtotalPriceSet": money(subtotal), "totalPriceSet": money(total),
        "currentTotalPriceSet": money(total), "totalTaxSet": money(tax), "currentTotalTaxSet": money(tax),
        "totalDiscountsSet": money(discounts), "totalShippingPriceSet": money(ship_total),
        "totalOutstandingSet": money(total - received), "totalReceivedSet": money(received),
        "totalRefundedSet": money(Decimal(0)), "totalTipReceivedSet": money(tips),
        "taxLines": _tax_nodes([(t, r, a) for t, (r, a) in tax_by_title.items()], currency),
        "lineItems": {"pageInfo": {"hasNextPage": has_next_page,
                                   "endCursor": "eyJsYXN0X2lkIjoxfQ==" if line_nodes else None},
                      "nodes": line_nodes},
        "shippingLines": {"nodes": ship_nodes},
        "transactions": transactions,
        "refunds": [],
    }


def _load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _item_ids(order: Order) -> dict[str, str]:
    return {sku_key(ln): str(100 + i) for i, ln in enumerate(order.lines)}


def _invoice(order: Order, rules: MappingRules = RULES) -> dict:
    return invoice_payload(order, customer_id="58", item_ids=_item_ids(order), shipping_item_id="7",
                           rules=rules)
