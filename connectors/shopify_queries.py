"""GraphQL documents the hub sends to Shopify's Admin API (version 2025-01).

Every document here is validated against Shopify's published schema in
``tests/test_shopify_queries_schema.py``. Field choice: only what ``mappings.shopify`` needs (plus a
few fields support staff like to see). Line items and shipping lines ask for ``shopMoney`` only, to
keep the query cost down; order-level money bags carry both shop and presentment amounts (the
presentment side gives the exchange rate of a buyer paying in another currency). Tips are line items
(``variant`` null) summed in ``totalTipReceivedSet``; gift cards sold are ``isGiftCard`` lines.

Paging of line items: ``ORDER_QUERY`` returns the first 250 lines with
``lineItems.pageInfo { hasNextPage endCursor }``; while ``hasNextPage`` is true, run
``ORDER_LINES_QUERY`` with ``{"id": <order gid>, "after": <endCursor>}`` and pass every further page's
``data.order.lineItems.nodes`` to ``mappings.shopify.order_from_graphql(node, extra_line_nodes)``.
"""

from __future__ import annotations

API_VERSION = "2025-01"
LINES_PAGE_SIZE = 100  # a page of lines with their money and tax fields stays under 1,000 cost points

_MONEY = "shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }"
_SHOP_MONEY = "shopMoney { amount currencyCode }"
_ADDRESS = ("firstName lastName name company address1 address2 city province provinceCode "
            "country countryCodeV2 zip phone")
_TAX_LINE = f"title rate ratePercentage priceSet {{ {_SHOP_MONEY} }}"

_LINE_ITEM_NODE = f"""
        id name title sku quantity currentQuantity taxable requiresShipping isGiftCard
        originalUnitPriceSet {{ {_SHOP_MONEY} }}
        discountedUnitPriceSet {{ {_SHOP_MONEY} }}
        originalTotalSet {{ {_SHOP_MONEY} }}
        totalDiscountSet {{ {_SHOP_MONEY} }}
        discountAllocations {{ allocatedAmountSet {{ {_SHOP_MONEY} }} }}
        taxLines {{ {_TAX_LINE} }}
        variant {{ id sku }}"""

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
    totalTaxSet {{ {_MONEY} }}
    currentTotalTaxSet {{ {_MONEY} }}
    totalDiscountsSet {{ {_MONEY} }}
    totalShippingPriceSet {{ {_MONEY} }}
    totalOutstandingSet {{ {_MONEY} }}
    totalReceivedSet {{ {_MONEY} }}
    totalRefundedSet {{ {_MONEY} }}
    totalTipReceivedSet {{ {_MONEY} }}
    taxLines {{ {_TAX_LINE} }}"""

#: One order with everything the mapping needs. Variables: ``id`` (the order gid),
#: ``linesAfter`` (null for the first page of line items).
ORDER_QUERY = f"""
query HubOrder($id: ID!, $linesAfter: String) {{
  order(id: $id) {{
    {_ORDER_HEAD}
    lineItems(first: {LINES_PAGE_SIZE}, after: $linesAfter) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ {_LINE_ITEM_NODE}
      }}
    }}
    shippingLines(first: 50) {{
      nodes {{
        id title code
        originalPriceSet {{ {_SHOP_MONEY} }}
        discountedPriceSet {{ {_SHOP_MONEY} }}
        discountAllocations {{ allocatedAmountSet {{ {_SHOP_MONEY} }} }}
        taxLines {{ {_TAX_LINE} }}
      }}
    }}
    transactions(first: 100) {{
      id kind status gateway processedAt test
      amountSet {{ {_MONEY} }}
    }}
    refunds(first: 10) {{
      id legacyResourceId createdAt note
      totalRefundedSet {{ {_MONEY} }}
      refundLineItems(first: 20) {{
        nodes {{ quantity lineItem {{ id }} subtotalSet {{ {_MONEY} }} totalTaxSet {{ {_MONEY} }} }}
      }}
      refundShippingLines(first: 2) {{
        nodes {{ subtotalAmountSet {{ {_MONEY} }} taxAmountSet {{ {_MONEY} }} }}
      }}
    }}
  }}
}}
"""

#: Further pages of an order's line items. Variables: ``id`` (order gid), ``after`` (endCursor).
ORDER_LINES_QUERY = f"""
query HubOrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    id
    lineItems(first: {LINES_PAGE_SIZE}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ {_LINE_ITEM_NODE}
      }}
    }}
  }}
}}
"""

#: Order ids for backfill and reconciliation, oldest change first. Variables: ``first`` (≤ 250),
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

#: Every document above, by name (the schema test walks this).
DOCUMENTS = {
    "ORDER_QUERY": ORDER_QUERY,
    "ORDER_LINES_QUERY": ORDER_LINES_QUERY,
    "ORDERS_PAGE_QUERY": ORDERS_PAGE_QUERY,
    "ORDER_MARK_AS_PAID": ORDER_MARK_AS_PAID,
}
