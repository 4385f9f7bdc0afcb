"""Shopify GraphQL orders → canonical ``Order``: the recorded fixtures, details, pages of lines, malformed input,
webhook references, tips, gift cards, refunds, currencies and buyer figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mappings.hubspot import contact_properties
from mappings.model import FeeLine, MappingError, Order, cents
from mappings.quickbooks import (
    check_invoice_total,
    customer_payload,
    deposit_account_for,
    invoice_payload,
    invoice_total,
    payment_payload,
    payment_splits,
)
from mappings.rules import load_rules
from mappings.shopify import order_from_graphql, order_ref_from_webhook
from tests.mappings.builders import FIXTURES, ONE, RULES, _bag, _invoice, _item_ids, _load, build_order

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
    from tests.connectors.test_shopify_queries_schema import _schema

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
