"""The merchant's mapping rules: defaults, overrides, validation naming the field, referenced QuickBooks objects."""

from __future__ import annotations

import pytest

from mappings.rules import RulesError, load_rules, referenced_objects, rules_from_yaml


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
    ({"items": {"match_by": ["sku", "colour"]}}, "items.match_by: \"colour\" is not one of sku, name"),
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
    ({"customers": {"match_by": ["phone"]}}, "customers.match_by: \"phone\" is not one of email, display_name"),
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
    ({"hubspot": {"properties": ["email", "age"]}}, "hubspot.properties: \"age\" is not one of"),
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
