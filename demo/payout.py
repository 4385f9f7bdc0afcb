"""The demo's payout: Shopify Payments pays the demo shop's captured orders out (less its fees), and the hub posts
the payout as one QuickBooks deposit equal to it to the cent (``sync.payouts``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sync.payouts import sync_payouts

if TYPE_CHECKING:
    from demo.simulators.quickbooks import QuickBooksSimulator
    from demo.simulators.shopify import ShopifySimulator
    from demo.simulators.shopify_orders import ShopifyOrder
    from hub.runtime import Hub


def demo_payout(hub: Hub, shopify: ShopifySimulator, quickbooks: QuickBooksSimulator, *, shop: str, realm: str,
                merchant_id: int, orders: list[ShopifyOrder]) -> dict[str, Any] | None:
    """Pay the shop's Shopify Payments balance out and sync payouts; what QuickBooks now holds for it."""
    for order in orders:
        shopify.record_order(shop, order.order_id)
    try:
        payout = shopify.schedule_payout(shop, issued_at=datetime.now(UTC))
    except ValueError:   # nothing captured through Shopify Payments
        return None
    shopify.pay_payout(shop, payout.id)
    before = quickbooks.count_calls()
    sync_payouts(hub, merchant_id)
    calls = quickbooks.count_calls() - before
    deposit = next((d for d in quickbooks.objects(realm, "Deposit") if f" payout {payout.id} " in
                    f" {d.get('PrivateNote')} "), None)
    total = Decimal(str(deposit["TotalAmt"])) if deposit else None
    return {"payout_id": str(payout.id), "net": str(payout.net), "charges": sum(
        t.type == "CHARGE" for t in payout.transactions), "deposit_id": deposit["Id"] if deposit else None,
            "deposit_total": str(total) if total is not None else None, "tied_out": total == payout.net,
            "lines": len(deposit["Line"]) if deposit else 0, "quickbooks_calls": calls}


def payout_line(payout: dict[str, Any] | None) -> str:
    if payout is None:
        return "Payouts:                    none (nothing was captured through Shopify Payments)"
    if not payout["deposit_id"]:
        return f"Payouts:                    payout {payout['payout_id']} ({payout['net']}) held: see o2c payouts list"
    return (f"Payouts:                    payout {payout['payout_id']} of {payout['charges']} charges, net "
            f"{payout['net']} → QuickBooks deposit {payout['deposit_id']} of {payout['deposit_total']} "
            f"({payout['lines']} lines; tied out to the cent: {payout['tied_out']}; "
            f"{payout['quickbooks_calls']} QuickBooks calls)")
