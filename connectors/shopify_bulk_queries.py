"""GraphQL documents that fetch many whole orders per call (backfill pages, micro-batches of webhooks).

Shopify prices a query before running it and refuses one whose requested cost is above 1,000 points
(``MAX_COST_EXCEEDED``), whole: so a document over many orders must fit at its largest, with every nested
page counted at its full size (``connectors.shopify_queries`` gives the rules and the cost of one node of
each kind). These documents ask for the fields of ``ORDER_QUERY`` with small inner pages (``ORDER_FIELDS``:
``LINES`` lines, ``SHIPPING_LINES`` shipping lines, ``TRANSACTIONS`` transactions, ``REFUNDS`` refunds of
``REFUND_LINES`` lines), which prices one order at ``ORDER_COST`` points; the number of orders per call is
derived from it: ``BY_ID_MAX`` orders by id, ``FULL_PAGE_SIZE`` per page of ``orders(first:)`` (which adds
its own connection and page info). ``tests/test_shopify_query_cost.py`` prices both documents at those
sizes with Shopify's rules (``demo.simulators.shopify_cost``) and checks ``ORDER_COST`` against it.

Shopify charges the *requested* cost up front and refunds the difference to the *actual* cost, so a
page of ordinary orders really costs a few points per order. Smaller inner pages fit more orders per
call, at the price of fetching again, on its own with ``ORDER_QUERY`` and its follow-up pages, an order
that does not fit them (``truncated(node)`` says so: more lines, shipping lines or refund lines than a
page holds, or as many transactions or refunds as were asked for).
"""

from __future__ import annotations

from typing import Any

from connectors.shopify_queries import (
    _LINE_ITEM_NODE,
    _ORDER_HEAD,
    _SHIPPING_LINE_NODE,
    _TRANSACTION,
    MAX_QUERY_COST,
    PAGED,
    order_cost,
    order_selection,
)

LINES = 4                  # line items per order in a page (more: the order is fetched on its own)
SHIPPING_LINES = 1
TRANSACTIONS = 3
REFUNDS = 1
REFUND_LINES = 2
REFUND_SHIPPING_LINES = 1

_SIZES = {"lines": LINES, "shipping_lines": SHIPPING_LINES, "transactions": TRANSACTIONS, "refunds": REFUNDS,
          "refund_lines": REFUND_LINES, "refund_shipping_lines": REFUND_SHIPPING_LINES}
ORDER_COST = order_cost(**_SIZES)                          # requested cost of one order of ORDER_FIELDS
BY_ID_MAX = MAX_QUERY_COST // ORDER_COST                   # orders per ``orders_by_id_query`` call
FULL_PAGE_SIZE = (MAX_QUERY_COST - PAGED) // ORDER_COST    # orders per page of ``ORDERS_FULL_PAGE_QUERY``

#: The fields of one order, as ``mappings.shopify.order_from_graphql`` reads them (small inner pages).
ORDER_FIELDS = f"""
fragment HubOrderFields on Order {{{order_selection(**_SIZES)}
}}
"""

#: A page of whole orders for backfill, oldest creation first. Variables: ``first`` (≤ ``FULL_PAGE_SIZE``),
#: ``after`` (cursor or null), ``query`` (search syntax, e.g. ``"created_at:>='2024-01-01T00:00:00Z'"``).
ORDERS_FULL_PAGE_QUERY = """
query HubOrdersFullPage($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...HubOrderFields }
  }
}
""" + ORDER_FIELDS


def orders_by_id_query(count: int) -> str:
    """A document fetching ``count`` (1…``BY_ID_MAX``) orders by gid: variables ``id0``…``id{count-1}``,
    results under the aliases ``o0``…; an order that does not exist comes back null."""
    if not 1 <= count <= BY_ID_MAX:
        raise ValueError(f"fetch 1 to {BY_ID_MAX} orders per query, not {count}")
    params = ", ".join(f"$id{i}: ID!" for i in range(count))
    fields = "\n".join(f"  o{i}: order(id: $id{i}) {{ ...HubOrderFields }}" for i in range(count))
    return f"query HubOrdersById({params}) {{\n{fields}\n}}\n" + ORDER_FIELDS


def truncated(node: dict[str, Any]) -> bool:
    """Whether an order of these documents left something out (then fetch it alone with ``ORDER_QUERY``)."""
    def more(conn: Any, asked: int) -> bool:
        if not isinstance(conn, dict):
            return False
        if isinstance(conn.get("pageInfo"), dict):
            return bool(conn["pageInfo"].get("hasNextPage"))
        return len(conn.get("nodes") or []) >= asked

    refunds = node.get("refunds") or []
    return (more(node.get("lineItems"), LINES) or more(node.get("shippingLines"), SHIPPING_LINES)
            or len(node.get("transactions") or []) >= TRANSACTIONS or len(refunds) >= REFUNDS
            or any(more(r.get("refundLineItems"), REFUND_LINES)
                   or more(r.get("refundShippingLines"), REFUND_SHIPPING_LINES)
                   for r in refunds if isinstance(r, dict)))


def bulk_orders_query(search: str) -> str:
    """The query of a bulk operation over every order matching ``search`` (Shopify search syntax), oldest
    creation first: the fields of ``ORDER_FIELDS`` in the shape bulk operations take (the values inline, no
    variables; connections without ``first``, which then return all their nodes; four connections, two levels
    deep, none inside a list field). ``connectors.shopify_bulk`` puts each order back together from the
    JSONL lines into the shape ``mappings.shopify.order_from_graphql`` reads. Refunds come as a list of ids
    only (their lines are connections inside a list, which bulk operations do not take): an order with a
    refund is fetched on its own with ``ORDER_QUERY``, as a truncated order of a page is."""
    quoted = search.replace("\\", "\\\\").replace('"', '\\"')
    return f"""{{
  orders(query: "{quoted}", sortKey: CREATED_AT) {{
    edges {{ node {{{_ORDER_HEAD}
    paymentTerms {{ id paymentTermsType dueInDays paymentSchedules {{ edges {{ node {{ id dueAt }} }} }} }}
    lineItems {{ edges {{ node {{ {_LINE_ITEM_NODE}
    }} }} }}
    shippingLines {{ edges {{ node {{ {_SHIPPING_LINE_NODE}
    }} }} }}
    transactions {{ {_TRANSACTION} }}
    refunds {{ id }}
    }} }}
  }}
}}
"""


#: How many orders match a search, up to ``limit`` (then ``precision: AT_LEAST``). Variables: ``query``, ``limit``.
ORDERS_COUNT_QUERY = """
query HubOrdersCount($query: String, $limit: Int) {
  ordersCount(query: $query, limit: $limit) { count precision }
}
"""

#: Where each kind of child line of ``bulk_orders_query`` goes in its order (by the type in its gid).
BULK_CHILDREN = {"LineItem": ("lineItems",), "ShippingLine": ("shippingLines",),
                 "PaymentSchedule": ("paymentTerms", "paymentSchedules")}

#: The documents above (``orders_by_id_query`` at its smallest and largest), for the schema and cost tests.
DOCUMENTS = {
    "ORDERS_FULL_PAGE_QUERY": ORDERS_FULL_PAGE_QUERY,
    "ORDERS_BY_ID_QUERY_1": orders_by_id_query(1),
    "ORDERS_BY_ID_QUERY_MAX": orders_by_id_query(BY_ID_MAX),
    "ORDERS_COUNT_QUERY": ORDERS_COUNT_QUERY,
}
