"""GraphQL documents that fetch many whole orders per call (backfill pages, micro-batches of webhooks).

``ORDER_QUERY`` asks for up to 100 lines, 100 transactions and 10 refunds of one order, which costs about
830 points: fine for one order, far too much for a page (Shopify refuses a query over 1,000 points, and
the bucket refills at 100 points/s on Standard plans). These documents ask for the same fields with small
inner pages (``ORDER_FIELDS``), so a page of ``FULL_PAGE_SIZE`` orders stays under ``MAX_QUERY_COST``.
Shopify charges the *requested* cost up front and refunds the difference to the *actual* cost, so a page
of ordinary orders really costs a few points per order.

An order that does not fit the small pages (``truncated(node)`` says so: more lines, shipping lines,
transactions, refunds or refund lines than asked for) is fetched again on its own with ``ORDER_QUERY``.
Every document here is validated against Shopify's published schema (and its cost checked) in
``tests/test_shopify_bulk_queries_schema.py``.
"""

from __future__ import annotations

from typing import Any

from connectors.shopify_queries import _LINE_ITEM_NODE, _MONEY, _ORDER_HEAD, _SHOP_MONEY, _TAX_LINE

MAX_QUERY_COST = 1000      # Shopify's ceiling for a single query's requested cost
LINES = 8                  # line items per order in a page (more: the order is fetched on its own)
SHIPPING_LINES = 2
TRANSACTIONS = 5
REFUNDS = 2
REFUND_LINES = 3
FULL_PAGE_SIZE = 16        # orders per page: 16 × 57 points + 2 (the simulator's count) < MAX_QUERY_COST
BY_ID_MAX = 16             # orders per ``orders_by_id_query`` call, for the same reason

#: The fields of one order, as ``mappings.shopify.order_from_graphql`` reads them (small inner pages).
ORDER_FIELDS = f"""
fragment HubOrderFields on Order {{
  {_ORDER_HEAD}
  lineItems(first: {LINES}) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {_LINE_ITEM_NODE}
    }}
  }}
  shippingLines(first: {SHIPPING_LINES}) {{
    pageInfo {{ hasNextPage }}
    nodes {{
      id title code
      originalPriceSet {{ {_SHOP_MONEY} }}
      discountedPriceSet {{ {_SHOP_MONEY} }}
      discountAllocations {{ allocatedAmountSet {{ {_SHOP_MONEY} }} }}
      taxLines {{ {_TAX_LINE} }}
    }}
  }}
  transactions(first: {TRANSACTIONS}) {{
    id kind status gateway processedAt test
    amountSet {{ {_MONEY} }}
  }}
  refunds(first: {REFUNDS}) {{
    id legacyResourceId createdAt note
    totalRefundedSet {{ {_MONEY} }}
    refundLineItems(first: {REFUND_LINES}) {{
      nodes {{ quantity lineItem {{ id }} subtotalSet {{ {_MONEY} }} totalTaxSet {{ {_MONEY} }} }}
    }}
    refundShippingLines(first: 2) {{
      nodes {{ subtotalAmountSet {{ {_MONEY} }} taxAmountSet {{ {_MONEY} }} }}
    }}
  }}
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
    def more(conn: Any) -> bool:
        return bool(((conn or {}).get("pageInfo") or {}).get("hasNextPage"))

    refunds = node.get("refunds") or []
    return (more(node.get("lineItems")) or more(node.get("shippingLines"))
            or len(node.get("transactions") or []) >= TRANSACTIONS or len(refunds) >= REFUNDS
            or any(len((r.get("refundLineItems") or {}).get("nodes") or []) >= REFUND_LINES
                   for r in refunds if isinstance(r, dict)))


#: The documents above (``orders_by_id_query`` at its smallest and largest), for the schema test.
DOCUMENTS = {
    "ORDERS_FULL_PAGE_QUERY": ORDERS_FULL_PAGE_QUERY,
    "ORDERS_BY_ID_QUERY_1": orders_by_id_query(1),
    "ORDERS_BY_ID_QUERY_MAX": orders_by_id_query(BY_ID_MAX),
}
