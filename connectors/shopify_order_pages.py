"""Reading the rest of an order that ``ORDER_QUERY`` returned a first page of.

``ORDER_QUERY`` is sized to Shopify's 1,000-point ceiling, so an order with more line items, shipping
lines, transactions, refunds or refund lines than its first pages hold is completed here, with the
follow-up documents of ``connectors.shopify_queries``: connections by their cursors, the plain lists
(``transactions``, ``refunds``: no cursor) by asking again for all of them when as many came back as
were asked for. Nothing is dropped: a page the guard below would cut short raises ``Permanent``.

A full page of a large order costs what it asked for (a page of 80 line items about 960 points), so a
few of them empty Shopify's bucket: a ``THROTTLED`` follow-up waits the time Shopify's figures imply and
asks again (``THROTTLE_RETRIES`` times), instead of failing an order whose pages, read again from the start
on a retry, would never fit in one bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.errors import Permanent, Retryable
from connectors.shopify_queries import (
    ORDER_LINES_QUERY,
    ORDER_REFUNDS_QUERY,
    ORDER_SHIPPING_LINES_QUERY,
    ORDER_TRANSACTIONS_QUERY,
    REFUND_LINES_QUERY,
    REFUND_QUERY,
    REFUND_SHIPPING_LINES_QUERY,
    REFUNDS_MAX,
    REFUNDS_PAGE_SIZE,
    TRANSACTIONS_MAX,
    TRANSACTIONS_PAGE_SIZE,
)

PLATFORM = "shopify"
MAX_PAGES = 125            # of one connection: 10,000 line items, far beyond any real order
THROTTLE_RETRIES = 4
MAX_THROTTLE_WAIT = 20.0   # seconds: a full bucket of 2,000 points restores at 100/s

GraphQLCall = Callable[[str, dict[str, Any]], dict[str, Any]]


def complete_order(call: GraphQLCall, order: dict[str, Any], label: str, *,
                   sleep: Callable[[float], object] = time.sleep) -> list[dict[str, Any]]:
    """Follow every further page of ``order`` (a node of ``ORDER_QUERY``): shipping lines, transactions,
    refunds and their lines are merged into ``order``; the further line item nodes are returned (for
    ``order_from_graphql(order, extra_line_nodes)``)."""
    call = _patient(call, sleep)
    gid = order.get("id")
    extra_lines = _rest(call, ORDER_LINES_QUERY, gid, "order", "lineItems", order.get("lineItems"), label)
    _merge(order, "shippingLines",
           _rest(call, ORDER_SHIPPING_LINES_QUERY, gid, "order", "shippingLines", order.get("shippingLines"),
                 label))
    if len(order.get("transactions") or []) >= TRANSACTIONS_PAGE_SIZE:
        every = (call(ORDER_TRANSACTIONS_QUERY, {"id": gid}).get("order") or {}).get("transactions") or []
        if len(every) >= TRANSACTIONS_MAX:
            raise Permanent(f"{label} has {TRANSACTIONS_MAX} transactions or more: more than the hub can read "
                            "in one query", platform=PLATFORM, code="too_many_transactions")
        order["transactions"] = every
    refunds = [r for r in order.get("refunds") or [] if isinstance(r, dict)]
    if len(refunds) >= REFUNDS_PAGE_SIZE:
        refunds = _every_refund(call, gid, refunds, label)
    for refund in refunds:
        rid = refund.get("id")
        for field, query in (("refundLineItems", REFUND_LINES_QUERY),
                             ("refundShippingLines", REFUND_SHIPPING_LINES_QUERY)):
            _merge(refund, field, _rest(call, query, rid, "refund", field, refund.get(field), label))
    order["refunds"] = refunds
    return extra_lines


def _every_refund(call: GraphQLCall, gid: Any, known: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    listed = (call(ORDER_REFUNDS_QUERY, {"id": gid}).get("order") or {}).get("refunds") or []
    if len(listed) >= REFUNDS_MAX:
        raise Permanent(f"{label} has {REFUNDS_MAX} refunds or more: more than the hub can read in one query",
                        platform=PLATFORM, code="too_many_refunds")
    by_id = {r.get("id"): r for r in known}
    out = []
    for item in listed:
        rid = item.get("id") if isinstance(item, dict) else None
        refund = by_id.get(rid) or (call(REFUND_QUERY, {"id": rid}).get("refund") if rid else None)
        if isinstance(refund, dict):
            out.append(refund)
    return out


def _rest(call: GraphQLCall, query: str, gid: Any, root: str, field: str, conn: Any,
          label: str) -> list[dict[str, Any]]:
    """The nodes of the pages of ``field`` after the one in ``conn``."""
    nodes: list[dict[str, Any]] = []
    page = (conn.get("pageInfo") or {}) if isinstance(conn, dict) else {}
    pages = 1
    while page.get("hasNextPage"):
        pages += 1
        if pages > MAX_PAGES or not page.get("endCursor"):
            raise Permanent(f"{label}: cannot read all of its {field} ({pages - 1} pages)", platform=PLATFORM,
                            code="too_many_pages")
        more = ((call(query, {"id": gid, "after": page["endCursor"]}).get(root) or {}).get(field)) or {}
        nodes.extend(n for n in more.get("nodes") or [] if isinstance(n, dict))
        page = more.get("pageInfo") or {}
    return nodes


def _merge(parent: dict[str, Any], field: str, more: list[dict[str, Any]]) -> None:
    if not more:
        return
    conn = parent.get(field) if isinstance(parent.get(field), dict) else {}
    parent[field] = {**conn, "nodes": [*(conn.get("nodes") or []), *more],
                     "pageInfo": {**(conn.get("pageInfo") or {}), "hasNextPage": False}}


def _patient(call: GraphQLCall, sleep: Callable[[float], object]) -> GraphQLCall:
    def patient(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(THROTTLE_RETRIES + 1):
            try:
                return call(query, variables)
            except Retryable as exc:
                if exc.code != "THROTTLED" or attempt == THROTTLE_RETRIES:
                    raise
                sleep(min(MAX_THROTTLE_WAIT, max(0.5, exc.retry_after or 1.0)))
        raise AssertionError("unreachable")
    return patient
