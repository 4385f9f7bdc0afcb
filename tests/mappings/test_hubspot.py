"""Canonical ``Order`` → HubSpot contact properties (rules and buyer figures)."""

from __future__ import annotations

from decimal import Decimal

from mappings.hubspot import BuyerStats, contact_properties, explain_contact
from mappings.model import Customer
from mappings.rules import load_rules
from mappings.shopify import order_from_graphql
from tests.mappings.builders import RULES, _load


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
