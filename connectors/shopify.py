"""Shopify Admin GraphQL API through the ShopifyAPI SDK: fetch orders, page their lines, mark paid, hold and
release fulfilment orders (``connectors.shopify_holds``).

Errors become the hub's kinds: HTTP 429/5xx, timeouts and ``THROTTLED`` → ``Retryable`` (with the wait
Shopify's cost figures imply), 401/403 → ``AuthExpired``, anything else → ``Permanent``.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import shopify

from connectors import redact
from connectors.errors import AuthExpired, Permanent, Retryable, with_excerpt
from connectors.shopify_holds import FulfillmentHoldCalls
from connectors.shopify_order_pages import complete_order
from connectors.shopify_queries import ORDER_MARK_AS_PAID, ORDER_QUERY, ORDERS_PAGE_MAX, ORDERS_PAGE_QUERY

PLATFORM = "shopify"
API_VERSION = "2025-01"
_OPERATION = re.compile(r"^\s*(query|mutation|subscription)\b\s*(\w+)?", re.M)
_MAX_COST = re.compile(r"exceeds the (single query )?max(imum)? cost", re.I)


_MONEY_BAG = "shopMoney { amount currencyCode }"
SUMMARIES_PAGE_MAX = 100   # 3 + 100 × 7 points (an order 1, three money bags 2 each): under Shopify's 1,000
#: Totals of many orders at once, for ``o2c reconcile`` (checked against the schema and priced by the tests).
ORDER_SUMMARIES_QUERY = f"""
query HubOrderSummaries($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id legacyResourceId name createdAt updatedAt cancelledAt displayFinancialStatus
      totalPriceSet {{ {_MONEY_BAG} }}
      currentTotalPriceSet {{ {_MONEY_BAG} }}
      totalRefundedSet {{ {_MONEY_BAG} }}
    }}
  }}
}}
"""


def order_gid(order_id: str | int) -> str:
    return f"gid://shopify/Order/{order_id}"


class _GraphQL(shopify.GraphQL):
    """The SDK's GraphQL call with a timeout and without printing error bodies to stdout."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def execute(self, query: str, variables: dict | None = None, operation_name: str | None = None) -> str:
        headers = self.merge_headers({"Accept": "application/json", "Content-Type": "application/json"},
                                     self.headers)
        data = json.dumps({"query": query, "variables": variables, "operationName": operation_name})
        req = urllib.request.Request(self.endpoint, data.encode("utf-8"), headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310 - https or test base
            return response.read().decode("utf-8")


class ShopifyClient(FulfillmentHoldCalls):
    """Calls on one shop with its offline access token."""

    def __init__(self, shop: str, access_token: str, *, api_url: str | None = None,
                 timeout: float = 30.0, throttle: Callable[[], object] | None = None) -> None:
        self.shop = shop
        self._throttle = throttle
        self._session = shopify.Session(shop, API_VERSION, access_token)
        self._api_url = api_url
        self._timeout = timeout

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one GraphQL document; returns ``data`` or raises a classified error (with the redacted
        excerpt of the call: the operation's name and variables, and Shopify's answer)."""
        if self._throttle:
            self._throttle()
        shopify.ShopifyResource.activate_session(self._session)
        request = {"query": operation_name(query), "variables": variables}
        endpoint = self.endpoint()
        try:
            if self._api_url:
                shopify.ShopifyResource.set_site(f"{self._api_url}/admin/api/{API_VERSION}")
            client = _GraphQL(self._timeout)
            endpoint = client.endpoint
            raw = client.execute(query, variables)
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read().decode("utf-8", "replace")
            except Exception:  # noqa: BLE001 - the body is only a hint
                body = None
            call = redact.excerpt("POST", endpoint, request, exc.code, body)
            raise with_excerpt(_http_error(exc, body), call) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise Retryable(f"cannot reach shop {self.shop}", platform=PLATFORM,
                            excerpt=redact.excerpt("POST", endpoint, request, None, None)) from exc
        finally:
            shopify.ShopifyResource.clear_session()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise Retryable("Shopify answered with a body that is not JSON", platform=PLATFORM,
                            excerpt=redact.excerpt("POST", endpoint, request, 200, raw)) from exc
        if not isinstance(body, dict):
            raise Retryable("Shopify answered with JSON that is not an object", platform=PLATFORM,
                            excerpt=redact.excerpt("POST", endpoint, request, 200, raw))
        errors = body.get("errors")
        if errors:
            raise with_excerpt(_graphql_error(errors, body.get("extensions", {})),
                               redact.excerpt("POST", endpoint, request, 200, raw))
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    def endpoint(self) -> str:
        return f"{self._api_url or 'https://' + self.shop}/admin/api/{API_VERSION}/graphql.json"

    def mark_paid(self, order_id: str) -> dict[str, Any]:
        """``orderMarkAsPaid``: records a sale for the outstanding amount; returns the order's new state."""
        variables = {"input": {"id": order_gid(order_id)}}
        data = self.graphql(ORDER_MARK_AS_PAID, variables)
        result = data.get("orderMarkAsPaid") or {}
        errors = result.get("userErrors") or []
        if errors:
            text = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            call = {"query": operation_name(ORDER_MARK_AS_PAID), "variables": variables}
            raise Permanent(f"Shopify refused to mark order {order_id} paid: {text}", platform=PLATFORM,
                            code="userErrors", excerpt=redact.excerpt("POST", self.endpoint(), call, 200,
                                                                      {"data": data}))
        return result.get("order") or {}

    def order_summaries_page(self, *, query: str | None, after: str | None,
                             first: int = 100) -> tuple[list[dict[str, Any]], str | None]:
        """One page of order summaries (totals, refunds, financial status) for the reconcile report."""
        first = max(1, min(first, SUMMARIES_PAGE_MAX))
        data = self.graphql(ORDER_SUMMARIES_QUERY, {"first": first, "after": after, "query": query})
        orders = data.get("orders") or {}
        page = orders.get("pageInfo") or {}
        return list(orders.get("nodes") or []), (page.get("endCursor") if page.get("hasNextPage") else None)

    def orders_page(self, *, query: str | None, after: str | None, first: int = 250) -> tuple[list[dict[str, Any]],
                                                                                            str | None]:
        """One page of ``orders(query:)`` (id, legacyResourceId, name, updatedAt) and the cursor of the next
        page (None on the last)."""
        first = max(1, min(first, ORDERS_PAGE_MAX))
        data = self.graphql(ORDERS_PAGE_QUERY, {"first": first, "after": after, "query": query})
        orders = data.get("orders") or {}
        page = orders.get("pageInfo") or {}
        return list(orders.get("nodes") or []), (page.get("endCursor") if page.get("hasNextPage") else None)

    def fetch_order(self, order_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The order as GraphQL returns it, every nested page followed (``shopify_order_pages``), and the
        line items of its further pages; None when the shop has no such order."""
        order = self.graphql(ORDER_QUERY, {"id": order_gid(order_id), "linesAfter": None}).get("order")
        if order is None:
            return None
        return order, complete_order(self.graphql, order, f"Shopify order {order_id}")


def operation_name(query: str) -> str:
    """``query HubOrder($id: ID!) {…}`` → ``query HubOrder`` (what the excerpt names instead of the document)."""
    match = _OPERATION.search(query or "")
    return f"{match.group(1)} {match.group(2) or '(anonymous)'}" if match else "query (anonymous)"


def _http_error(exc: urllib.error.HTTPError, body: str | None) -> Exception:
    status = exc.code
    detail = body[:300] if body else None
    if status == 429:
        retry_after = exc.headers.get("Retry-After") if exc.headers else None
        try:
            wait = float(retry_after) if retry_after else 2.0
        except ValueError:
            wait = 2.0
        return Retryable("Shopify rate limit reached", platform=PLATFORM, status=429, code=429,
                         retry_after=wait)
    if status >= 500:
        return Retryable(f"Shopify answered HTTP {status}", platform=PLATFORM, status=status, code=status)
    if status in (401, 403):
        return AuthExpired("Shopify refused the access token (app uninstalled or token revoked?)",
                           platform=PLATFORM, status=status, code=status, detail=detail)
    return Permanent(f"Shopify answered HTTP {status}", platform=PLATFORM, status=status, code=status,
                     detail=detail)


def _graphql_error(errors: Any, extensions: dict[str, Any]) -> Exception:
    if isinstance(errors, str):
        return Permanent(errors, platform=PLATFORM)
    first = errors[0] if isinstance(errors, list) and errors else {}
    first = first if isinstance(first, dict) else {}
    extensions = extensions if isinstance(extensions, dict) else {}
    code = (first.get("extensions") if isinstance(first.get("extensions"), dict) else {}).get("code")
    message = str(first.get("message") or "GraphQL error")
    if code == "THROTTLED":
        cost = extensions.get("cost", {})
        status = cost.get("throttleStatus", {})
        need = float(cost.get("requestedQueryCost") or 0)
        have = float(status.get("currentlyAvailable") or 0)
        rate = float(status.get("restoreRate") or 50) or 50
        wait = max(1.0, math.ceil((need - have) / rate))
        return Retryable("Shopify throttled the query", platform=PLATFORM, code="THROTTLED", retry_after=wait)
    if code == "MAX_COST_EXCEEDED" or (code is None and _MAX_COST.search(message)):
        # refused before running, whatever the bucket holds: the same query will never pass
        return Permanent((message.strip().splitlines() or ["Shopify refused the query's cost"])[0],
                         platform=PLATFORM, code="MAX_COST_EXCEEDED")
    if code in ("INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"):
        return Retryable(message, platform=PLATFORM, code=code)
    if code in ("ACCESS_DENIED", "UNAUTHORIZED"):
        return AuthExpired(message, platform=PLATFORM, code=code)
    return Permanent(message, platform=PLATFORM, code=code)
