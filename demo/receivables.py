"""The demo's receivables scene: a wholesale buyer on net 30 has an invoice 15 days overdue and a small credit
limit; their next net-30 order would take them over it, so the hub holds it from fulfilment in Shopify. A
dunning pass chases the overdue invoice (HubSpot properties, QuickBooks e-mails it again), and the receivables
page (``/console/receivables/<merchant>``) shows both."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests

from demo.simulators.shopify import webhook_headers
from demo.simulators.shopify_orders import build_order
from hub.mapping_rules import save_overrides
from sync.credit import set_limit
from sync.dunning import dunning_pass
from sync.receivables import receivables

if TYPE_CHECKING:
    from demo.simulators.shopify import ShopifySimulator
    from hub.runtime import Hub

BUYER = {"id": 7_900_001, "first_name": "Wren", "last_name": "Wholesale", "email": "wren@wholesale.example"}
LIMIT = "500.00"
STAGES = [{"stage": "overdue", "days": 1, "actions": ["properties", "send_invoice"]},
          {"stage": "final", "days": 30, "actions": ["properties", "task", "send_invoice"]}]


def demo_receivables(hub: Hub, shopify: ShopifySimulator, *, shop: str, url: str, secret: str, merchant_id: int,
                     settle: Callable[[], None]) -> dict[str, Any]:
    """Send the two net-30 orders, run a dunning pass; the figures, the hold and the calls it took."""
    with hub.session() as s:
        save_overrides(s, merchant_id, {"receivables": {"dunning": STAGES}})
        s.commit()
    now = datetime.now(UTC)
    late = _order(9_000_000_001, 1901, "420.00", now - timedelta(days=45))
    _send(shopify, shop, url, secret, late)
    settle()
    set_limit(hub, merchant_id, BUYER["email"], LIMIT, "demo")
    held = _order(9_000_000_002, 1902, "260.00", now - timedelta(hours=1))
    _send(shopify, shop, url, secret, held)
    settle()
    dunning = dunning_pass(hub, merchant_id)
    figures = receivables(hub, merchant_id)
    overdue = [i for i in figures.overdue_invoices() if i.doc_number == str(late.number)]
    holds = shopify.get_order(shop, held.order_id).holds
    return {"overdue": {"doc_number": overdue[0].doc_number, "balance": str(overdue[0].balance),
                        "days": overdue[0].days_overdue, "stage": overdue[0].dunning_stage} if overdue else None,
            "holds": figures.view()["holds"], "shopify_on_hold": any(holds.values()), "limit": LIMIT,
            "dunning_calls": dunning.calls, "dunning_acted": dunning.acted, "dso_days": str(figures.dso_days),
            "page": f"{url}/console/receivables/{merchant_id}"}


def _order(order_id: int, number: int, price: str, created: datetime) -> Any:
    return build_order(order_id=order_id, number=number, email=BUYER["email"], customer=dict(BUYER),
                       lines=[{"sku": "CRATE-12", "title": "Coffee beans, 12 kg crate", "quantity": 1, "price": price}],
                       financial_status="pending", gateway="manual", created_at=created,
                       payment_terms={"type": "NET", "due_in_days": 30})


def _send(shopify: ShopifySimulator, shop: str, url: str, secret: str, order: Any) -> None:
    shopify.add_order(shop, order)
    body = json.dumps(order.webhook_body()).encode()
    requests.post(f"{url}/webhooks/shopify", data=body, timeout=10,
                  headers=webhook_headers(shop, "orders/create", body, secret))


def receivables_lines(scene: dict[str, Any]) -> list[str]:
    lines = []
    o = scene["overdue"]
    if o:
        lines.append(f"Receivables:                invoice {o['doc_number']} of {BUYER['email']} is {o['days']} days "
                     f"overdue ({o['balance']}; dunning stage {o['stage'] or '-'}); DSO {scene['dso_days']} days")
    for h in scene["holds"]:
        lines.append(f"Credit hold:                {', '.join(h['orders'])} held from fulfilment in Shopify "
                     f"(on hold: {scene['shopify_on_hold']}): exposure {h['exposure']} over the limit of "
                     f"{h['limit']}; released when a payment brings it back within")
    calls = scene["dunning_calls"]
    lines.append(f"Dunning pass:               {len(scene['dunning_acted'])} stage(s) acted on; calls: QuickBooks "
                 f"{calls['quickbooks']}, HubSpot {calls['hubspot']}. See {scene['page']}")
    return lines


__all__ = ["demo_receivables", "receivables_lines"]
