"""Canonical ``Order`` → QuickBooks payloads: invoice totals and lines, items by rule, customers, payments and
their traces."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mappings.model import Address, Customer, FeeLine, MappingError, OrderLine, ShippingLine
from mappings.quickbooks import (
    check_invoice_total,
    customer_payload,
    deposit_account_for,
    explain_invoice,
    explain_payment,
    invoice_payload,
    item_target,
    payment_payload,
    payment_splits,
    request_id,
    required_items,
    required_tax_codes,
    sku_key,
    split_net,
)
from mappings.rules import RulesError, load_rules
from mappings.shopify import order_from_graphql
from tests.mappings.builders import RULES, _invoice, _item_ids, _load, build_order


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
    with pytest.raises(MappingError, match='no QuickBooks item for "title:Loose tea"'):
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
