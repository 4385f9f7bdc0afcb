"""A strict fake of Shopify's GraphQL Admin API 2025-01 that executes real GraphQL.

Queries run with graphql-core against Shopify's published schema (the introspection JSON shipped next
to this module), so a document Shopify would reject is rejected here too (HTTP 200 with ``errors``).
Endpoint: ``POST /admin/api/2025-01/graphql.json`` with ``X-Shopify-Access-Token``; the token names
the shop (``sim.issue_token(shop_domain)``).

Root fields served: ``order(id)``, ``refund(id)``, ``orders(first, after, last, before, query, sortKey, reverse)``
(query filters ``updated_at:`` / ``created_at:`` with ``>= > <= < =``, ``financial_status:``, ``name:``,
``status:``), ``ordersCount(query, limit)``, ``shop``, ``webhookSubscriptions``, ``currentBulkOperation`` and
``node(id)`` of a bulk operation; mutations ``orderMarkAsPaid``, ``webhookSubscriptionCreate``,
``bulkOperationRunQuery`` (``demo.simulators.shopify_bulk``: the JSONL files too) and the fulfilment holds
(``demo.simulators.shopify_holds``: ``Order.fulfillmentOrders`` with their ``fulfillmentHolds``,
``fulfillmentOrderHold``, ``fulfillmentOrderReleaseHold``). Anything else resolves to null. An ``ID``
variable whose value is not a global id refuses the whole document, as Shopify does
(``demo.simulators.shopify_ids``). The app's OAuth endpoints (``/admin/oauth/authorize``,
``/admin/oauth/access_token``) and uninstalls: ``demo.simulators.shopify_oauth``.

Cost and throttling: every response carries ``extensions.cost``. The requested cost is computed before
the query runs by Shopify's documented rules (``demo.simulators.shopify_cost``: an object 1, a scalar 0, a
connection 2 + ``first`` × one node, a mutation 10, …); a query above 1,000 points is refused whole with
``MAX_COST_EXCEEDED`` as Shopify does (HTTP 200, no ``data``, nothing charged). A leaky bucket per shop
(``maximum_available`` 2000, ``restore_rate`` 100/s) pays the requested cost up front and refunds the
difference to the actual cost (the same rules over the data returned); when it cannot pay, the answer
is ``THROTTLED``. Faults injected with ``fail_next`` (429 with Retry-After, 5xx) are honoured by the
base class.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import graphql
from flask import Response, request
from graphql.language import OperationDefinitionNode

from demo.simulators.base import SimulatedPlatform
from demo.simulators.shopify_bulk import ShopifyBulkControls
from demo.simulators.shopify_cost import MAX_QUERY_COST, actual_cost, max_cost_exceeded_error, requested_cost
from demo.simulators.shopify_documents import Documents
from demo.simulators.shopify_holds import ShopifyHoldControls
from demo.simulators.shopify_ids import invalid_id_variables
from demo.simulators.shopify_oauth import ShopifyAppControls, sign_query
from demo.simulators.shopify_orders import ShopifyOrder, connection, decode_cursor, encode_cursor, money_bag
from demo.simulators.shopify_payouts import ShopifyPaymentsControls

API_VERSION = "2025-01"
GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"
SCHEMA_FILE = Path(__file__).with_name("shopify-admin-graphql-2025-01.introspection.json.gz")
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"

_schema_lock = threading.Lock()
_schema: graphql.GraphQLSchema | None = None


def admin_schema() -> graphql.GraphQLSchema:
    """Shopify's Admin schema 2025-01, built once per process."""
    global _schema
    with _schema_lock:
        if _schema is None:
            with gzip.open(SCHEMA_FILE, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
            schema = graphql.build_client_schema(data["data"])
            # The published schema has deprecation inconsistencies graphql-core would reject.
            schema._validation_errors = []
            _schema = schema
        return _schema


# -- webhooks ----------------------------------------------------------------------------------
def sign_webhook(body: bytes, secret: str) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 of HMAC-SHA256 over the raw body with the app secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_headers(domain: str, topic: str, body: bytes, secret: str, webhook_id: str | None = None,
                    *, event_id: str | None = None, triggered_at: datetime | None = None) -> dict[str, str]:
    """Every ``X-Shopify-*`` header of one webhook delivery."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_webhook(body, secret),
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": (triggered_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    }


# -- orders search -----------------------------------------------------------------------------
_FILTER = re.compile(r"(\w+):(>=|<=|>|<|=)?(\S+)")
_SORT_KEYS = {"UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt", "PROCESSED_AT": "processedAt",
              "ORDER_NUMBER": "number", "ID": "id", "TOTAL_PRICE": "total"}


def _parse_when(text: str) -> datetime:
    text = text.strip("'\"")
    if len(text) == 10:
        text += "T00:00:00"
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _compare(value: Any, op: str, target: Any) -> bool:
    return {">=": value >= target, "<=": value <= target, ">": value > target, "<": value < target,
            "=": value == target}[op]


def _matches(order: ShopifyOrder, query: str | None) -> bool:
    if not query:
        return True
    for field, op, raw in _FILTER.findall(query):
        op = op or "="
        field = field.lower()
        if field in ("updated_at", "created_at", "processed_at"):
            value = order.updated_at if field == "updated_at" else order.created_at
            try:
                target = _parse_when(raw)
            except ValueError:
                continue  # Shopify ignores a filter it cannot parse (and says so in extensions.search)
            if not _compare(value.astimezone(UTC).replace(microsecond=0), op, target):
                return False
        elif field == "financial_status" and raw.lower() != "any":
            if order.financial_status != raw.lower():
                return False
        elif field == "name" and raw.lstrip("#") != str(order.number):
            return False
        elif field == "id" and raw.isdigit() and not _compare(order.order_id, op, int(raw)):
            return False
    return True


def _sort_value(order: ShopifyOrder, key: str) -> Any:
    if key == "UPDATED_AT":
        return order.updated_at.timestamp()
    if key in ("CREATED_AT", "PROCESSED_AT"):
        return order.created_at.timestamp()
    if key == "ORDER_NUMBER":
        return order.number
    if key == "TOTAL_PRICE":
        return float(order.total)
    return order.order_id


class _Bucket:
    def __init__(self, maximum: float, restore_rate: float) -> None:
        self.available = float(maximum)
        self.stamp = time.monotonic()

    def refill(self, maximum: float, rate: float) -> float:
        now = time.monotonic()
        self.available = min(float(maximum), self.available + (now - self.stamp) * rate)
        self.stamp = now
        return self.available


class ShopifySimulator(ShopifyBulkControls, ShopifyHoldControls, ShopifyPaymentsControls, ShopifyAppControls,
                       SimulatedPlatform):
    """Shops (by ``myshopify`` domain), their orders, a GraphQL endpoint over them, and the app's OAuth
    and webhook subscriptions (``demo.simulators.shopify_oauth``)."""

    name = "shopify"

    def __init__(self, latency: float = 0.0, *, maximum_available: float = 2000.0,
                 restore_rate: float = 100.0) -> None:
        self.maximum_available = maximum_available
        self.restore_rate = restore_rate
        self._initial_throttle = (maximum_available, restore_rate)
        self.shops: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[int, ShopifyOrder]] = {}
        self.buckets: dict[str, _Bucket] = {}
        #: every GraphQL operation served: (shop, operation name, requested cost, error code or None)
        self.operations: list[tuple[str, str | None, int, str | None]] = []
        self.schema = admin_schema()
        self.documents = Documents(self.schema)
        self._reset_app()
        self._reset_payments()   # Shopify Payments: demo.simulators.shopify_payouts
        self._reset_bulk()       # bulk query operations: demo.simulators.shopify_bulk
        super().__init__(latency)

    # -- test controls -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget shops, orders, tokens, buckets, faults and calls (one server for many tests)."""
        with self.lock:
            self.shops.clear()
            self.orders.clear()
            self.buckets.clear()
            self.operations.clear()
            self.tokens.clear()
            self.faults.clear()
            self.calls.clear()
            self.maximum_available, self.restore_rate = self._initial_throttle
            self._reset_app()
            self._reset_payments()
            self._reset_bulk()

    def add_shop(self, domain: str, *, currency: str = "USD", name: str | None = None) -> str:
        with self.lock:
            self.shops[domain] = {"name": name or domain.split(".")[0].replace("-", " ").title(),
                                  "currencyCode": currency, "myshopifyDomain": domain}
            self.orders.setdefault(domain, {})
        return domain

    def add_order(self, domain: str, order: ShopifyOrder) -> ShopifyOrder:
        with self.lock:
            if domain not in self.shops:
                self.add_shop(domain, currency=order.currency)
            self.orders[domain][order.order_id] = order
        return order

    def get_order(self, domain: str, order_id: int) -> ShopifyOrder | None:
        with self.lock:
            return self.orders.get(domain, {}).get(int(order_id))

    def update_order(self, domain: str, order_id: int, **changes: Any) -> ShopifyOrder:
        """Change an order's inputs (``financial_status``, ``email``, ``note``, ``tags``, ``shipping``,
        ...) and bump ``updated_at``. Setting ``financial_status="paid"`` records a sale for what is
        outstanding, so the totals stay consistent."""
        with self.lock:
            order = self.orders[domain][int(order_id)]
            status = changes.pop("financial_status", None)
            for key, value in changes.items():
                if not hasattr(order, key):
                    raise AttributeError(f"ShopifyOrder has no field {key!r}")
                if key in ("shipping", "shipping_discount", "order_discount", "tax_rate"):
                    value = Decimal(str(value))
                setattr(order, key, value)
            order.recompute()
            now = max(datetime.now(UTC), order.updated_at + timedelta(seconds=1))
            order.updated_at = now
            if status == "paid":
                order.mark_paid(now)
            elif status is not None:
                order.financial_status = status
            return order

    def refund_order(self, domain: str, order_id: int, lines: dict[int, int], *, shipping: bool = False,
                     note: str | None = None) -> dict[str, Any]:
        """Refund units of lines (by index) and optionally the shipping, as the admin does; returns the
        refund (``id``, ``amount``, ``tax``). Send ``refunds/create`` yourself (``refund_webhook_body``)."""
        with self.lock:
            return self.orders[domain][int(order_id)].refund(lines, shipping=shipping, note=note)

    def set_throttle(self, *, maximum_available: float | None = None, restore_rate: float | None = None,
                     currently_available: float | None = None, domain: str | None = None) -> None:
        with self.lock:
            if maximum_available is not None:
                self.maximum_available = maximum_available
            if restore_rate is not None:
                self.restore_rate = restore_rate
            for d, bucket in self.buckets.items():
                if domain is None or d == domain:
                    bucket.refill(self.maximum_available, self.restore_rate)
                    if currently_available is not None:
                        bucket.available = currently_available
            if currently_available is not None and domain is not None and domain not in self.buckets:
                self.buckets[domain] = _Bucket(self.maximum_available, self.restore_rate)
                self.buckets[domain].available = currently_available

    # -- routes --------------------------------------------------------------------------------
    def register_routes(self) -> None:
        self.app.add_url_rule(GRAPHQL_PATH, "graphql", self._graphql, methods=["POST"])
        self.register_app_routes()   # OAuth: demo.simulators.shopify_oauth
        self.register_bulk_routes()  # the JSONL files of bulk operations

    def _json(self, body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def _graphql(self) -> Response:
        domain = self.token_account(request.headers.get("X-Shopify-Access-Token"))
        if domain is None or domain not in self.shops:
            return self._json({"errors": INVALID_TOKEN}, 401)
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return self._json({"errors": {"query": "Required parameter missing or invalid"}}, 400)
        query, variables = payload["query"], payload.get("variables") or {}
        if not isinstance(variables, dict):
            return self._json({"errors": [{"message": "Variables must be an object"}]})
        op_name = payload.get("operationName")
        doc, errors = self.documents.check(query)   # parsed and validated once per query text
        if doc is None:
            return self._json({"errors": errors})
        op = graphql.get_operation_ast(doc, op_name)
        if op is None:
            return self._json({"errors": [{"message": "An operation name is required"}]})
        refused = invalid_id_variables(op, variables)   # coerced before anything runs: the whole document fails
        if refused:
            return self._json({"errors": refused})
        requested = requested_cost(self.schema, doc, variables, op_name)
        name = op.name.value if op.name else None
        with self.lock:
            bucket = self.buckets.setdefault(domain, _Bucket(self.maximum_available, self.restore_rate))
            available = bucket.refill(self.maximum_available, self.restore_rate)
            if requested > MAX_QUERY_COST:   # refused before it runs: nothing is charged
                self.operations.append((domain, name, requested, "MAX_COST_EXCEEDED"))
                return self._json({"errors": [max_cost_exceeded_error(requested)],
                                   "extensions": {"cost": self._cost(requested, None, available)}})
            if requested > available:
                self.operations.append((domain, name, requested, "THROTTLED"))
                return self._json({
                    "errors": [{"message": "Throttled", "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": self._cost(requested, None, available)}})
            bucket.available -= requested
            self.operations.append((domain, name, requested, None))
        result = graphql.execute_sync(self.schema, doc, root_value=self._root(domain, op),
                                      variable_values=variables, operation_name=op_name)
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        body["data"] = result.data
        actual = actual_cost(self.schema, doc, result.data, variables, op_name, requested=requested)
        with self.lock:
            bucket.available = min(self.maximum_available, bucket.available + requested - actual)
            body["extensions"] = {"cost": self._cost(requested, actual, bucket.available)}
        return self._json(body)

    def _cost(self, requested: int, actual: int | None, available: float) -> dict[str, Any]:
        return {"requestedQueryCost": requested, "actualQueryCost": actual,
                "throttleStatus": {"maximumAvailable": float(self.maximum_available),
                                   "currentlyAvailable": int(available),
                                   "restoreRate": float(self.restore_rate)}}

    # -- resolvers -----------------------------------------------------------------------------
    def _root(self, domain: str, op: OperationDefinitionNode) -> dict[str, Any]:
        if op.operation.value == "mutation":
            return {"orderMarkAsPaid": lambda info, input: self._mark_paid(domain, input),
                    **self.app_mutation_fields(domain), **self.hold_mutation_fields(domain),
                    **self.bulk_mutation_fields(domain)}
        return {
            "shop": dict(self.shops[domain]),
            "order": lambda info, id: self._order(domain, id),
            "refund": lambda info, id: self._refund(domain, id),
            "orders": lambda info, **args: self._orders(domain, **args),
            "ordersCount": lambda info, query=None, limit=10000, **_: self._orders_count(domain, query, limit),
            **self.app_query_fields(domain),
            **self.bulk_query_fields(domain),
            **self.payments_query_fields(domain),
        }

    def _find(self, domain: str, gid: str) -> ShopifyOrder | None:
        m = re.fullmatch(r"gid://shopify/Order/([0-9]+)", gid or "")
        if not m:
            raise graphql.GraphQLError(f"Invalid global id '{gid}'",
                                       extensions={"code": "argumentLiteralsIncompatible"})
        return self.get_order(domain, int(m.group(1)))

    def _order(self, domain: str, gid: str) -> dict[str, Any] | None:
        order = self._find(domain, gid)
        with self.lock:
            return order.graphql() if order else None

    def _refund(self, domain: str, gid: str) -> dict[str, Any] | None:
        m = re.fullmatch(r"gid://shopify/Refund/(\d+)", gid or "")
        if not m:
            raise graphql.GraphQLError(f"Invalid global id '{gid}'",
                                       extensions={"code": "argumentLiteralsIncompatible"})
        with self.lock:
            for order in self.orders.get(domain, {}).values():
                refund = order.graphql_refund(int(m.group(1)))
                if refund is not None:
                    return refund
        return None

    def _orders(self, domain: str, *, query: str | None = None, sortKey: str = "ID", reverse: bool = False,
                first: int | None = None, after: str | None = None, last: int | None = None,
                before: str | None = None, **_: Any) -> dict[str, Any]:
        key = sortKey or "ID"
        with self.lock:
            chosen = [o for o in self.orders.get(domain, {}).values() if _matches(o, query)]
            chosen.sort(key=lambda o: (_sort_value(o, key), o.order_id), reverse=bool(reverse))
            if first is None and last is None:
                raise graphql.GraphQLError("you must provide one of first or last")
            # Cursors carry the sort value: a page stays stable when orders change between pages.
            if after is not None:
                c = decode_cursor(after)
                mark = (c["last_value"], c["last_id"])
                chosen = [o for o in chosen if ((_sort_value(o, key), o.order_id) < mark if reverse
                                                else (_sort_value(o, key), o.order_id) > mark)]
            nodes = [o.graphql() for o in chosen]
            ids = [o.order_id for o in chosen]
        page = connection(nodes, ids, first=first, last=last, before=before)
        by_id = {o.order_id: o for o in chosen}
        for edge in page["edges"]:
            oid = int(edge["node"]["legacyResourceId"])
            edge["cursor"] = encode_cursor(oid, _sort_value(by_id[oid], key))
        cursors = [e["cursor"] for e in page["edges"]]
        page["pageInfo"]["startCursor"] = cursors[0] if cursors else None
        page["pageInfo"]["endCursor"] = cursors[-1] if cursors else None
        page["pageInfo"]["hasPreviousPage"] = page["pageInfo"]["hasPreviousPage"] or after is not None
        return page

    def _orders_count(self, domain: str, query: str | None, limit: int | None) -> dict[str, Any]:
        """``ordersCount``: exact up to ``limit`` (Shopify's default 10,000), then ``AT_LEAST`` that many."""
        with self.lock:
            count = sum(1 for o in self.orders.get(domain, {}).values() if _matches(o, query))
        if limit is not None and count > limit:
            return {"count": limit, "precision": "AT_LEAST"}
        return {"count": count, "precision": "EXACT"}

    def _mark_paid(self, domain: str, input: dict[str, Any]) -> dict[str, Any]:
        order = self._find(domain, input.get("id", ""))
        with self.lock:
            if order is None:
                return {"order": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
            if order.financial_status == "paid" or order.outstanding <= 0:
                return {"order": order.graphql(),
                        "userErrors": [{"field": None, "message": "Order cannot be marked as paid."}]}
            now = max(datetime.now(UTC), order.updated_at + timedelta(seconds=1))
            order.mark_paid(now)
            return {"order": order.graphql(), "userErrors": []}


__all__ = ["API_VERSION", "GRAPHQL_PATH", "ShopifySimulator", "admin_schema", "money_bag", "sign_query",
           "sign_webhook", "webhook_headers"]
