"""The many-orders GraphQL documents validate against Shopify's published schema, stay under Shopify's
1,000-point ceiling for one query, and carry every field of the one-order query."""

from __future__ import annotations

import graphql
import pytest

from connectors import shopify_bulk_queries as bulk
from connectors import shopify_queries
from demo.simulators.shopify import admin_schema
from demo.simulators.shopify_cost import MAX_QUERY_COST, requested_cost
from tests.connectors.test_shopify_queries_schema import _schema


@pytest.mark.parametrize("name", sorted(bulk.DOCUMENTS))
def test_document_validates_against_shopify_schema(name: str) -> None:
    errors = graphql.validate(_schema(), graphql.parse(bulk.DOCUMENTS[name]))
    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize("name", sorted(bulk.DOCUMENTS))
def test_requested_cost_stays_under_the_ceiling(name: str) -> None:
    cost = requested_cost(admin_schema(), bulk.DOCUMENTS[name], {"first": bulk.FULL_PAGE_SIZE})
    assert cost <= MAX_QUERY_COST == bulk.MAX_QUERY_COST


def _fields(doc: str) -> set[str]:
    return {t for t in doc.replace("{", " ").replace("}", " ").split() if t.isidentifier()}


def test_an_order_of_a_page_has_every_field_of_the_order_query() -> None:
    assert _fields(shopify_queries.ORDER_QUERY) - _fields(bulk.ORDER_FIELDS) <= {
        "query", "HubOrder", "order", "linesAfter", "ID", "String", "id_", "after"}


def test_truncated_orders_are_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    page = {"pageInfo": {"hasNextPage": False}, "nodes": []}
    more = {"pageInfo": {"hasNextPage": True}, "nodes": []}
    assert not bulk.truncated({"lineItems": page, "shippingLines": page, "transactions": [], "refunds": []})
    assert bulk.truncated({"lineItems": more})
    assert bulk.truncated({"shippingLines": more})
    assert bulk.truncated({"transactions": [{}] * bulk.TRANSACTIONS})
    assert not bulk.truncated({"transactions": [{}] * (bulk.TRANSACTIONS - 1)})
    assert bulk.truncated({"refunds": [{}] * bulk.REFUNDS})
    monkeypatch.setattr(bulk, "REFUNDS", 3)   # room for a refund, to see its own pages decide
    few = {"refundLineItems": page, "refundShippingLines": page}
    assert not bulk.truncated({"refunds": [few]})
    assert bulk.truncated({"refunds": [{**few, "refundLineItems": more}]}) is True
    assert bulk.truncated({"refunds": [{**few, "refundShippingLines": more}]}) is True
    # without pageInfo (an older shape): a full page may hide more
    assert bulk.truncated({"refunds": [{"refundLineItems": {"nodes": [{}] * bulk.REFUND_LINES}}]})
    with pytest.raises(ValueError):
        bulk.orders_by_id_query(bulk.BY_ID_MAX + 1)
