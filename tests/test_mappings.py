"""Shopify GraphQL order → canonical Order → QuickBooks / HubSpot payloads, and the mapping rules."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.hubspot import BuyerStats, contact_properties, explain_contact
from mappings.model import Address, Customer, FeeLine, MappingError, Order, OrderLine, ShippingLine, cents
from mappings.quickbooks import (
    check_invoice_total,
    customer_payload,
    deposit_account_for,
    explain_invoice,
    explain_payment,
    invoice_payload,
    invoice_total,
    item_target,
    payment_payload,
    payment_splits,
    request_id,
    required_items,
    required_tax_codes,
    sku_key,
    split_net,
)
from mappings.rules import MappingRules, RulesError, load_rules, referenced_objects, rules_from_yaml
from mappings.shopify import order_from_graphql, order_ref_from_webhook

FIXTURES = Path(__file__).parent / "fixtures" / "shopify"
RULES = load_rules()
ONE = Decimal(1)


# --- a builder of GraphQL order objects, shaped as connectors.shopify_queries.ORDER_QUERY returns them --

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


# --- fixtures: each maps to an Order and to an invoice whose total is the order's ----------------------

# name → (total, discount_total, total_tax, shipping before discount, number of lines, currency)
EXPECTED = {
    "simple_paid": ("64.80", "0.00", "4.80", "5.00", 2, "USD"),
    "line_discount": ("95.00", "5.00", "0.00", "10.00", 2, "USD"),
    "order_discount_spread": ("20.00", "10.00", "0.00", "0.00", 3, "USD"),
    "free_shipping": ("50.00", "7.99", "0.00", "7.99", 1, "USD"),
    "discounted_shipping": ("47.50", "2.50", "0.00", "10.00", 1, "USD"),
    "taxes_included": ("17.00", "0.00", "2.83", "5.00", 1, "EUR"),
    "several_tax_lines": ("54.45", "0.00", "4.45", "0.00", 1, "USD"),
    "zero_priced_item": ("25.00", "0.00", "0.00", "0.00", 2, "USD"),
    "half_cent_rounding": ("31.88", "1.35", "2.60", "0.00", 3, "USD"),
    "non_ascii": ("42.00", "0.00", "0.00", "2.00", 2, "USD"),
    "guest_no_email": ("15.00", "0.00", "0.00", "5.00", 1, "USD"),
    "foreign_currency": ("110.00", "10.00", "0.00", "20.00", 1, "EUR"),
    "zero_decimal_currency": ("5800", "200", "0", "1000", 1, "JPY"),
    "pending_unpaid": ("30.00", "0.00", "0.00", "0.00", 1, "USD"),
}


def test_every_fixture_is_listed():
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)
    assert len(EXPECTED) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_maps_to_order_and_balanced_invoice(name):
    total, discount, tax, shipping, n_lines, currency = EXPECTED[name]
    order = order_from_graphql(_load(name))
    assert order.platform == "shopify"
    assert order.currency == currency
    assert order.total == Decimal(total)
    assert order.discount_total == Decimal(discount)
    assert order.total_tax == Decimal(tax)
    assert sum((s.amount for s in order.shipping_lines), Decimal(0)) == Decimal(shipping)
    assert len(order.lines) == n_lines
    assert order.created_at.tzinfo is not None and order.updated_at.tzinfo is not None
    for value in (order.total, order.total_tax, order.total_outstanding, *(ln.unit_price for ln in order.lines)):
        assert isinstance(value, Decimal)

    payload = _invoice(order)
    assert invoice_total(payload) == order.total
    check_invoice_total(order, payload)
    for line in payload["Line"]:
        if line["DetailType"] == "SalesItemLineDetail":
            d = line["SalesItemLineDetail"]
            assert line["Amount"] == d["UnitPrice"] * d["Qty"]
            assert line["Amount"] == line["Amount"].quantize(cents(currency))
    discounts = [ln for ln in payload["Line"] if ln["DetailType"] == "DiscountLineDetail"]
    if Decimal(discount):
        assert len(discounts) == 1 and discounts[0]["Amount"] == Decimal(discount)
        assert discounts[0]["DiscountLineDetail"]["PercentBased"] is False
    else:
        assert discounts == []
    assert payload["TxnTaxDetail"]["TotalTax"] == Decimal(tax)
    assert payload["CurrencyRef"] == {"value": currency}
    assert len(payload["DocNumber"]) <= 21
    json.dumps(payload, default=str)  # serialisable by the caller

    props = contact_properties(order.customer, order, RULES)
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in props.items())
    cust = customer_payload(order.customer)
    assert ":" not in cust["DisplayName"] and 0 < len(cust["DisplayName"]) <= 500


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_shaped_exactly_as_order_query_returns(name):
    """Executing ORDER_QUERY over Shopify's schema with the fixture as data gives the fixture back."""
    import graphql

    from connectors.shopify_queries import ORDER_QUERY
    from tests.test_shopify_queries_schema import _schema

    node = _load(name)
    result = graphql.graphql_sync(_schema(), ORDER_QUERY, root_value={"order": node},
                                  variable_values={"id": node["id"], "linesAfter": None})
    assert result.errors is None
    assert result.data["order"] == node


def test_simple_paid_order_details():
    order = order_from_graphql(_load("simple_paid"))
    assert (order.source_id, order.name, order.number) == ("4501", "#1001", "1001")
    assert order.source_gid == "gid://shopify/Order/4501"
    assert order.financial_status == "paid" and order.is_paid
    assert order.total_outstanding == Decimal("0.00")
    assert [p.amount for p in order.payments] == [Decimal("64.80")]
    assert order.payments[0].gateway == "shopify_payments"
    assert order.payment_gateways == ["shopify_payments"]
    assert order.created_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    ln = order.lines[0]
    assert (ln.sku, ln.title, ln.quantity, ln.unit_price) == ("MUG-RED", "Red mug", 2, Decimal("12.50"))
    assert ln.tax_lines[0].rate == Decimal("0.08")
    c = order.customer
    assert (c.email, c.first_name, c.last_name, c.source_id) == ("ada@example.com", "Ada", "Lovelace", "7001")
    assert c.billing_address.region == "IL" and c.billing_address.country == "US"

    payload = _invoice(order)
    assert payload["DocNumber"] == "1001"
    assert payload["TxnDate"] == "2024-05-01"
    assert payload["CustomerRef"] == {"value": "58"}
    assert payload["PrivateNote"] == "Shopify order #1001 (id 4501)"
    assert "GlobalTaxCalculation" not in payload
    sales = [ln for ln in payload["Line"] if ln["DetailType"] == "SalesItemLineDetail"]
    assert sales[0] == {"DetailType": "SalesItemLineDetail", "Amount": Decimal("25.00"), "Description": "Red mug",
                        "SalesItemLineDetail": {"ItemRef": {"value": "100"}, "Qty": 2,
                                                "UnitPrice": Decimal("12.50"), "TaxCodeRef": {"value": "TAX"}}}
    assert sales[-1]["SalesItemLineDetail"]["ItemRef"] == {"value": "7"}
    assert sales[-1]["Amount"] == Decimal("5.00")


def test_taxes_included_invoice_is_tax_inclusive():
    order = order_from_graphql(_load("taxes_included"))
    assert order.taxes_included
    payload = _invoice(order)
    assert payload["GlobalTaxCalculation"] == "TaxInclusive"
    assert invoice_total(payload) == Decimal("17.00")  # tax not added on top


def test_order_discount_spread_sums_allocations():
    order = order_from_graphql(_load("order_discount_spread"))
    assert [ln.discount for ln in order.lines] == [Decimal("3.33"), Decimal("3.33"), Decimal("3.34")]


def test_foreign_currency_uses_shop_money():
    node = _load("foreign_currency")
    assert node["presentmentCurrencyCode"] == "USD"
    order = order_from_graphql(node)
    assert order.currency == "EUR" and order.total == Decimal("110.00")


def test_zero_decimal_currency_amounts_are_whole():
    order = order_from_graphql(_load("zero_decimal_currency"))
    payload = _invoice(order)
    assert payload["TxnTaxDetail"]["TotalTax"] == Decimal("0")
    assert all(ln["Amount"] == ln["Amount"].quantize(Decimal(1)) for ln in payload["Line"])


def test_guest_without_email():
    order = order_from_graphql(_load("guest_no_email"))
    c = order.customer
    assert c.email is None and c.source_id is None
    assert (c.first_name, c.last_name) == ("Grace", "Hopper")  # from the billing address
    assert c.key == "guest"
    props = contact_properties(c, order, RULES)
    assert "email" not in props and props["firstname"] == "Grace"
    assert "PrimaryEmailAddr" not in customer_payload(c)


def test_non_ascii_names_survive():
    order = order_from_graphql(_load("non_ascii"))
    c = order.customer
    assert c.first_name == "Zoë" and c.last_name == "Ångström-Núñez"
    assert order.lines[0].title == "Café crème: grand"
    cust = customer_payload(c)
    assert cust["DisplayName"] == "Zoë Ångström-Núñez"
    assert cust["BillAddr"]["City"] == "São Paulo"
    assert customer_payload(c, display_name="Zoë: Ångström")["DisplayName"] == "Zoë- Ångström"
    payload = _invoice(order)
    assert payload["Line"][1]["Description"] == "東京タワー キーホルダー"


def test_pending_order_has_no_payments():
    order = order_from_graphql(_load("pending_unpaid"))
    assert order.financial_status == "pending" and not order.is_paid
    assert order.payments == [] and order.total_outstanding == Decimal("30.00")


def test_only_successful_sales_and_captures_are_payments():
    node = build_order(lines=[{"price": "30.00"}], status="PARTIALLY_PAID")
    node["transactions"] = [
        {"id": "gid://shopify/OrderTransaction/1", "kind": "AUTHORIZATION", "status": "SUCCESS",
         "gateway": "bogus", "processedAt": "2024-05-01T10:00:00Z", "test": False,
         "amountSet": _bag(Decimal(30), "USD", "USD", Decimal(1))},
        {"id": "gid://shopify/OrderTransaction/2", "kind": "CAPTURE", "status": "SUCCESS",
         "gateway": "bogus", "processedAt": "2024-05-02T10:00:00Z", "test": False,
         "amountSet": _bag(Decimal(10), "USD", "USD", Decimal(1))},
        {"id": "gid://shopify/OrderTransaction/3", "kind": "SALE", "status": "FAILURE",
         "gateway": "bogus", "processedAt": "2024-05-02T10:00:00Z", "test": False,
         "amountSet": _bag(Decimal(20), "USD", "USD", Decimal(1))},
    ]
    order = order_from_graphql(node)
    assert [(p.source_id, p.amount) for p in order.payments] == [("2", Decimal("10.00"))]
    assert order.financial_status == "partially_paid"


# --- 260 line items: two pages ------------------------------------------------------------------------

def test_260_line_items_across_pages():
    lines = [{"sku": f"SKU-{i}", "price": f"{1 + i % 7}.{i % 100:02d}", "qty": 1 + i % 3,
              "discounts": ["0.10"] if i % 5 == 0 else []} for i in range(260)]
    node = build_order(lines=lines, shipping=[{"price": "9.99"}])
    all_nodes = node["lineItems"]["nodes"]
    node["lineItems"] = {"pageInfo": {"hasNextPage": True, "endCursor": "c250"}, "nodes": all_nodes[:250]}
    with pytest.raises(MappingError, match="more than 250 line items"):
        order_from_graphql(node)
    order = order_from_graphql(node, all_nodes[250:])
    assert len(order.lines) == 260
    check_invoice_total(order, _invoice(order))
    # a whole page object and repeated nodes are accepted too
    again = order_from_graphql(node, [{"pageInfo": {"hasNextPage": False}, "nodes": all_nodes[245:]}])
    assert len(again.lines) == 260 and again.total == order.total


# --- malformed input ----------------------------------------------------------------------------------

def _broken(mutate):
    node = build_order(lines=[{"price": "10.00", "qty": 2}], shipping=[{"price": "5.00"}])
    mutate(node)
    return node


def _set(path, value):
    def mutate(node):
        target = node
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return mutate


_DELETE = object()


@pytest.mark.parametrize("mutate, message", [
    (lambda n: n.update(id=None, legacyResourceId=None), "no id"),
    (_set(["legacyResourceId"], None), None),  # falls back to the gid: no error
    (_set(["name"], ""), "has no name"),
    (_set(["totalPriceSet", "shopMoney", "amount"], "12,00"), "is not a number"),
    (lambda n: n.update(currentTotalPriceSet=None, totalPriceSet=None), "missing an amount"),
    (_set(["lineItems", "nodes", 0, "quantity"], None), "line 1 (Item 1) has no quantity"),
    (_set(["lineItems", "nodes", 0, "quantity"], "two"), "invalid quantity"),
    (_set(["lineItems", "nodes", 0, "quantity"], -1), "negative quantity"),
    (_set(["lineItems", "nodes", 0, "originalUnitPriceSet"], None), "originalUnitPriceSet is missing"),
    (_set(["lineItems", "nodes", 0, "originalUnitPriceSet", "shopMoney", "amount"], {"x": 1}), "amount"),
    (_set(["lineItems", "nodes", 0, "discountAllocations"], [{"allocatedAmountSet": None}]), "discount"),
    (_set(["lineItems", "nodes", 0, "title"], None), None),  # name is used instead
    (_set(["lineItems", "nodes", 0], "not a line"), "line 1 is not an object"),
    (_set(["lineItems"], _DELETE), "has no lineItems"),
    (_set(["lineItems"], "nope"), "not a connection"),
    (_set(["createdAt"], "yesterday"), "not an ISO 8601 date-time"),
    (_set(["createdAt"], None), "has no createdAt"),
    (_set(["currencyCode"], None), None),  # taken from the total's shopMoney
    (_set(["shippingLines", "nodes", 0, "originalPriceSet", "shopMoney", "amount"], "NaN"), "not a number"),
    (_set(["taxLines"], [{"title": "VAT", "rate": "x", "priceSet": None}]), "rate"),
    (_set(["transactions"], {"a": 1}), "transactions must be a list"),
    (_set(["customer"], "someone"), "customer is not an object"),
    (_set(["billingAddress"], 5), "billingAddress is not an object"),
])
def test_malformed_order_raises_mapping_error(mutate, message):
    node = _broken(mutate)
    if message is None:
        order = order_from_graphql(node)
        check_invoice_total(order, _invoice(order))
        return
    with pytest.raises(MappingError) as info:
        order_from_graphql(node)
    text = str(info.value)
    assert message in text
    assert "Shopify order" in text


@pytest.mark.parametrize("node", [None, [], "order", 42])
def test_non_object_order(node):
    with pytest.raises(MappingError, match="must be a JSON object"):
        order_from_graphql(node)


def test_webhook_reference():
    body = {"id": 4501, "admin_graphql_api_id": "gid://shopify/Order/4501", "name": "#1001",
            "updated_at": "2024-05-01T10:05:00-04:00"}
    assert order_ref_from_webhook(body) == ("4501", "gid://shopify/Order/4501", "#1001",
                                            "2024-05-01T10:05:00-04:00")
    assert order_ref_from_webhook({"id": 9}) == ("9", "gid://shopify/Order/9", "#9", None)
    for bad in ({}, {"id": None}, {"id": ""}, [], {"name": "#1"}):
        with pytest.raises(MappingError):
            order_ref_from_webhook(bad)


# --- invoice details ------------------------------------------------------------------------------------

def test_invoice_total_mismatch_message():
    order = order_from_graphql(build_order(lines=[{"price": "10.00"}]))
    payload = _invoice(order)
    payload["Line"][0]["Amount"] = Decimal("10.01")
    with pytest.raises(MappingError) as info:
        check_invoice_total(order, payload)
    assert str(info.value).startswith("invoice total 10.01 differs from order total 10.00 by 0.01 (USD)")


def test_missing_item_or_shipping_item_is_a_mapping_error():
    order = order_from_graphql(build_order(lines=[{"sku": "", "title": "Loose tea"}], shipping=[{}]))
    assert sku_key(order.lines[0]) == "title:Loose tea"
    with pytest.raises(MappingError, match="no QuickBooks item for 'title:Loose tea'"):
        invoice_payload(order, customer_id="1", item_ids={}, shipping_item_id="7", rules=RULES)
    with pytest.raises(MappingError, match="shipping") as info:
        invoice_payload(order, customer_id="1", item_ids={"title:Loose tea": "3"}, shipping_item_id=None,
                        rules=RULES)
    assert info.value.rule == "shipping.item"


def test_doc_number_prefix_and_limit():
    order = order_from_graphql(build_order(lines=[{}], number=1001))
    rules = load_rules({"invoice": {"prefix": "WEB-"}})
    assert _invoice(order, rules)["DocNumber"] == "WEB-1001"
    rules = load_rules({"invoice": {"doc_number": "{number}-{id}"}})
    assert _invoice(order, rules)["DocNumber"] == "1001-4501"
    long = order_from_graphql(build_order(lines=[{}], number=12345678901234567890))
    with pytest.raises(MappingError, match="21 characters") as info:
        _invoice(long, load_rules({"invoice": {"prefix": "SHOP-"}}))
    assert info.value.rule == "invoice.doc_number"


def test_line_tax_codes_need_codes_and_ids():
    with pytest.raises(RulesError, match=r"^tax.codes: is required when tax.mode is line_tax_codes"):
        load_rules({"tax": {"mode": "line_tax_codes"}})
    rules = load_rules({"tax": {"mode": "line_tax_codes", "codes": {"20": "20.0% S", "GST + PST": "GST/PST"}}})
    node = build_order(lines=[{"price": "10.00", "taxes": [("VAT", "0.2", "2.00")]},
                              {"price": "4.00", "taxable": False},
                              {"price": "50.00", "taxes": [("GST", "0.05", "2.50"), ("PST", "0.07", "3.50")]}],
                       shipping=[{"price": "5.00", "taxes": [("VAT", "0.2", "1.00")]}])
    order = order_from_graphql(node)
    assert required_tax_codes(order, rules) == ["20.0% S", "Exempt", "GST/PST"]
    with pytest.raises(MappingError, match="no QuickBooks id for tax code") as info:
        _invoice(order, rules)
    assert info.value.rule == "tax.codes"
    payload = invoice_payload(order, customer_id="58", item_ids=_item_ids(order), shipping_item_id="7", rules=rules,
                              tax_code_ids={"20.0% S": "3", "Exempt": "9", "GST/PST": "12"})
    codes = [ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] for ln in payload["Line"]
             if ln["DetailType"] == "SalesItemLineDetail"]
    assert codes == ["3", "9", "12", "3"]
    assert payload["TxnTaxDetail"]["TotalTax"] == Decimal("9.00")
    assert payload["GlobalTaxCalculation"] == "TaxExcluded"
    check_invoice_total(order, payload)
    unmapped = order_from_graphql(build_order(lines=[{"price": "10.00", "taxes": [("VAT", "0.075", "0.75")]}]))
    with pytest.raises(MappingError, match=r"no QuickBooks tax code for the 7.5% rate \(VAT\)") as info:
        required_tax_codes(unmapped, rules)
    assert info.value.rule == "tax.codes" and "tax.codes" in str(info.value)


def test_payment_payload():
    order = order_from_graphql(_load("simple_paid"))
    p = payment_payload(order, customer_id="58", invoice_id="130", amount=Decimal("64.8"))
    assert p == {
        "TotalAmt": Decimal("64.80"), "CustomerRef": {"value": "58"}, "CurrencyRef": {"value": "USD"},
        "TxnDate": "2024-05-01", "PaymentRefNum": "#1001",
        "PrivateNote": "Payment for Shopify order #1001 (id 4501)",
        "Line": [{"Amount": Decimal("64.80"), "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}],
    }
    for bad in (Decimal("0"), Decimal("-1"), 1.5):
        with pytest.raises(MappingError):
            payment_payload(order, customer_id="58", invoice_id="130", amount=bad)


def test_request_id_is_deterministic_and_short():
    a = request_id("m1", "shopify", "4501", "invoice")
    assert a == request_id("m1", "shopify", "4501", "invoice")
    assert a != request_id("m1", "shopify", "4501", "payment")
    assert a != request_id("m1", "shopify", "45", "01invoice")
    assert len(a) <= 36 and all(c in "0123456789abcdef" for c in a)


def test_customer_payload_limits():
    long = "N" * 150
    c = Customer(email="x@example.com", first_name=long, last_name="Smith:Jones", company="C" * 120,
                 phone="+1 555 0100", billing_address=Address(line1="1 Main\nSt", city="Austin",
                                                              region="TX", postal_code="78701", country="US"))
    p = customer_payload(c)
    assert len(p["GivenName"]) == 100 and len(p["CompanyName"]) == 100
    assert p["FamilyName"] == "Smith:Jones"
    assert ":" not in p["DisplayName"] and len(p["DisplayName"]) <= 500
    assert p["PrimaryEmailAddr"] == {"Address": "x@example.com"}
    assert p["PrimaryPhone"] == {"FreeFormNumber": "+1 555 0100"}
    assert p["BillAddr"] == {"Line1": "1 Main St", "City": "Austin", "CountrySubDivisionCode": "TX",
                             "PostalCode": "78701", "Country": "US"}
    assert "ShipAddr" not in p
    assert len(customer_payload(c, display_name="D" * 800)["DisplayName"]) == 500
    assert customer_payload(Customer())["DisplayName"] == "Guest customer"


def test_hubspot_properties():
    order = order_from_graphql(_load("simple_paid"))
    props = contact_properties(order.customer, order, RULES)
    assert props == {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace",
                     "phone": "+15555550100", "company": "Analytical Ltd", "address": "1 Engine Way, Suite 2",
                     "city": "Springfield", "state": "IL", "zip": "62701", "country": "US",
                     "lifecyclestage": "customer"}
    no_stage = load_rules({"hubspot": {"lifecycle_stage": None}})
    assert "lifecyclestage" not in contact_properties(Customer(email="A@B.co"), None, no_stage)
    assert contact_properties(Customer(email="A@B.co"), None, no_stage) == {"email": "a@b.co"}


# --- rules ------------------------------------------------------------------------------------------------

def test_default_rules():
    rules = load_rules()
    assert rules.items.match_by == ("sku", "name")
    assert rules.items.when_missing == "create"
    assert rules.items.income_account == "Sales of Product Income"
    assert rules.items.type == "NonInventory"
    assert rules.shipping.item == "Shipping"
    assert rules.discounts.mode == "line"
    assert rules.tax.mode == "total_tax"
    assert rules.invoice.doc_number == "{number}" and rules.invoice.prefix == ""
    assert rules.customers.match_by == ("email", "display_name")
    assert rules.hubspot.lifecycle_stage == "customer"
    assert load_rules(rules.to_dict()) == rules


def test_overrides_merge_onto_defaults():
    rules = load_rules({"items": {"when_missing": "fallback", "fallback_item": "Misc"}})
    assert rules.items.when_missing == "fallback" and rules.items.fallback_item == "Misc"
    assert rules.items.match_by == ("sku", "name")  # untouched siblings keep their defaults
    assert rules_from_yaml("items:\n  match_by: [name]\n").items.match_by == ("name",)


@pytest.mark.parametrize("overrides, message", [
    ({"items": {"when_missing": "maybe"}}, "items.when_missing: must be one of create, fallback, fail"),
    ({"items": {"when_missing": "fallback"}}, "items.fallback_item: is required"),
    ({"items": {"match_by": ["sku", "colour"]}}, "items.match_by: 'colour' is not one of sku, name"),
    ({"items": {"match_by": []}}, "items.match_by: must be a non-empty list"),
    ({"items": {"type": "Inventory"}}, "items.type: must be one of NonInventory, Service"),
    ({"items": {"income_account": ""}}, "items.income_account:"),
    ({"items": {"colour": "red"}}, "items.colour: unknown setting"),
    ({"shipping": {"item": ""}}, "shipping.item: must be a non-empty name"),
    ({"shipping": {"item": "A:B"}}, "shipping.item: must not contain ':'"),
    ({"discounts": {"mode": "per_line"}}, "discounts.mode: must be one of line"),
    ({"tax": {"mode": "vat"}}, "tax.mode: must be one of total_tax, line_tax_codes"),
    ({"invoice": {"prefix": "A-VERY-LONG-PREFIX-"}}, "invoice.prefix: cannot fit QuickBooks' 21-character"),
    ({"invoice": {"doc_number": "{order}"}}, "invoice.doc_number: unknown placeholder {order}"),
    ({"invoice": {"doc_number": "INV"}}, "invoice.doc_number: must contain"),
    ({"invoice": {"doc_number": "{number"}}, "invoice.doc_number: is not a valid template"),
    ({"invoice": {"prefix": 7}}, "invoice.prefix: must be text"),
    ({"customers": {"match_by": ["phone"]}}, "customers.match_by: 'phone' is not one of email, display_name"),
    ({"hubspot": {"lifecycle_stage": "big customer"}}, "hubspot.lifecycle_stage:"),
    ({"hubspot": "customer"}, "hubspot: must be a mapping"),
    ({"warehouse": {}}, "warehouse: unknown section"),
    ("items", "(rules): must be a mapping"),
])
def test_invalid_rules_name_the_field(overrides, message):
    with pytest.raises(RulesError) as info:
        load_rules(overrides)
    assert str(info.value).startswith(message), str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_yaml():
    with pytest.raises(RulesError, match=r"^\(yaml\): not valid YAML"):
        rules_from_yaml("items: [unclosed")


# --- property: any consistent order balances ----------------------------------------------------------

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


# --- issue 3: rules for items, tips, gift cards, payments, currency, HubSpot ---------------------------------

def test_new_rule_defaults():
    rules = load_rules()
    assert (rules.tips.item, rules.fees.item, rules.gift_cards.item) == ("Tips", "Fees", "Gift Cards")
    assert rules.gift_cards.account == "Gift Card Liability" and rules.tips.account is None
    assert rules.items.map == {} and rules.items.patterns == ()
    assert rules.tax.codes == {} and rules.tax.exempt_code == "Exempt"
    assert rules.payments.account_for("shopify_payments") == "Undeposited Funds"
    assert rules.payments.account_for("Some New Gateway") == "Undeposited Funds"
    assert rules.currency.multi_currency == "auto"
    assert rules.hubspot.properties[0] == "email" and len(rules.hubspot.properties) == 10
    assert rules.hubspot.custom == {}
    tuned = load_rules({"tax": {"mode": "line_tax_codes", "codes": {20: "20.0% S", "7.50": "R", "GST": "G"}},
                        "payments": {"deposit_accounts": {"Cash on Delivery (COD)": "Cash drawer"}},
                        "hubspot": {"custom": {"total_spent": "o2c_total_spent"}}})
    assert tuned.tax.codes == {"20": "20.0% S", "7.5": "R", "GST": "G"}
    assert tuned.payments.account_for("Cash on Delivery (COD)") == "Cash drawer"
    assert tuned.payments.deposit_accounts["paypal"] == "Undeposited Funds"  # defaults merge
    assert load_rules(tuned.to_dict()) == tuned


@pytest.mark.parametrize("overrides, message", [
    ({"items": {"map": ["TS-1"]}}, "items.map: must be a mapping"),
    ({"items": {"map": {"TS-1": "A:B"}}}, "items.map.TS-1: must not contain ':'"),
    ({"items": {"patterns": [{"match": "TS-*"}]}}, "items.patterns[0]: must be {match:"),
    ({"items": {"patterns": [{"match": "", "item": "T"}]}}, "items.patterns[0].match: must be a non-empty glob"),
    ({"items": {"patterns": {"match": "x"}}}, "items.patterns: must be a list"),
    ({"tips": {"item": ""}}, "tips.item: must be a non-empty name"),
    ({"gift_cards": {"account": "L" * 101}}, "gift_cards.account: must be at most 100 characters"),
    ({"discounts": {"mode": "per_unit"}}, "discounts.mode: must be one of line, unit_price"),
    ({"tax": {"codes": {"20": ""}}}, "tax.codes.20: must be a non-empty tax code name"),
    ({"tax": {"codes": {"20": "A", "20.0": "B"}}}, "tax.codes.20.0: repeats the rate 20%"),
    ({"tax": {"exempt_code": None}}, "tax.exempt_code: must be a non-empty tax code name"),
    ({"payments": {"deposit_accounts": {"paypal": "Bank:PayPal"}}}, "payments.deposit_accounts.paypal: must not"),
    ({"payments": {"default_account": ""}}, "payments.default_account: must be a non-empty account name"),
    ({"currency": {"multi_currency": "yes"}}, "currency.multi_currency: must be one of auto, off"),
    ({"hubspot": {"properties": ["firstname"]}}, "hubspot.properties: must include email"),
    ({"hubspot": {"properties": ["email", "age"]}}, "hubspot.properties: 'age' is not one of"),
    ({"hubspot": {"custom": {"lifetime_value": "x"}}}, "hubspot.custom.lifetime_value: unknown figure"),
    ({"hubspot": {"custom": {"total_spent": "Total Spent"}}}, "hubspot.custom.total_spent: must be a HubSpot"),
    ({"hubspot": {"custom": {"total_spent": "email"}}}, "hubspot.custom.total_spent: must not overwrite"),
    ({"hubspot": {"custom": {"total_spent": "o2c_x", "order_count": "o2c_x"}}}, "hubspot.custom.order_count: writes"),
])
def test_invalid_new_rules_name_the_field(overrides, message):
    with pytest.raises(RulesError) as info:
        load_rules(overrides)
    assert str(info.value).startswith(message), str(info.value)


def test_referenced_objects_name_every_quickbooks_object():
    rules = load_rules({"items": {"when_missing": "fallback", "fallback_item": "Misc", "map": {"TS-1": "Tees"},
                                  "patterns": [{"match": "MUG-*", "item": "Mugs"}]},
                        "tips": {"account": "Tips Payable"},
                        "tax": {"mode": "line_tax_codes", "codes": {"20": "20.0% S"}},
                        "payments": {"deposit_accounts": {"paypal": "PayPal Bank"}}})
    refs = {(r.kind, r.name, r.field): r for r in referenced_objects(rules)}
    for key in [("Item", "Misc", "items.fallback_item"), ("Item", "Tees", "items.map.TS-1"),
                ("Item", "Mugs", "items.patterns[0].item"), ("Item", "Shipping", "shipping.item"),
                ("Item", "Tips", "tips.item"), ("Account", "Tips Payable", "tips.account"),
                ("Item", "Gift Cards", "gift_cards.item"), ("TaxCode", "20.0% S", "tax.codes.20"),
                ("TaxCode", "Exempt", "tax.exempt_code"),
                ("Account", "PayPal Bank", "payments.deposit_accounts.paypal"),
                ("Account", "Undeposited Funds", "payments.default_account"),
                ("Account", "Sales of Product Income", "items.income_account")]:
        assert key in refs, key
    liability = refs[("Account", "Gift Card Liability", "gift_cards.account")]
    assert liability.account_type == "Other Current Liability" and liability.creatable
    assert refs[("Item", "Shipping", "shipping.item")].creatable
    assert not refs[("Item", "Tees", "items.map.TS-1")].creatable
    assert not any(r.kind == "TaxCode" for r in referenced_objects(load_rules()))


def _line(sku, title="Thing", **kw):
    return OrderLine(source_id="1", sku=sku, title=title, quantity=1, unit_price=Decimal("1.00"), **kw)


def test_item_target_by_rule():
    rules = load_rules({"items": {"map": {"TS-1": "Tees"}, "patterns": [{"match": "mug-*", "item": "Mugs"},
                                                                         {"match": "*", "item": "Other"}]}})
    t = item_target(_line("TS-1"), rules)
    assert (t.name, t.how, t.create, t.key, t.lookups) == ("Tees", "map", False, "TS-1", (("Name", "Tees"),))
    assert item_target(_line("ts-1"), rules).how == "map"                      # SKUs compare case-insensitively
    assert (item_target(_line("MUG-RED"), rules).name, item_target(_line("MUG-RED"), rules).rule) == (
        "Mugs", "items.patterns[0]")
    assert item_target(_line("HAT"), rules).name == "Other"
    plain = load_rules()
    t = item_target(_line("A:B 1", "A: thing"), plain)
    assert (t.name, t.how, t.create, t.lookups) == ("A-B 1", "sku", True, (("Sku", "A:B 1"), ("Name", "A-B 1")))
    t = item_target(_line(None, "Loose  tea"), plain)
    assert (t.name, t.how, t.key, t.lookups) == ("Loose tea", "name", "title:Loose  tea", (("Name", "Loose tea"),))
    gift = item_target(_line("GC-1", is_gift_card=True), plain)
    assert (gift.name, gift.how, gift.account, gift.type) == ("Gift Cards", "gift_card", "Gift Card Liability",
                                                               "Service")
    fb = load_rules({"items": {"match_by": ["sku"], "when_missing": "fallback", "fallback_item": "Misc"}})
    assert (item_target(_line(None), fb).how, item_target(_line(None), fb).name) == ("fallback", "Misc")
    t = item_target(_line("X-1"), fb)
    assert (t.how, t.create, t.fallback, t.lookups) == ("sku", False, "Misc", (("Sku", "X-1"),))
    assert item_target(_line("X-1"), load_rules({"items": {"when_missing": "fail"}})).create is False
    assert item_target(ShippingLine(title="Std", amount=Decimal("1")), plain).name == "Shipping"
    tip = item_target(FeeLine(title="Tip", amount=Decimal("1"), kind="tip"), plain)
    assert (tip.key, tip.name, tip.rule) == ("tip", "Tips", "tips.item")
    assert item_target(FeeLine(title="Handling", amount=Decimal("1")), plain).name == "Fees"


def test_required_items_cover_the_invoice():
    node = build_order(lines=[{"sku": "A"}, {"sku": "A"}, {"sku": "GC", "gift": True, "taxable": False},
                              {"sku": None, "title": "Tip", "price": "3.00", "tip": True, "taxable": False}],
                       shipping=[{"price": "5.00"}])
    order = order_from_graphql(node)
    targets = required_items(order, RULES)
    assert set(targets) == {"A", "GC", "shipping", "tip"}
    assert targets["GC"].name == "Gift Cards" and targets["tip"].name == "Tips"


def test_split_net_keeps_amount_equal_qty_times_price():
    q = Decimal("0.01")
    assert split_net(Decimal("29.00"), 3, q) == [(1, Decimal("9.66")), (2, Decimal("9.67"))]
    assert split_net(Decimal("45.00"), 2, q) == [(2, Decimal("22.50"))]
    assert split_net(Decimal("0.01"), 3, q) == [(2, Decimal("0.00")), (1, Decimal("0.01"))]
    assert split_net(Decimal("2900"), 3, Decimal("1")) == [(1, Decimal("966")), (2, Decimal("967"))]
    for net, qty in [(Decimal("100.00"), 7), (Decimal("0.05"), 250), (Decimal("19.99"), 4)]:
        parts = split_net(net, qty, q)
        assert sum(n * p for n, p in parts) == net and sum(n for n, _ in parts) == qty and len(parts) <= 2


def test_unit_price_mode_invoice():
    rules = load_rules({"discounts": {"mode": "unit_price"}})
    node = build_order(lines=[{"sku": "SOCK", "price": "10.00", "qty": 3, "discounts": ["0.40", "0.60"]}],
                       shipping=[{"price": "5.00", "discounts": ["5.00"]}])
    order = order_from_graphql(node)
    payload = _invoice(order, rules)
    lines = [(ln["SalesItemLineDetail"]["Qty"], ln["SalesItemLineDetail"]["UnitPrice"], ln["Amount"])
             for ln in payload["Line"]]
    assert lines == [(1, Decimal("9.66"), Decimal("9.66")), (2, Decimal("9.67"), Decimal("19.34")),
                     (1, Decimal("0.00"), Decimal("0.00"))]
    assert not any(ln["DetailType"] == "DiscountLineDetail" for ln in payload["Line"])
    check_invoice_total(order, payload)
    order.lines[0].quantity = 0
    with pytest.raises(MappingError, match="cannot be taken off its unit price") as info:
        _invoice(order, rules)
    assert info.value.rule == "discounts.mode"


# --- Shopify: tips, gift cards, refunds, currencies, buyer figures ------------------------------------------

def test_shopify_tip_lines_become_fee_lines():
    node = build_order(lines=[{"sku": "MEAL", "price": "40.00"},
                              {"sku": None, "title": "Tip", "price": "5.00", "tip": True, "taxable": False}])
    order = order_from_graphql(node)
    assert [ln.sku for ln in order.lines] == ["MEAL"]
    assert order.fee_lines == [FeeLine(title="Tip", amount=Decimal("5.00"), kind="tip",
                                       source_path="Shopify lineItems[1]")]
    with pytest.raises(MappingError, match="tip") as info:
        _invoice(order)
    assert info.value.rule == "tips.item"
    payload = invoice_payload(order, customer_id="1", item_ids={"MEAL": "3"}, shipping_item_id=None, tip_item_id="8",
                              rules=RULES)
    assert payload["Line"][1]["SalesItemLineDetail"]["ItemRef"] == {"value": "8"}
    check_invoice_total(order, payload)
    # a line titled "Tip" on an order without tips stays a product line
    plain = build_order(lines=[{"sku": None, "title": "Tip", "price": "5.00", "tip": True}])
    plain["totalTipReceivedSet"] = _bag(Decimal(0), "USD", "USD", Decimal(1))
    assert [ln.title for ln in order_from_graphql(plain).lines] == ["Tip"]


def test_shopify_gift_cards_and_gift_card_payments():
    node = build_order(lines=[{"sku": "GC-50", "title": "Gift card", "price": "50.00", "gift": True,
                               "taxable": False}, {"sku": "TEE", "price": "20.00"}])
    node["transactions"] = [
        {"id": "gid://shopify/OrderTransaction/1", "kind": "SALE", "status": "SUCCESS", "gateway": "gift_card",
         "processedAt": "2024-05-01T10:00:00Z", "test": False, "amountSet": _bag(Decimal(30), "USD", "USD", ONE)},
        {"id": "gid://shopify/OrderTransaction/2", "kind": "SALE", "status": "SUCCESS", "gateway": "paypal",
         "processedAt": "2024-05-01T10:00:00Z", "test": False, "amountSet": _bag(Decimal(40), "USD", "USD", ONE)}]
    order = order_from_graphql(node)
    assert order.lines[0].is_gift_card
    payload = _invoice(order)
    assert payload["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
    rules = load_rules({"payments": {"deposit_accounts": {"gift_card": "Gift Card Clearing", "paypal": "PayPal"}}})
    assert deposit_account_for(order, rules) == "PayPal"
    assert [(s.account, s.amount, s.gateways) for s in payment_splits(order, rules)] == [
        ("Gift Card Clearing", Decimal("30.00"), ("gift_card",)), ("PayPal", Decimal("40.00"), ("paypal",))]
    assert [s.account for s in payment_splits(order, rules, Decimal("10.00"))] == ["PayPal"]  # partial: one payment


def test_shopify_refunded_order_invoices_the_sale():
    node = build_order(lines=[{"sku": "SHIRT", "price": "15.00", "qty": 2}], status="PARTIALLY_REFUNDED")
    node["currentTotalPriceSet"] = _bag(Decimal("15.00"), "USD", "USD", Decimal(1))
    node["totalRefundedSet"] = _bag(Decimal("15.00"), "USD", "USD", Decimal(1))
    node["lineItems"]["nodes"][0]["currentQuantity"] = 1
    order = order_from_graphql(node)
    assert (order.total, order.total_refunded, order.lines[0].current_quantity) == (
        Decimal("30.00"), Decimal("15.00"), 1)
    assert order.is_paid
    check_invoice_total(order, _invoice(order))
    order.total = Decimal("15.00")  # as if the invoice had to match the current total
    with pytest.raises(MappingError, match="15.00 was refunded"):
        check_invoice_total(order, _invoice(order))


def test_foreign_currency_exchange_rate_and_customer():
    order = order_from_graphql(_load("foreign_currency"))
    assert (order.exchange_rate, order.exchange_rate_currency, order.presentment_currency) == (
        Decimal("1.08"), "USD", "USD")
    legacy = _invoice(order)
    assert "ExchangeRate" not in legacy  # the home currency was not given
    payload = invoice_payload(order, customer_id="58", item_ids=_item_ids(order), shipping_item_id="7",
                              rules=RULES, home_currency="USD")
    assert payload["CurrencyRef"] == {"value": "EUR"} and payload["ExchangeRate"] == Decimal("1.08")
    assert invoice_payload(order, customer_id="58", item_ids=_item_ids(order), shipping_item_id="7", rules=RULES,
                           home_currency="USD", exchange_rate=Decimal("1.1"))["ExchangeRate"] == Decimal("1.1")
    assert "ExchangeRate" not in invoice_payload(order, customer_id="58", item_ids=_item_ids(order),
                                                 shipping_item_id="7", rules=RULES, home_currency="EUR")
    with pytest.raises(MappingError, match="no EUR→GBP exchange rate is known") as info:
        invoice_payload(order, customer_id="58", item_ids=_item_ids(order), shipping_item_id="7", rules=RULES,
                        home_currency="GBP")
    assert info.value.rule == "currency"
    off = load_rules({"currency": {"multi_currency": "off"}})
    with pytest.raises(MappingError, match="multi_currency is off"):
        invoice_payload(order, customer_id="58", item_ids=_item_ids(order), shipping_item_id="7", rules=off,
                        home_currency="USD")
    assert customer_payload(order.customer, currency="eur")["CurrencyRef"] == {"value": "EUR"}
    pay = payment_payload(order, customer_id="58", invoice_id="9", amount=Decimal("110.00"),
                          deposit_account_id="35", rules=RULES, home_currency="USD")
    assert pay["ExchangeRate"] == Decimal("1.08") and pay["DepositToAccountRef"] == {"value": "35"}


def test_customer_lifetime_figures_from_shopify():
    node = build_order(lines=[{"price": "10.00"}])
    node["customer"]["numberOfOrders"] = "7"
    node["customer"]["amountSpent"] = {"amount": "321.5", "currencyCode": "USD"}
    c = order_from_graphql(node).customer
    assert (c.number_of_orders, c.amount_spent) == (7, Decimal("321.50"))
    del node["customer"]["numberOfOrders"], node["customer"]["amountSpent"]
    c = order_from_graphql(node).customer
    assert (c.number_of_orders, c.amount_spent) == (None, None)


def test_order_round_trips_with_new_fields():
    node = build_order(lines=[{"sku": "A", "price": "5.00"},
                              {"sku": None, "title": "Tip", "price": "1.00", "tip": True, "taxable": False}],
                       currency="EUR", presentment="USD", fx="1.1")
    order = order_from_graphql(node)
    again = Order.from_dict(order.to_dict())
    assert again == order
    assert again.customer.amount_spent == order.customer.amount_spent and again.fee_lines[0].kind == "tip"


# --- payments, HubSpot, traces --------------------------------------------------------------------------------

def test_payment_deposit_account_and_trace():
    order = order_from_graphql(_load("simple_paid"))
    payload, traces = explain_payment(order, customer_id="58", invoice_id="130", amount=Decimal("64.80"),
                                      deposit_account_id="4")
    assert payload["DepositToAccountRef"] == {"value": "4"}
    assert payload == {**payment_payload(order, customer_id="58", invoice_id="130", amount=Decimal("64.80")),
                       "DepositToAccountRef": {"value": "4"}}
    by_path = {t.path: t.source for t in traces}
    assert by_path["TotalAmt"] == "total (Shopify totalPriceSet)"
    assert "shopify_payments" in by_path["DepositToAccountRef"]
    assert deposit_account_for(order, RULES) == "Undeposited Funds"
    pending = order_from_graphql(_load("pending_unpaid"))
    assert payment_splits(pending, RULES)[0].account == "Undeposited Funds"


def test_hubspot_properties_rules_and_stats():
    order = order_from_graphql(_load("simple_paid"))
    rules = load_rules({"hubspot": {"properties": ["email", "firstname", "city"],
                                    "custom": {"total_spent": "o2c_total_spent", "order_count": "o2c_order_count",
                                               "last_order_number": "o2c_last_order"}}})
    stats = BuyerStats(order_count=3, total_spent=Decimal("99.5"))
    props, traces = explain_contact(order.customer, order, rules, stats)
    assert props == {"email": "ada@example.com", "firstname": "Ada", "city": "Springfield",
                     "lifecyclestage": "customer", "o2c_total_spent": "99.5", "o2c_order_count": "3",
                     "o2c_last_order": "#1001"}
    by_path = {t.path: t.source for t in traces}
    assert by_path["city"] == "customer.billing_address.city"
    assert by_path["o2c_order_count"].startswith("stats.order_count")
    assert contact_properties(order.customer, order, rules, None)["o2c_total_spent"] == "64.80"  # the store's figure
    assert contact_properties(order.customer, order, rules) == props | {"o2c_total_spent": "64.80",
                                                                       "o2c_order_count": "1"}


def test_explain_invoice_traces_every_amount():
    order = order_from_graphql(_load("line_discount"))
    payload, traces = explain_invoice(order, RULES, customer_id="58", item_ids=_item_ids(order), shipping_item_id="7")
    assert payload == _invoice(order)
    by_path = {t.path: t for t in traces}
    first = by_path["Line[0].Amount"]
    assert first.value == str(payload["Line"][0]["Amount"])
    assert first.source.startswith("lines[0].unit_price × lines[0].quantity (order line ")
    assert "Shopify lineItems[0]" in first.source
    discount = next(i for i, ln in enumerate(payload["Line"]) if ln["DetailType"] == "DiscountLineDetail")
    assert "discount" in by_path[f"Line[{discount}].Amount"].source
    assert by_path["TxnTaxDetail.TotalTax"].source == "total_tax (Shopify totalTaxSet)"


# --- property: every rule mode keeps the invoice equal to the order -----------------------------------------

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
