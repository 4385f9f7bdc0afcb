"""A Shopify backfill of history reads the orders with one bulk operation and books exactly what the paged
listing books: the same invoices (lines, discounts, shipping, taxes, terms, shipping details), the same
payments, for the same orders."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

import sync.backfill as bf
from demo.simulators.shopify_orders import random_order
from sync.backfill import backfill

CUSTOMERS = [{"id": 990_000 + i, "email": f"buyer{i}@example.com", "first_name": f"Buyer{i}",
              "last_name": "Hopper"} for i in range(9)]
SKUS = [(f"SKU-{i:02d}", f"Product {i}", f"{7 + 3 * i}.50") for i in range(8)]
ORDERS = 50


def _history(platforms, shop) -> list[Any]:  # noqa: ANN001
    """50 varied orders of last month: 1 to 6 lines, discounts, shipping, taxes (some included), pending and
    partly paid ones, payment terms, shipped ones with tracking, and a few refunded (read on their own)."""
    rng = random.Random(18)
    start = datetime.now(UTC) - timedelta(days=20)
    made = []
    for i in range(ORDERS):
        order = random_order(rng, 6_100_000 + i, 30_000 + i, skus=SKUS, customers=CUSTOMERS,
                             created_at=start + timedelta(hours=i))
        if i % 7 == 3:
            order.payment_terms = {"type": "NET", "due_in_days": 30}
        if i % 5 == 1:
            order.fulfil(start + timedelta(hours=i, minutes=30), company="UPS", numbers=[f"1Z{i:06d}"],
                         urls=[f"https://ups.example/track/{i}"])
        if i in (10, 20, 30) and order.financial_status == "paid":
            order.refund({0: 1}, note="damaged")
        platforms.shopify.add_order(shop.domain, order)
        made.append(order)
    platforms.shopify.set_throttle(maximum_available=10_000, restore_rate=1_000, currently_available=10_000,
                                   domain=shop.domain)
    return made


def _books(platforms, realm: str) -> dict[str, Any]:  # noqa: ANN001
    """What the company's books say, per order number: the invoice (without QuickBooks' own ids and stamps)
    and the amounts paid against it."""
    qb = platforms.quickbooks
    drop = {"Id", "TxnId", "SyncToken", "MetaData", "CustomerRef", "domain", "sparse", "time"}  # QuickBooks' own

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in drop and not k.endswith("Ref")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    invoices = {i["Id"]: i for i in qb.objects(realm, "Invoice")}
    paid: dict[str, list[str]] = {}
    for p in qb.objects(realm, "Payment"):
        for line in p.get("Line") or []:
            for link in line.get("LinkedTxn") or []:
                number = invoices[link["TxnId"]]["DocNumber"]
                paid.setdefault(number, []).append(str(Decimal(str(line["Amount"]))))
    customers = {c["Id"]: c.get("DisplayName") for c in qb.objects(realm, "Customer")}
    return {i["DocNumber"]: {"invoice": clean(i), "customer": customers.get(i["CustomerRef"]["value"]),
                             "paid": sorted(paid.get(i["DocNumber"], []))} for i in invoices.values()}


def test_bulk_backfill_books_what_the_paged_backfill_books(make_hub, shop_factory, platforms,  # noqa: ANN001
                                                            monkeypatch) -> None:
    hub = make_hub()
    paged_shop, bulk_shop = shop_factory(hub), shop_factory(hub)
    orders = _history(platforms, paged_shop)
    for order in _history(platforms, bulk_shop):   # the same orders in a second shop and company
        assert order.order_id in {o.order_id for o in orders}
    since = date.today() - timedelta(days=60)

    monkeypatch.setattr(bf, "BULK_MIN_ORDERS", ORDERS + 1)   # 50 orders: below the threshold, pages
    paged = backfill(hub, paged_shop.merchant_id, since, batched=True)
    monkeypatch.setattr(bf, "BULK_MIN_ORDERS", ORDERS)       # 50 orders: at the threshold, one bulk operation
    platforms.shopify.calls.clear()
    bulk = backfill(hub, bulk_shop.merchant_id, since, batched=True)

    assert paged.listed == bulk.listed == ORDERS
    assert sorted((paged.statuses or {}).values()) == sorted((bulk.statuses or {}).values())
    assert set((bulk.statuses or {}).values()) == {"succeeded"}
    operations = [name for shop, name, _, _ in platforms.shopify.operations if shop == bulk_shop.domain]
    assert operations[:2] == ["HubOrdersCount", "HubBulkOrders"]
    assert "HubOrdersFullPage" not in operations                         # no page of orders was asked for
    refunded = sum(1 for o in orders if o.refunds)
    assert refunded and operations.count("HubOrder") == refunded         # the refunded orders, on their own
    assert platforms.shopify.count_calls(lambda c: c.path.startswith("/bulk-results/")) == 1

    paged_books, bulk_books = _books(platforms, paged_shop.realm), _books(platforms, bulk_shop.realm)
    assert len(bulk_books) == ORDERS
    assert bulk_books == paged_books
    # the comparison covers what it should: terms, shipping details, discounts, taxes and payments
    invoices = [b["invoice"] for b in bulk_books.values()]
    assert any(i.get("TrackingNum") for i in invoices) and any(i.get("DueDate") for i in invoices)
    assert any(b["paid"] for b in bulk_books.values())
    assert any(ln.get("DetailType") == "DiscountLineDetail" for i in invoices for ln in i["Line"])
    assert any((i.get("TxnTaxDetail") or {}).get("TotalTax") for i in invoices)


def test_a_resumed_bulk_backfill_runs_the_operation_again_and_books_nothing_twice(make_hub, shop_factory,  # noqa: ANN001
                                                                                 platforms, monkeypatch) -> None:
    hub = make_hub()
    shop = shop_factory(hub)
    _history(platforms, shop)
    monkeypatch.setattr(bf, "BULK_MIN_ORDERS", 1)
    monkeypatch.setattr(bf, "GROUP", 20)
    import sync.orders.runner as runner

    original, groups = runner.run_orders, iter(range(1, 100))
    # the process dies in the second group
    monkeypatch.setattr(runner, "run_orders", lambda *a, **k: (  # noqa: ANN002, ANN003
        original(*a, **k) if next(groups) != 2 else (_ for _ in ()).throw(RuntimeError("killed"))))
    since = date.today() - timedelta(days=60)
    with pytest.raises(RuntimeError, match="killed"):
        backfill(hub, shop.merchant_id, since, batched=True)
    assert 20 <= len(platforms.quickbooks.objects(shop.realm, "Invoice")) < ORDERS   # the first group only
    monkeypatch.setattr(runner, "run_orders", original)
    again = backfill(hub, shop.merchant_id, since, batched=True)
    assert again.resumed
    numbers = sorted(i["DocNumber"] for i in platforms.quickbooks.objects(shop.realm, "Invoice"))
    assert len(numbers) == len(set(numbers)) == ORDERS
    ran = [name for s, name, _, _ in platforms.shopify.operations if s == shop.domain]
    assert ran.count("HubBulkOrders") == 2 and "HubOrdersFullPage" not in ran
