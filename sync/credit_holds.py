"""A credit hold in the store and in HubSpot: placed, released, and the buyer's ``o2c_credit_hold`` property.

Every call reads the store first, so a retry (or a worker killed half-way) finishes the same hold:

* **Shopify**: the order's fulfilment orders are read (1 call); each open one without the hub's hold (handle
  ``o2c-credit``) gets ``fulfillmentOrderHold`` (reason AWAITING_PAYMENT, 10 points each). A fulfilment order
  already closed or cancelled has nothing left to ship. Shopify refuses a second hold with the same handle
  (``DUPLICATE_FULFILLMENT_HOLD_HANDLE``): taken as held. Release: ``fulfillmentOrderReleaseHold`` of the
  hub's holds only (a merchant's own holds stay).
* **WooCommerce**: the order is read; an open order goes to ``on-hold`` (its status before is kept) and gets
  one order note, found again by its reference (``ref N``) so a retry adds none. Release: the status it had
  before (moving it to ``processing`` would set ``date_paid``: WooCommerce and the hub would take an unpaid
  order as paid) and a note.
* **HubSpot**: ``o2c_credit_hold`` on the buyer's contact lists the held orders ("" when none); the property is
  created when missing (checked once, then remembered); written only when it changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors.errors import Permanent
from hub.credit_models import CreditOrder
from mappings.credit import HOLD_HANDLE, NOTE_MARK
from sync.ledger import Ledger, Source

if TYPE_CHECKING:
    from hub.runtime import Hub
    from sync.accounts import Accounts

HOLDABLE = ("OPEN", "SCHEDULED", "IN_PROGRESS", "ON_HOLD")
WOO_DONE = ("completed", "cancelled", "refunded", "failed", "trash", "checkout-draft")
PROPERTY = "o2c_credit_hold"
PROPERTY_LABEL = "Credit hold (O2C Hub)"


def place_in_store(accounts: Accounts, row: CreditOrder, text: str, calls: dict[str, int],
                   keep_status: Callable[[str], None]) -> dict[str, Any]:
    """Hold the order in its store; returns what was done (``holds``: the Shopify holds by fulfilment order,
    or the WooCommerce status before and the note; ``nothing``: why nothing could be held). ``keep_status``
    saves a WooCommerce order's status before it is changed (a worker killed right after still knows it)."""
    if row.platform == "shopify":
        client = accounts.shopify(row.store or None)
        orders = client.fulfillment_orders(row.order_id)
        calls["shopify"] += 1
        if orders is None:
            return {"nothing": "the order no longer exists in Shopify"}
        held: dict[str, str] = {}
        for fo in orders:
            if fo.get("status") not in HOLDABLE:
                continue
            mine = _hub_hold(fo)
            if mine is None:
                try:
                    mine = client.hold_fulfillment_order(fo["id"], handle=HOLD_HANDLE, reason_notes=text).get("id")
                except Permanent as exc:
                    if exc.code != "DUPLICATE_FULFILLMENT_HOLD_HANDLE":
                        raise
                    mine = "held"           # placed meanwhile (a retry racing its predecessor): held it is
                calls["shopify"] += 1
            held[fo["id"]] = str(mine)
        if not held:
            return {"nothing": "every fulfilment order of the order is already closed (nothing left to ship)"}
        return {"holds": held}
    client = accounts.woocommerce(row.connection_id)
    data = client.fetch_order(row.order_id)
    calls["woocommerce"] += 1
    if data is None:
        return {"nothing": "the order no longer exists in WooCommerce"}
    status = str(data.get("status") or "")
    done: dict[str, Any] = {"previous_status": row.previous_status or status}
    if status in WOO_DONE:
        return {"nothing": f"the order is already {status} in WooCommerce"}
    if status != "on-hold":
        if row.previous_status is None:
            keep_status(status)
        client.update_order(row.order_id, {"status": "on-hold"})
        calls["woocommerce"] += 1
    ref = f"{NOTE_MARK} (ref {row.id})"
    if not any(str(n.get("note") or "").startswith(ref) for n in client.order_notes(row.order_id)):
        client.add_order_note(row.order_id, ref + text[len(NOTE_MARK):])
        calls["woocommerce"] += 1
    calls["woocommerce"] += 1
    done["note"] = True
    return done


def release_in_store(accounts: Accounts, row: CreditOrder, why: str, calls: dict[str, int]) -> None:
    """Lift the hub's hold in the store (nothing else): Shopify's holds with the hub's handle; WooCommerce
    back to its status before the hold (when it is still on hold) with a note."""
    if row.platform == "shopify":
        client = accounts.shopify(row.store or None)
        orders = client.fulfillment_orders(row.order_id) or []
        calls["shopify"] += 1
        for fo in orders:
            mine = _hub_hold(fo)
            if mine is not None:
                client.release_fulfillment_hold(fo["id"], [mine])
                calls["shopify"] += 1
        return
    client = accounts.woocommerce(row.connection_id)
    data = client.fetch_order(row.order_id)
    calls["woocommerce"] += 1
    if data is None:
        return
    back = row.previous_status or "on-hold"
    if data.get("status") == "on-hold" and back != "on-hold":
        client.update_order(row.order_id, {"status": back})
        calls["woocommerce"] += 1
    ref = f"{NOTE_MARK} released (ref {row.id})"
    if not any(str(n.get("note") or "").startswith(ref) for n in client.order_notes(row.order_id)):
        client.add_order_note(row.order_id, f"{ref}: {why}")
        calls["woocommerce"] += 1
    calls["woocommerce"] += 1


def _hub_hold(fo: dict[str, Any]) -> str | None:
    return next((str(h.get("id")) for h in fo.get("fulfillmentHolds") or [] if h.get("handle") == HOLD_HANDLE), None)


def write_contact(hub: Hub, accounts: Accounts, merchant_id: int, contact_id: str | None,
                  calls: dict[str, int]) -> str | None:
    """Bring the contact's ``o2c_credit_hold`` up to date with its held orders; returns what was written
    (None: nothing to write, no HubSpot connection or no contact)."""
    if not contact_id:
        return None
    with hub.session() as s:
        names = [n or o for n, o, e, li in s.execute(
            select(CreditOrder.order_name, CreditOrder.order_id, CreditOrder.exposure, CreditOrder.limit_amount)
            .where(CreditOrder.merchant_id == merchant_id, CreditOrder.contact_id == contact_id,
                   CreditOrder.hold_status.in_(("placing", "held"))).order_by(CreditOrder.id))]
    value = f"held: {', '.join(names)}" if names else ""
    ledger = Ledger(hub.sessions, merchant_id)
    source = Source("hub", "credit_contact", contact_id)
    bound = ledger.find(source, "hubspot", "credit_hold")
    if (bound is None and not value) or (bound is not None and (bound.data or {}).get("value") == value):
        return None
    hs = accounts.hubspot()
    if hs is None:
        return None
    prop = Source("hub", "hubspot_property", PROPERTY)
    if not ledger.target_id(prop, "hubspot", "property"):
        calls["hubspot"] += 1
        if not hs.contact_property_exists(PROPERTY):
            hs.create_contact_property(PROPERTY, PROPERTY_LABEL, "string", "text",
                                       description="Orders O2C Hub holds from fulfilment: over the credit limit")
            calls["hubspot"] += 1
        ledger.bind(prop, "hubspot", "property", PROPERTY)
    hs.update_contacts({contact_id: {PROPERTY: value}})
    calls["hubspot"] += 1
    ledger.bind(source, "hubspot", "credit_hold", contact_id, data={"value": value})
    return value
