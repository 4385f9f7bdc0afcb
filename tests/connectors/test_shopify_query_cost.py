"""Shopify's query cost: the calculator against hand-computed examples of Shopify's documented rules, the
hub's per-node cost figures against the calculator, and every document the hub sends priced at its
largest page sizes under Shopify's 1,000-point ceiling."""

from __future__ import annotations

import re
from pathlib import Path

import graphql
import pytest

from connectors import shopify as shopify_connector
from connectors import shopify_bulk
from connectors import shopify_bulk_queries as bulk
from connectors import shopify_holds as holds
from connectors import shopify_oauth as shopify_api
from connectors import shopify_payouts as payouts
from connectors import shopify_queries as q
from demo.simulators.shopify import admin_schema
from demo.simulators.shopify_cost import MAX_QUERY_COST, CostError, actual_cost, requested_cost

REPO_ROOT = Path(__file__).resolve().parents[2]


def cost(document: str, variables: dict | None = None) -> int:
    return requested_cost(admin_schema(), document, variables)


# -- the rules, on examples small enough to count by hand ------------------------------------------
@pytest.mark.parametrize(("document", "expected"), [
    # Shopify's engineering post: shop is an object (1), its scalars are free
    ("{ shop { id name timezoneOffsetMinutes customerAccounts } }", 1),
    # a connection: 2 + first × one node (the node object 1, its scalars 0)
    ("{ orders(first: 50) { nodes { id name } } }", 52),
    ("{ orders(first: 50) { edges { cursor node { id name } } } }", 52),
    # pageInfo is an object: 1 (the more expensive reading)
    ("{ orders(first: 50) { pageInfo { hasNextPage } nodes { id } } }", 53),
    # `last` sizes a connection like `first`; none of them: Shopify's largest page
    ("{ orders(last: 3) { nodes { id } } }", 5),
    ("{ orders { nodes { id } } }", 252),
    # nested connections multiply: 2 + 10 × (order 1 + lineItems (2 + 5 × line 1))
    ("{ orders(first: 10) { nodes { lineItems(first: 5) { nodes { id } } } } }", 82),
    # community.shopify.dev ("Unexpectedly low GraphQL query cost"): 503 by the documented linear rule;
    # Shopify answered 25 (its log-scaled page sizes), which is below it as it must be
    ('{ product(id: "gid://shopify/Product/1") { variants(first: 250) '
     "{ nodes { inventoryItem { id tracked } } } } }", 503),
    # a money bag is an object, so is each MoneyV2 in it
    ('{ order(id: "gid://shopify/Order/1") { totalPriceSet { shopMoney { amount } presentmentMoney { amount } } } }',
     4),
    # plain lists: multiplied by `first` where given, one item where there is no size
    ('{ order(id: "gid://shopify/Order/1") { transactions(first: 5) { amountSet { shopMoney { amount } } } } }',
     1 + 5 * 3),
    ('{ order(id: "gid://shopify/Order/1") { taxLines { priceSet { shopMoney { amount } } } } }', 1 + 3),
    ('{ order(id: "gid://shopify/Order/1") { lineItems(first: 1) { nodes { '
     "discountAllocations { allocatedAmountSet { shopMoney { amount } } } } } } }", 1 + 2 + (1 + 3)),
    # nodes(ids:) costs the sum of its nodes
    ('{ nodes(ids: ["gid://shopify/Order/1", "gid://shopify/Order/2", "gid://shopify/Order/3"]) '
     "{ id ... on Order { customer { id } } } }", 3 * 2),
    # a mutation: 10, plus what it returns (payload 1, userErrors 1)
    ('mutation { orderMarkAsPaid(input: {id: "gid://shopify/Order/1"}) { userErrors { message } } }', 12),
    # aliases are separate fields; the same key twice (directly and through a fragment) is one
    ('{ a: shop { id } b: shop { id } }', 2),
    ('{ order(id: "gid://shopify/Order/1") { customer { id } ...F } } '
     "fragment F on Order { customer { email } }", 2),
])
def test_calculator_on_hand_counted_examples(document: str, expected: int) -> None:
    assert graphql.validate(admin_schema(), graphql.parse(document)) == []
    assert cost(document) == expected


def test_abstract_fields_cost_their_most_expensive_possible_selection() -> None:
    # graphql-ruby's "How complexity scoring works" example on Shopify's Admin API: the selections that
    # apply to each concrete type are merged (node.metafield once, not twice) and the maximum is taken:
    # Product: metafield {value, definition} 2 + metafields 2 + 10 × 1 → 14; PriceList: catalog 1.
    document = """{ node(id: "123") { id
        ... on HasMetafields { metafield(key: "a") { value } metafields(first: 10) { nodes { value } } }
        ... on Product { title metafield(key: "a") { definition { description } } }
        ... on PriceList { name catalog { id } } } }"""
    assert cost(document) == 1 + 14


def test_variables_size_pages_and_the_operation_is_chosen_by_name() -> None:
    document = """query A($n: Int) { orders(first: $n) { nodes { id } } }
                  query B { shop { id } }"""
    assert requested_cost(admin_schema(), document, {"n": 7}, "A") == 9
    assert requested_cost(admin_schema(), document, {"n": 7}, "B") == 1
    with pytest.raises(CostError):
        requested_cost(admin_schema(), document, {"n": 7})


def test_actual_cost_counts_what_came_back() -> None:
    document = '{ order(id: "x") { lineItems(first: 30) { nodes { id variant { id } } } } }'
    data = {"order": {"lineItems": {"nodes": [{"id": "1", "variant": {"id": "v"}}, {"id": "2", "variant": None}]}}}
    # the order 1, the connection 2, two lines 1 each, one variant 1, the null variant 1
    assert actual_cost(admin_schema(), document, data) == 1 + 2 + 2 + 1 + 1
    assert actual_cost(admin_schema(), document, {"order": None}) == 1
    assert cost(document) == 1 + 2 + 30 * 2


# -- the hub's cost figures are the calculator's ---------------------------------------------------
def _in_order(body: str) -> int:
    return cost(f'{{ order(id: "gid://shopify/Order/1") {{ {body} }} }}') - q.OBJECT_COST


@pytest.mark.parametrize(("figure", "selection"), [
    ("ORDER_HEAD_COST", q._ORDER_HEAD),
    ("LINE_ITEM_COST", f"lineItems(first: 1) {{ nodes {{ {q._LINE_ITEM_NODE} }} }}"),
    ("SHIPPING_LINE_COST", f"shippingLines(first: 1) {{ nodes {{ {q._SHIPPING_LINE_NODE} }} }}"),
    ("TRANSACTION_COST", f"transactions(first: 1) {{ {q._TRANSACTION} }}"),
    ("REFUND_HEAD_COST", f"refunds(first: 1) {{ {q._REFUND_HEAD} }}"),
])
def test_node_cost_figures_match_the_calculator(figure: str, selection: str) -> None:
    connection = q.CONNECTION_COST if "nodes {" in selection else 0
    assert _in_order(selection) - connection == getattr(q, figure)


def test_refund_line_cost_figures_match_the_calculator() -> None:
    refund = f"refunds(first: 1) {{ id refundLineItems(first: 1) {{ nodes {{ {q._REFUND_LINE_NODE} }} }} }}"
    assert _in_order(refund) - 1 - q.CONNECTION_COST == q.REFUND_LINE_COST
    shipping = (f"refunds(first: 1) {{ id refundShippingLines(first: 1) "
                f"{{ nodes {{ {q._REFUND_SHIPPING_LINE_NODE} }} }} }}")
    assert _in_order(shipping) - 1 - q.CONNECTION_COST == q.REFUND_SHIPPING_LINE_COST


@pytest.mark.parametrize("sizes", [
    dict(lines=bulk.LINES, shipping_lines=bulk.SHIPPING_LINES, transactions=bulk.TRANSACTIONS,
         refunds=bulk.REFUNDS, refund_lines=bulk.REFUND_LINES, refund_shipping_lines=bulk.REFUND_SHIPPING_LINES),
    dict(lines=q.LINES_PAGE_SIZE, shipping_lines=q.SHIPPING_LINES_PAGE_SIZE, transactions=q.TRANSACTIONS_PAGE_SIZE,
         refunds=q.REFUNDS_PAGE_SIZE, refund_lines=q.REFUND_LINES_PAGE_SIZE,
         refund_shipping_lines=q.REFUND_SHIPPING_LINES_PAGE_SIZE),
    dict(lines=1, shipping_lines=0, transactions=0, refunds=0, refund_lines=0, refund_shipping_lines=0),
    dict(lines=7, shipping_lines=3, transactions=11, refunds=5, refund_lines=4, refund_shipping_lines=2),
])
def test_order_cost_is_the_calculators(sizes: dict[str, int]) -> None:
    document = f'{{ order(id: "gid://shopify/Order/1") {{ {q.order_selection(**sizes)} }} }}'
    assert cost(document) == q.order_cost(**sizes)


def test_batches_are_sized_from_the_order_cost() -> None:
    assert bulk.ORDER_COST == cost(bulk.orders_by_id_query(1))
    assert cost(bulk.orders_by_id_query(bulk.BY_ID_MAX)) == bulk.BY_ID_MAX * bulk.ORDER_COST <= MAX_QUERY_COST
    # one more order would not fit: the batch is as large as the ceiling allows
    assert (bulk.BY_ID_MAX + 1) * bulk.ORDER_COST > MAX_QUERY_COST
    page = cost(bulk.ORDERS_FULL_PAGE_QUERY, {"first": bulk.FULL_PAGE_SIZE})
    assert page == q.PAGED + bulk.FULL_PAGE_SIZE * bulk.ORDER_COST <= MAX_QUERY_COST
    assert cost(bulk.ORDERS_FULL_PAGE_QUERY, {"first": bulk.FULL_PAGE_SIZE + 1}) > MAX_QUERY_COST


# -- every document the hub sends, at its largest ----------------------------------------------------
SHOPIFY_MAX_PAGE = 250   # the largest `first` Shopify serves: a `first` the hub does not bound is priced at it

#: (document, the variables that make it largest) for every GraphQL document the hub sends.
SENT = {
    **{name: (doc, {"first": SHOPIFY_MAX_PAGE}) for name, doc in q.DOCUMENTS.items()},
    "ORDERS_PAGE_QUERY": (q.ORDERS_PAGE_QUERY, {"first": q.ORDERS_PAGE_MAX}),
    "ORDERS_FULL_PAGE_QUERY": (bulk.ORDERS_FULL_PAGE_QUERY, {"first": bulk.FULL_PAGE_SIZE}),
    "ORDERS_BY_ID_QUERY_1": (bulk.orders_by_id_query(1), {}),
    "ORDERS_BY_ID_QUERY_MAX": (bulk.orders_by_id_query(bulk.BY_ID_MAX), {}),
    "ORDERS_COUNT_QUERY": (bulk.ORDERS_COUNT_QUERY, {"limit": 250}),
    "BULK_RUN": (shopify_bulk.BULK_RUN, {"query": "{ orders { edges { node { id } } } }"}),
    "BULK_CURRENT": (shopify_bulk.BULK_CURRENT, {}),
    "BULK_OPERATION": (shopify_bulk.BULK_OPERATION, {"id": "gid://shopify/BulkOperation/1"}),
    "ORDER_SUMMARIES_QUERY": (shopify_connector.ORDER_SUMMARIES_QUERY,
                              {"first": shopify_connector.SUMMARIES_PAGE_MAX}),
    "WEBHOOKS_QUERY": (shopify_api.WEBHOOKS_QUERY, {"first": SHOPIFY_MAX_PAGE}),
    "WEBHOOK_CREATE": (shopify_api.WEBHOOK_CREATE, {}),
    "SHOP_QUERY": (shopify_api.SHOP_QUERY, {}),
    "PAYOUTS_QUERY": (payouts.PAYOUTS_QUERY, {"first": payouts.PAYOUTS_PAGE_SIZE}),
    "PAYOUT_TRANSACTIONS_QUERY": (payouts.PAYOUT_TRANSACTIONS_QUERY, {"first": payouts.TRANSACTIONS_PAGE_SIZE}),
    "FULFILLMENT_ORDERS_QUERY": (holds.FULFILLMENT_ORDERS_QUERY, {"first": holds.FULFILLMENT_ORDERS_MAX}),
    "FULFILLMENT_ORDER_HOLD": (holds.FULFILLMENT_ORDER_HOLD, {}),
    "FULFILLMENT_ORDER_RELEASE_HOLD": (holds.FULFILLMENT_ORDER_RELEASE_HOLD, {}),
}


@pytest.mark.parametrize("name", sorted(SENT))
def test_every_document_fits_shopifys_ceiling(name: str) -> None:
    document, variables = SENT[name]
    assert cost(document, variables) <= MAX_QUERY_COST


def test_every_document_in_the_code_is_priced() -> None:
    """A new GraphQL operation anywhere in the hub must join ``SENT`` (and so be priced)."""
    priced = {graphql.get_operation_ast(graphql.parse(doc)).name.value for doc, _ in SENT.values()}
    found = set()
    for folder in ("connectors", "hub", "sync", "mappings"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"\b(?:query|mutation)\s+(Hub\w+)", path.read_text(encoding="utf-8")))
    assert found, "no GraphQL operation found: the scan is broken"
    assert found <= priced, sorted(found - priced)


def test_bulk_documents_price_the_same_as_the_test_registry() -> None:
    for name in bulk.DOCUMENTS:
        assert name in SENT
