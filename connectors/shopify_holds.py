"""Shopify fulfilment holds (Admin GraphQL 2025-01): an order's fulfilment orders with their holds, and
``fulfillmentOrderHold`` / ``fulfillmentOrderReleaseHold`` on one of them.

Mixed into ``connectors.shopify.ShopifyClient``; API only, no business rule. A refusal (``userErrors``) is a
``Permanent`` error whose ``code`` is Shopify's (``DUPLICATE_FULFILLMENT_HOLD_HANDLE``, …) when it gives one.
Costs: the read 1 + 2 + 25 × 1 (well under 1,000); each mutation 10.
"""

from __future__ import annotations

from typing import Any

from connectors import redact
from connectors.errors import Permanent

PLATFORM = "shopify"
FULFILLMENT_ORDERS_MAX = 25     # an order has one per location that stocks its lines: a few at most

FULFILLMENT_ORDERS_QUERY = """
query HubFulfillmentOrders($id: ID!, $first: Int!) {
  order(id: $id) {
    id
    fulfillmentOrders(first: $first) {
      nodes { id status fulfillmentHolds { id handle reason reasonNotes } }
    }
  }
}
"""

FULFILLMENT_ORDER_HOLD = """
mutation HubFulfillmentOrderHold($id: ID!, $fulfillmentHold: FulfillmentOrderHoldInput!) {
  fulfillmentOrderHold(id: $id, fulfillmentHold: $fulfillmentHold) {
    fulfillmentHold { id handle reason }
    fulfillmentOrder { id status }
    userErrors { field message code }
  }
}
"""

FULFILLMENT_ORDER_RELEASE_HOLD = """
mutation HubFulfillmentOrderReleaseHold($id: ID!, $holdIds: [ID!]) {
  fulfillmentOrderReleaseHold(id: $id, holdIds: $holdIds) {
    fulfillmentOrder { id status fulfillmentHolds { id handle } }
    userErrors { field message code }
  }
}
"""

DOCUMENTS = {"FULFILLMENT_ORDERS_QUERY": FULFILLMENT_ORDERS_QUERY, "FULFILLMENT_ORDER_HOLD": FULFILLMENT_ORDER_HOLD,
             "FULFILLMENT_ORDER_RELEASE_HOLD": FULFILLMENT_ORDER_RELEASE_HOLD}


class FulfillmentHoldCalls:
    """Needs ``self.graphql(query, variables)`` and ``self.endpoint()``."""

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def endpoint(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def fulfillment_orders(self, order_id: str) -> list[dict[str, Any]] | None:
        """The order's fulfilment orders ``{id, status, fulfillmentHolds: [{id, handle, reason}]}``; None when
        the order does not exist."""
        data = self.graphql(FULFILLMENT_ORDERS_QUERY, {"id": f"gid://shopify/Order/{order_id}",
                                                       "first": FULFILLMENT_ORDERS_MAX})
        order = data.get("order")
        if order is None:
            return None
        return list(((order.get("fulfillmentOrders") or {}).get("nodes")) or [])

    def hold_fulfillment_order(self, fulfillment_order_id: str, *, handle: str, reason_notes: str,
                               reason: str = "AWAITING_PAYMENT") -> dict[str, Any]:
        """Put one fulfilment order on hold; returns the hold ``{id, handle, reason}``."""
        variables = {"id": fulfillment_order_id,
                     "fulfillmentHold": {"reason": reason, "reasonNotes": reason_notes[:255], "handle": handle}}
        result = self._mutation(FULFILLMENT_ORDER_HOLD, "fulfillmentOrderHold", variables, "hold")
        return result.get("fulfillmentHold") or {}

    def release_fulfillment_hold(self, fulfillment_order_id: str, hold_ids: list[str]) -> dict[str, Any]:
        """Release these holds of one fulfilment order; returns the fulfilment order ``{id, status}``."""
        variables = {"id": fulfillment_order_id, "holdIds": hold_ids}
        result = self._mutation(FULFILLMENT_ORDER_RELEASE_HOLD, "fulfillmentOrderReleaseHold", variables, "release")
        return result.get("fulfillmentOrder") or {}

    def _mutation(self, document: str, field: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        data = self.graphql(document, variables)
        result = data.get(field) or {}
        errors = [e for e in result.get("userErrors") or [] if isinstance(e, dict)]
        if errors:
            text = "; ".join(str(e.get("message")) for e in errors)
            call = {"query": field, "variables": variables}
            raise Permanent(f"Shopify refused to {what} the fulfilment hold on {variables['id']}: {text}",
                            platform=PLATFORM, code=str(errors[0].get("code") or "userErrors"),
                            excerpt=redact.excerpt("POST", self.endpoint(), call, 200, {"data": data}))
        return result
