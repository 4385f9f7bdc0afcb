"""Partial and split payments: every capture the store takes is its own QuickBooks payment on the invoice,
to the cent and once; the invoice's balance is what the store still expects; a voided capture has its
payment voided."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from demo.simulators.shopify_orders import ShopifyOrder
from tests.helpers import an_order, settled, webhook


def deliver(client: Any, order: ShopifyOrder, shop: Any, topic: str = "orders/updated") -> None:
    body, headers = webhook(order, shop.domain, topic)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200


def books(platforms: Any, shop: Any) -> tuple[dict, list[dict]]:
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    return invoice, platforms.quickbooks.objects(shop.realm, "Payment")


def test_an_order_captured_in_three_parts_gets_three_payments_and_a_zero_balance(hub, client, shop,  # noqa: ANN001
                                                                                 platforms) -> None:
    order = an_order(financial_status="authorized")
    platforms.shopify.add_order(shop.domain, order)
    deliver(client, order, shop, "orders/create")
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason
    invoice, payments = books(platforms, shop)
    assert payments == [] and Decimal(str(invoice["Balance"])) == order.total

    parts = [Decimal("20.00"), Decimal("30.00"), order.total - Decimal("50.00")]
    for n, part in enumerate(parts, 1):
        order.capture(part, order.created_at + timedelta(hours=n))
        deliver(client, order, shop)
        deliver(client, order, shop)   # Shopify delivers at least once: the same update again
        runs = settled(hub)
        assert all(r.status in ("succeeded", "skipped") for r in runs), [r.reason for r in runs]
        invoice, payments = books(platforms, shop)
        assert [Decimal(str(p["TotalAmt"])) for p in payments] == parts[:n]
        assert Decimal(str(invoice["Balance"])) == order.total - sum(parts[:n])
        assert all(p["Line"][0]["LinkedTxn"] == [{"TxnId": invoice["Id"], "TxnType": "Invoice"}] for p in payments)
    assert Decimal(str(invoice["Balance"])) == 0
    notes = [p["PrivateNote"] for p in payments]
    assert len(set(notes)) == 3 and all("#1001" in n and "capture" in n for n in notes), notes


def test_a_partially_captured_order_leaves_what_the_store_still_expects_open(hub, client, shop,  # noqa: ANN001
                                                                            platforms) -> None:
    order = an_order(financial_status="partially_paid")   # half captured at checkout
    platforms.shopify.add_order(shop.domain, order)
    deliver(client, order, shop, "orders/create")
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason
    invoice, [payment] = books(platforms, shop)
    assert Decimal(str(payment["TotalAmt"])) == order.received
    assert Decimal(str(invoice["Balance"])) == order.outstanding > 0
    assert Decimal(str(invoice["TotalAmt"])) == order.total


def test_a_voided_capture_has_its_payment_voided_and_the_invoice_open_again(hub, client, shop,  # noqa: ANN001
                                                                            platforms, runner) -> None:
    import json

    order = an_order(financial_status="authorized")
    platforms.shopify.add_order(shop.domain, order)
    first = order.capture(Decimal("20.00"), order.created_at + timedelta(hours=1))
    order.capture(Decimal("15.00"), order.created_at + timedelta(hours=2))
    deliver(client, order, shop, "orders/create")
    settled(hub)
    invoice, payments = books(platforms, shop)
    assert sorted(Decimal(str(p["TotalAmt"])) for p in payments) == [Decimal("15.00"), Decimal("20.00")]

    order.void(first, order.created_at + timedelta(hours=3))
    deliver(client, order, shop)
    runs = settled(hub)
    assert runs[-1].status == "succeeded", runs[-1].reason
    invoice, payments = books(platforms, shop)
    by_amount = {p["Id"]: Decimal(str(p["TotalAmt"])) for p in payments}
    assert sorted(by_amount.values()) == [Decimal("0"), Decimal("15.00")]   # voided: amounts zero, kept
    assert Decimal(str(invoice["Balance"])) == order.total - Decimal("15.00") == order.outstanding
    deliver(client, order, shop)   # again: nothing more is voided or paid
    settled(hub)
    assert books(platforms, shop)[1] == payments
    [row] = json.loads(runner.invoke(["orders", "list", "--json"]).output)
    live = [i for i, a in by_amount.items() if a > 0]
    assert row["quickbooks"]["payment_ids"] == live, row
