"""Shopify Payments payouts and their balance transactions (Admin GraphQL 2025-01, ``shopifyPaymentsAccount``).

Shopify has no payout webhook: the hub polls. Both documents are sized to Shopify's cost rules (an object 1,
a scalar 0, a connection 2 + ``first`` × one node; at most 1,000 requested): a payout node costs 2 (itself and
``net``), a balance transaction 6 (itself, ``amount``, ``fee``, ``net``, ``associatedOrder``,
``associatedPayout``). A payout's transactions are read with ``query: "payments_transfer_id:<payout
legacyResourceId>"`` (what public code sends ⚠, PLATFORMS.md "Added 2026-12").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

PAYOUTS_PAGE_SIZE = 100            # 2 + 100 × 2 + pageInfo + the account: ~204 points
TRANSACTIONS_PAGE_SIZE = 150       # 2 + 150 × 6 + pageInfo + the account: ~904 points
PAYOUT_NODE_COST = 2
TRANSACTION_NODE_COST = 6
_MONEY = "amount currencyCode"
_PAGE_INFO = "pageInfo { hasNextPage endCursor }"

PAYOUTS_QUERY = f"""
query HubPayouts($first: Int!, $after: String, $query: String) {{
  shopifyPaymentsAccount {{
    payouts(first: $first, after: $after, query: $query, sortKey: ISSUED_AT) {{
      {_PAGE_INFO}
      nodes {{ id legacyResourceId issuedAt status transactionType net {{ {_MONEY} }} }}
    }}
  }}
}}
"""

PAYOUT_TRANSACTIONS_QUERY = f"""
query HubPayoutTransactions($first: Int!, $after: String, $query: String) {{
  shopifyPaymentsAccount {{
    balanceTransactions(first: $first, after: $after, query: $query) {{
      {_PAGE_INFO}
      nodes {{
        id type sourceType sourceId sourceOrderTransactionId transactionDate adjustmentReason
        amount {{ {_MONEY} }} fee {{ {_MONEY} }} net {{ {_MONEY} }}
        associatedOrder {{ id name }}
        associatedPayout {{ id status }}
      }}
    }}
  }}
}}
"""

DOCUMENTS = {"PAYOUTS_QUERY": PAYOUTS_QUERY, "PAYOUT_TRANSACTIONS_QUERY": PAYOUT_TRANSACTIONS_QUERY}
GraphQL = Callable[[str, dict[str, Any]], dict[str, Any]]


def payouts(graphql: GraphQL, *, issued_since: str | None = None) -> Iterator[dict[str, Any]]:
    """Every payout issued on or after ``issued_since`` (YYYY-MM-DD; None: all), oldest first."""
    query = f"issued_at:>={issued_since}" if issued_since else None
    yield from _pages(graphql, PAYOUTS_QUERY, "payouts", PAYOUTS_PAGE_SIZE, query)


def payout_transactions(graphql: GraphQL, payout_legacy_id: str) -> list[dict[str, Any]]:
    """Every balance transaction of one payout."""
    query = f"payments_transfer_id:{int(payout_legacy_id)}"   # an integer: nothing else reaches the query
    return list(_pages(graphql, PAYOUT_TRANSACTIONS_QUERY, "balanceTransactions", TRANSACTIONS_PAGE_SIZE, query))


def _pages(graphql: GraphQL, document: str, field: str, first: int, query: str | None) -> Iterator[dict[str, Any]]:
    after = None
    while True:
        data = graphql(document, {"first": first, "after": after, "query": query})
        page = ((data.get("shopifyPaymentsAccount") or {}).get(field)) or {}
        yield from page.get("nodes") or []
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return
        after = info["endCursor"]
