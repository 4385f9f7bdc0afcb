"""Shopify fulfilment holds for the simulator: ``fulfillmentOrderHold`` and ``fulfillmentOrderReleaseHold`` on the
fulfilment orders ``Order.fulfillmentOrders`` serves (``ShopifyOrder.gql_fulfillment_order``).

As Shopify (2025-01): a hold puts the fulfilment order ON_HOLD (``fulfillmentHolds`` lists it; the order cannot
be fulfilled while it is held); an unknown fulfilment order is ``FULFILLMENT_ORDER_NOT_FOUND``; a closed or
cancelled one cannot be held; a second hold with a handle the app already uses on that fulfilment order is
``DUPLICATE_FULFILLMENT_HOLD_HANDLE``; more than 10 holds ``FULFILLMENT_ORDER_HOLD_LIMIT_REACHED``. Releasing a
fulfilment order that is not on hold, or a hold id it does not have, is refused. Every mutation costs 10
points (``demo.simulators.shopify_cost``)."""

from __future__ import annotations

import itertools
import re
from typing import Any

from demo.simulators.shopify_orders import ShopifyOrder

HOLD_LIMIT = 10
HOLDABLE = ("OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD")
REASON_TEXT = {"AWAITING_PAYMENT": "Awaiting payment", "OTHER": "Other"}
_hold_ids = itertools.count(9_100_000)


def _error(message: str, code: str | None, field: list[str] | None = None) -> dict[str, Any]:
    return {"field": field or ["id"], "message": message, "code": code}


class ShopifyHoldControls:
    """Mixed into ``ShopifySimulator``: the two hold mutations."""

    lock: Any
    orders: dict[str, dict[int, ShopifyOrder]]

    def hold_mutation_fields(self, domain: str) -> dict[str, Any]:
        return {"fulfillmentOrderHold": lambda info, id, fulfillmentHold: self._hold(domain, id, fulfillmentHold),
                "fulfillmentOrderReleaseHold": lambda info, id, holdIds=None, externalId=None:
                self._release(domain, id, holdIds)}

    def _fulfillment_order(self, domain: str, gid: str) -> tuple[ShopifyOrder, int] | None:
        m = re.fullmatch(r"gid://shopify/FulfillmentOrder/(\d+)", gid or "")
        if not m:
            return None
        number = int(m.group(1))
        order = self.orders.get(domain, {}).get(number // 100)
        index = number % 100 - 10
        if order is None or not 0 <= index < order.locations:
            return None
        return order, index

    def _hold(self, domain: str, gid: str, hold: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            found = self._fulfillment_order(domain, gid)
            if found is None:
                return {"fulfillmentHold": None, "fulfillmentOrder": None, "remainingFulfillmentOrder": None,
                        "userErrors": [_error("The fulfillment order could not be found.",
                                              "FULFILLMENT_ORDER_NOT_FOUND")]}
            order, index = found
            holds = order.holds.setdefault(index, [])
            error = None
            if order.fulfillment_order_status(index) not in HOLDABLE:
                error = _error("The fulfillment order cannot be placed on hold: it is "
                               f"{order.fulfillment_order_status(index).lower()}.", None)
            elif hold.get("handle") and any(h["handle"] == hold["handle"] for h in holds):
                error = _error("The handle provided for the fulfillment hold is already in use by this app for "
                               "another hold on this fulfillment order.", "DUPLICATE_FULFILLMENT_HOLD_HANDLE",
                               ["fulfillmentHold", "handle"])
            elif len(holds) >= HOLD_LIMIT:
                error = _error("The maximum number of fulfillment holds for this fulfillment order has been "
                               "reached for this app.", "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED")
            if error is not None:
                return {"fulfillmentHold": None, "fulfillmentOrder": order.gql_fulfillment_order(index),
                        "remainingFulfillmentOrder": None, "userErrors": [error]}
            made = {"id": f"gid://shopify/FulfillmentHold/{next(_hold_ids)}", "handle": hold.get("handle"),
                    "reason": hold["reason"], "reasonNotes": hold.get("reasonNotes"),
                    "displayReason": REASON_TEXT.get(hold["reason"], hold["reason"].replace("_", " ").capitalize()),
                    "heldByRequestingApp": True, "heldByApp": None}
            holds.append(made)
            return {"fulfillmentHold": dict(made), "fulfillmentOrder": order.gql_fulfillment_order(index),
                    "remainingFulfillmentOrder": None, "userErrors": []}

    def _release(self, domain: str, gid: str, hold_ids: list[str] | None) -> dict[str, Any]:
        with self.lock:
            found = self._fulfillment_order(domain, gid)
            if found is None:
                return {"fulfillmentOrder": None, "userErrors": [_error("The fulfillment order could not be found.",
                                                                        "FULFILLMENT_ORDER_NOT_FOUND")]}
            order, index = found
            holds = order.holds.get(index) or []
            if not holds:
                return {"fulfillmentOrder": order.gql_fulfillment_order(index),
                        "userErrors": [_error("The fulfillment order is not on hold.", None)]}
            unknown = [h for h in hold_ids or [] if h not in {x["id"] for x in holds}]
            if unknown:
                return {"fulfillmentOrder": order.gql_fulfillment_order(index),
                        "userErrors": [_error(f"The fulfillment hold {unknown[0]} could not be found on this "
                                              "fulfillment order.", None, ["holdIds"])]}
            order.holds[index] = [h for h in holds if hold_ids is not None and h["id"] not in hold_ids]
            return {"fulfillmentOrder": order.gql_fulfillment_order(index), "userErrors": []}
