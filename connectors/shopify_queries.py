"""GraphQL documents the hub sends to Shopify's Admin API (version 2025-01), sized to Shopify's cost rules.

Every document here is validated against Shopify's published schema (``tests/test_shopify_queries_schema.py``)
and priced, at its largest page sizes, by Shopify's documented cost rules (``tests/test_shopify_query_cost.py``
with ``demo.simulators.shopify_cost``): Shopify refuses any query whose *requested* cost is above 1,000 points
(``MAX_COST_EXCEEDED``), before running it. An object costs 1, a scalar 0, a connection 2 + ``first`` ×
one node, so the money bags (``MoneyBag`` 1 + 1 per ``MoneyV2``) and every nested page count.

Field choice: only what ``mappings.shopify`` reads. Amounts are ``shopMoney`` only, except the four
order totals the mapping derives the exchange rate from (``_MONEY``: shop and presentment amounts).

Paging. ``ORDER_QUERY`` asks for the first page of everything an order has; ``connectors.shopify_order_pages``
follows the rest, so no order is cut short:

* ``lineItems`` (``pageInfo``): further pages with ``ORDER_LINES_QUERY`` ``{"id": <order gid>, "after": …}``,
  passed to ``mappings.shopify.order_from_graphql(node, extra_line_nodes)``;
* ``shippingLines`` (``pageInfo``): ``ORDER_SHIPPING_LINES_QUERY``, merged into the node;
* ``transactions(first:)`` and ``refunds(first:)`` are plain lists (no cursor): as many as asked came back →
  ``ORDER_TRANSACTIONS_QUERY`` (up to ``TRANSACTIONS_MAX``), or ``ORDER_REFUNDS_QUERY`` (the refund ids)
  and ``REFUND_QUERY`` for each refund not yet read;
* a refund's ``refundLineItems`` / ``refundShippingLines`` (``pageInfo``): ``REFUND_LINES_QUERY`` /
  ``REFUND_SHIPPING_LINES_QUERY``.

The ``*_COST`` figures are the requested cost of one node of each selection below by those rules; the hub
sizes its pages with them (``order_cost``, ``connectors.shopify_bulk_queries``) and the cost test derives
each one from the calculator and asserts it.
"""

from __future__ import annotations

API_VERSION = "2025-01"
MAX_QUERY_COST = 1000          # Shopify's ceiling for one query's requested cost

# page sizes of ORDER_QUERY (the first page of everything) and of its follow-up queries
LINES_PAGE_SIZE = 40           # line items in ORDER_QUERY
MORE_LINES_PAGE_SIZE = 80      # line items per ORDER_LINES_QUERY
SHIPPING_LINES_PAGE_SIZE = 5
MORE_SHIPPING_LINES_PAGE_SIZE = 50
TRANSACTIONS_PAGE_SIZE = 20    # as many came back: read them all with ORDER_TRANSACTIONS_QUERY
FULFILLMENTS_MAX = 5           # an order's fulfilments read with it (a plain list)
TRACKING_MAX = 3               # tracking numbers per fulfilment
TRANSACTIONS_MAX = 240         # the most a plain list is asked for (240 × 4 points fits one query)
REFUNDS_PAGE_SIZE = 3          # as many came back: list them with ORDER_REFUNDS_QUERY
REFUNDS_MAX = 250
REFUND_LINES_PAGE_SIZE = 10    # refund lines per refund in ORDER_QUERY
MORE_REFUND_LINES_PAGE_SIZE = 100
REFUND_SHIPPING_LINES_PAGE_SIZE = 1
MORE_REFUND_SHIPPING_LINES_PAGE_SIZE = 50

_MONEY = "shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }"
_SHOP_MONEY = "shopMoney { amount currencyCode }"
_ADDRESS = ("firstName lastName name company address1 address2 city province provinceCode "
            "country countryCodeV2 zip phone")
_TAX_LINE = f"title rate ratePercentage priceSet {{ {_SHOP_MONEY} }}"
_PAGE_INFO = "pageInfo { hasNextPage endCursor }"

_LINE_ITEM_NODE = f"""
        id name title sku quantity currentQuantity taxable requiresShipping isGiftCard
        originalUnitPriceSet {{ {_SHOP_MONEY} }}
        totalDiscountSet {{ {_SHOP_MONEY} }}
        discountAllocations {{ allocatedAmountSet {{ {_SHOP_MONEY} }} }}
        taxLines {{ {_TAX_LINE} }}
        variant {{ id sku }}"""

_SHIPPING_LINE_NODE = f"""
        id title code
        originalPriceSet {{ {_SHOP_MONEY} }}
        discountedPriceSet {{ {_SHOP_MONEY} }}
        discountAllocations {{ allocatedAmountSet {{ {_SHOP_MONEY} }} }}
        taxLines {{ {_TAX_LINE} }}"""

_TRANSACTION = f"id kind status gateway processedAt test amountSet {{ {_SHOP_MONEY} }} parentTransaction {{ id }}"
_REFUND_HEAD = f"id legacyResourceId createdAt note totalRefundedSet {{ {_SHOP_MONEY} }}"
_REFUND_LINE_NODE = (f"quantity lineItem {{ id }} subtotalSet {{ {_SHOP_MONEY} }} "
                     f"totalTaxSet {{ {_SHOP_MONEY} }}")
_REFUND_SHIPPING_LINE_NODE = f"subtotalAmountSet {{ {_SHOP_MONEY} }} taxAmountSet {{ {_SHOP_MONEY} }}"

#: The order-level fields the mapping reads (also used by the bulk queries of ``shopify_bulk_queries``).
_ORDER_HEAD = f"""
    id legacyResourceId name email phone createdAt updatedAt processedAt cancelledAt cancelReason
    closed test note tags
    currencyCode presentmentCurrencyCode taxesIncluded displayFinancialStatus fullyPaid
    paymentGatewayNames
    customer {{ id legacyResourceId email firstName lastName displayName phone numberOfOrders
      amountSpent {{ amount currencyCode }} }}
    billingAddress {{ {_ADDRESS} }}
    shippingAddress {{ {_ADDRESS} }}
    subtotalPriceSet {{ {_MONEY} }}
    totalPriceSet {{ {_MONEY} }}
    currentTotalPriceSet {{ {_MONEY} }}
    totalReceivedSet {{ {_MONEY} }}
    totalTaxSet {{ {_SHOP_MONEY} }}
    currentTotalTaxSet {{ {_SHOP_MONEY} }}
    totalDiscountsSet {{ {_SHOP_MONEY} }}
    totalShippingPriceSet {{ {_SHOP_MONEY} }}
    totalOutstandingSet {{ {_SHOP_MONEY} }}
    totalRefundedSet {{ {_SHOP_MONEY} }}
    totalTipReceivedSet {{ {_SHOP_MONEY} }}
    taxLines {{ {_TAX_LINE} }}
    fulfillments(first: {FULFILLMENTS_MAX}) {{ id createdAt updatedAt status
      trackingInfo(first: {TRACKING_MAX}) {{ company number url }} }}"""
#: The order's payment terms (net days, or a fixed date: its first schedule's due time), for receivables.
_PAYMENT_TERMS = "paymentTerms { paymentTermsType dueInDays paymentSchedules(first: 1) { nodes { dueAt } } }"

# requested cost of one node of each selection above (checked against demo.simulators.shopify_cost by a test)
OBJECT_COST = 1
CONNECTION_COST = 2            # a connection, before its nodes
PAGE_INFO_COST = 1             # its pageInfo (an object)
PAGED = CONNECTION_COST + PAGE_INFO_COST
ORDER_HEAD_COST = 53           # customer 2, addresses 2, 4 × 3 + 7 × 2 money bags, taxLines 3, fulfilments 20
PAYMENT_TERMS_COST = 4         # _PAYMENT_TERMS: the object 1, its schedules connection 2, one schedule 1
LINE_ITEM_COST = 12            # the line 1, 2 bags × 2, discountAllocations 3, taxLines 3, variant 1
SHIPPING_LINE_COST = 11        # the line 1, 2 bags × 2, discountAllocations 3, taxLines 3
TRANSACTION_COST = 4           # the transaction 1, amountSet 2, parentTransaction 1
REFUND_HEAD_COST = 3           # the refund 1, totalRefundedSet 2
REFUND_LINE_COST = 6           # the refund line 1, lineItem 1, 2 bags × 2
REFUND_SHIPPING_LINE_COST = 5  # the refund shipping line 1, 2 bags × 2


def order_selection(*, lines: int, shipping_lines: int, transactions: int, refunds: int, refund_lines: int,
                    refund_shipping_lines: int, lines_after: str | None = None) -> str:
    """The fields of one order with the given page sizes (``lines_after``: the variable of the first
    line item page's cursor, if any)."""
    after = f", after: ${lines_after}" if lines_after else ""
    return f"""{_ORDER_HEAD}
    {_PAYMENT_TERMS}
    lineItems(first: {lines}{after}) {{
      {_PAGE_INFO}
      nodes {{ {_LINE_ITEM_NODE}
      }}
    }}
    shippingLines(first: {shipping_lines}) {{
      {_PAGE_INFO}
      nodes {{ {_SHIPPING_LINE_NODE}
      }}
    }}
    transactions(first: {transactions}) {{ {_TRANSACTION} }}
    refunds(first: {refunds}) {{
      {_REFUND_HEAD}
      refundLineItems(first: {refund_lines}) {{ {_PAGE_INFO} nodes {{ {_REFUND_LINE_NODE} }} }}
      refundShippingLines(first: {refund_shipping_lines}) {{ {_PAGE_INFO} nodes {{ {_REFUND_SHIPPING_LINE_NODE} }} }}
    }}"""


def order_cost(*, lines: int, shipping_lines: int, transactions: int, refunds: int, refund_lines: int,
               refund_shipping_lines: int) -> int:
    """The requested cost of one order of ``order_selection`` with these sizes (the order object included)."""
    refund = (REFUND_HEAD_COST + PAGED + refund_lines * REFUND_LINE_COST
              + PAGED + refund_shipping_lines * REFUND_SHIPPING_LINE_COST)
    return (OBJECT_COST + ORDER_HEAD_COST + PAYMENT_TERMS_COST
            + PAGED + lines * LINE_ITEM_COST
            + PAGED + shipping_lines * SHIPPING_LINE_COST
            + transactions * TRANSACTION_COST
            + refunds * refund)


#: One order with the first page of everything the mapping needs. Variables: ``id`` (the order gid),
#: ``linesAfter`` (null for the first page of line items).
ORDER_QUERY = f"""
query HubOrder($id: ID!, $linesAfter: String) {{
  order(id: $id) {{{order_selection(
    lines=LINES_PAGE_SIZE, shipping_lines=SHIPPING_LINES_PAGE_SIZE, transactions=TRANSACTIONS_PAGE_SIZE,
    refunds=REFUNDS_PAGE_SIZE, refund_lines=REFUND_LINES_PAGE_SIZE,
    refund_shipping_lines=REFUND_SHIPPING_LINES_PAGE_SIZE, lines_after="linesAfter")}
  }}
}}
"""

#: Further pages of an order's line items. Variables: ``id`` (order gid), ``after`` (endCursor).
ORDER_LINES_QUERY = f"""
query HubOrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    id
    lineItems(first: {MORE_LINES_PAGE_SIZE}, after: $after) {{
      {_PAGE_INFO}
      nodes {{ {_LINE_ITEM_NODE}
      }}
    }}
  }}
}}
"""

#: Further pages of an order's shipping lines. Variables: ``id`` (order gid), ``after`` (endCursor).
ORDER_SHIPPING_LINES_QUERY = f"""
query HubOrderShippingLines($id: ID!, $after: String) {{
  order(id: $id) {{
    id
    shippingLines(first: {MORE_SHIPPING_LINES_PAGE_SIZE}, after: $after) {{
      {_PAGE_INFO}
      nodes {{ {_SHIPPING_LINE_NODE}
      }}
    }}
  }}
}}
"""

#: All of an order's transactions (a plain list: no cursor). Variables: ``id`` (order gid).
ORDER_TRANSACTIONS_QUERY = f"""
query HubOrderTransactions($id: ID!) {{
  order(id: $id) {{
    id
    transactions(first: {TRANSACTIONS_MAX}) {{ {_TRANSACTION} }}
  }}
}}
"""

#: The ids of all of an order's refunds (a plain list: no cursor). Variables: ``id`` (order gid).
ORDER_REFUNDS_QUERY = f"""
query HubOrderRefunds($id: ID!) {{
  order(id: $id) {{
    id
    refunds(first: {REFUNDS_MAX}) {{ id }}
  }}
}}
"""

#: One refund with the first pages of its lines. Variables: ``id`` (refund gid).
REFUND_QUERY = f"""
query HubRefund($id: ID!) {{
  refund(id: $id) {{
    {_REFUND_HEAD}
    refundLineItems(first: {MORE_REFUND_LINES_PAGE_SIZE}) {{ {_PAGE_INFO} nodes {{ {_REFUND_LINE_NODE} }} }}
    refundShippingLines(first: {MORE_REFUND_SHIPPING_LINES_PAGE_SIZE}) {{
      {_PAGE_INFO} nodes {{ {_REFUND_SHIPPING_LINE_NODE} }}
    }}
  }}
}}
"""

#: Further pages of a refund's lines. Variables: ``id`` (refund gid), ``after`` (endCursor).
REFUND_LINES_QUERY = f"""
query HubRefundLines($id: ID!, $after: String) {{
  refund(id: $id) {{
    id
    refundLineItems(first: {MORE_REFUND_LINES_PAGE_SIZE}, after: $after) {{
      {_PAGE_INFO} nodes {{ {_REFUND_LINE_NODE} }}
    }}
  }}
}}
"""

#: Further pages of a refund's shipping lines. Variables: ``id`` (refund gid), ``after`` (endCursor).
REFUND_SHIPPING_LINES_QUERY = f"""
query HubRefundShippingLines($id: ID!, $after: String) {{
  refund(id: $id) {{
    id
    refundShippingLines(first: {MORE_REFUND_SHIPPING_LINES_PAGE_SIZE}, after: $after) {{
      {_PAGE_INFO} nodes {{ {_REFUND_SHIPPING_LINE_NODE} }}
    }}
  }}
}}
"""

ORDERS_PAGE_MAX = 250          # Shopify's largest page; one node costs 1 (3 + 250 = 253 points)
#: Order ids for backfill and reconciliation, oldest change first. Variables: ``first`` (≤ ``ORDERS_PAGE_MAX``),
#: ``after`` (cursor or null), ``query`` (Shopify search syntax, e.g. ``"updated_at:>=2024-01-01"``).
ORDERS_PAGE_QUERY = """
query HubOrdersPage($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id legacyResourceId name updatedAt }
  }
}
"""

#: Mark an order paid. Variables: ``{"input": {"id": <order gid>}}``. Check ``userErrors``.
ORDER_MARK_AS_PAID = f"""
mutation HubOrderMarkAsPaid($input: OrderMarkAsPaidInput!) {{
  orderMarkAsPaid(input: $input) {{
    order {{
      id legacyResourceId name updatedAt displayFinancialStatus fullyPaid
      totalOutstandingSet {{ {_MONEY} }}
    }}
    userErrors {{ field message }}
  }}
}}
"""

#: Every document above, by name (the schema and cost tests walk this).
DOCUMENTS = {
    "ORDER_QUERY": ORDER_QUERY,
    "ORDER_LINES_QUERY": ORDER_LINES_QUERY,
    "ORDER_SHIPPING_LINES_QUERY": ORDER_SHIPPING_LINES_QUERY,
    "ORDER_TRANSACTIONS_QUERY": ORDER_TRANSACTIONS_QUERY,
    "ORDER_REFUNDS_QUERY": ORDER_REFUNDS_QUERY,
    "REFUND_QUERY": REFUND_QUERY,
    "REFUND_LINES_QUERY": REFUND_LINES_QUERY,
    "REFUND_SHIPPING_LINES_QUERY": REFUND_SHIPPING_LINES_QUERY,
    "ORDERS_PAGE_QUERY": ORDERS_PAGE_QUERY,
    "ORDER_MARK_AS_PAID": ORDER_MARK_AS_PAID,
}
