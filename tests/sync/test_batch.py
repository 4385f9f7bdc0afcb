"""The order pipeline (``sync.orders``) over many orders of one merchant, with batch calls, each order ending with
its own outcome, results matched by bId, and no duplicate after a lost batch answer."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from sqlalchemy import select

from connectors.shopify_bulk_queries import FULL_PAGE_SIZE
from demo.simulators.quickbooks import QuickBooksSimulator
from hub.models import Binding, SyncRun
from sync import runs
from sync.orders.runner import run_orders as run_batch
from tests.helpers import an_order

BUYERS = [("ada@example.com", "Ada", "Lovelace"), ("bob@example.com", "Bob", "Babbage"),
          ("cy@example.com", "Cy", "Young"), ("di@example.com", "Di", "Prince")]
SKUS = [("TEE-BLK-M", "Black tee", "24.00"), ("MUG-1", "Mug", "12.50"), ("CAP-9", "Cap", "15.00")]


def _orders(platforms, shop, count: int, *, first_id: int = 500_001, first_number: int = 2001,  # noqa: ANN001
            status: str | None = None) -> list:
    made = []
    for i in range(count):
        email, first, last = BUYERS[i % len(BUYERS)]
        sku, title, price = SKUS[i % len(SKUS)]
        lines = [{"sku": sku, "title": title, "quantity": 1 + i % 2, "price": price}]
        if i % 3 == 0:
            lines.append({"sku": SKUS[(i + 1) % len(SKUS)][0], "title": "Extra", "quantity": 1, "price": "3.00"})
        order = an_order(first_id + i, first_number + i, email=email, lines=lines,
                         financial_status=status or ("pending" if i % 5 == 4 else "paid"),
                         customer={"id": 880_000 + i % len(BUYERS), "first_name": first, "last_name": last,
                                   "email": email})
        platforms.shopify.add_order(shop.domain, order)
        made.append(order)
    return made


def _open(hub, shop, orders) -> list[int]:  # noqa: ANN001
    ids = []
    with hub.session() as s:
        for o in orders:
            run, _ = runs.open_run(s, merchant_id=shop.merchant_id, kind="order", platform="shopify",
                                   source_id=str(o.order_id), source_name=o.name, trigger="test")
            ids.append(run.id)
        s.commit()
    return ids


def _requeue(hub, ids: list[int]) -> None:  # noqa: ANN001
    runs.requeue(hub.sessions, ids)


def _status(hub, ids: list[int]) -> dict[int, SyncRun]:  # noqa: ANN001
    with hub.session() as s:
        return {r.id: r for r in s.scalars(select(SyncRun).where(SyncRun.id.in_(ids)))}


def _plus_plan(platforms, shop) -> None:  # noqa: ANN001
    """A Shopify Plus shop (cost bucket restored at 1,000 points/s): tests about call counts and QuickBooks
    do not wait for a Standard shop's 100 points/s (``tests/sync/test_one_order_never_fails_another.py`` does)."""
    platforms.shopify.set_throttle(maximum_available=10_000, restore_rate=1_000, currently_available=10_000,
                                   domain=shop.domain)


def _qb_create(qb: QuickBooksSimulator, realm: str, entity: str, body: dict) -> dict:
    """What a bookkeeper types into QuickBooks (the simulator's own write path)."""
    return qb._control(qb.companies[realm], entity, "create", body)


def _singles(qb: QuickBooksSimulator) -> int:
    return _qb_calls(qb, "/invoice") + _qb_calls(qb, "/payment")


def _qb_calls(qb: QuickBooksSimulator, what: str = "") -> int:
    return qb.count_calls(lambda c: "/v3/company/" in c.path and what in c.path)


def test_a_batch_syncs_each_order_once_with_few_batch_calls(make_hub, shop_factory, platforms) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    _plus_plan(platforms, shop)
    qb = platforms.quickbooks
    # Cy is already a customer in QuickBooks (found by e-mail, not created); the mug already exists (by SKU)
    _qb_create(qb, shop.realm, "Customer", {"DisplayName": "Cy Young",
                                            "PrimaryEmailAddr": {"Address": "cy@example.com"}})
    first = _orders(platforms, shop, 4, first_id=400_001, first_number=1501)  # Ada, Bob, Cy, Di known from before
    assert set(run_batch(hub, _open(hub, shop, first[:1])).statuses.values()) == {"succeeded"}
    orders = _orders(platforms, shop, 40)
    hs = platforms.hubspot
    def contact_calls(c) -> bool:  # noqa: ANN001
        return "/objects/contacts/" in c.path

    def deal_calls(c) -> bool:  # noqa: ANN001
        return not contact_calls(c)

    before_qb, before_hs, before_single = _qb_calls(qb), hs.count_calls(contact_calls), _singles(qb)
    before_deals = hs.count_calls(deal_calls)

    result = run_batch(hub, _open(hub, shop, orders))

    assert result.count("succeeded") == 40, _status(hub, list(result.statuses))
    customers = qb.objects(shop.realm, "Customer")
    assert sorted(c["PrimaryEmailAddr"]["Address"] for c in customers) == sorted(b[0] for b in BUYERS)
    invoices = {i["DocNumber"]: i for i in qb.objects(shop.realm, "Invoice")}
    for o in orders:
        assert Decimal(str(invoices[str(o.number)]["TotalAmt"])) == o.total
    paid = [o for o in orders if o.financial_status == "paid"]
    payments = qb.objects(shop.realm, "Payment")
    assert len(payments) == len(paid) + 1
    assert sorted(p["PaymentRefNum"] for p in payments) == sorted(o.name for o in [*paid, first[0]])
    # 40 orders: a handful of look-ups and batch requests, no invoice or payment created alone
    assert _singles(qb) == before_single
    assert _qb_calls(qb) - before_qb <= 12
    assert qb.count_calls(lambda c: c.path.endswith("/batch")) >= 3
    assert hs.count_calls(contact_calls) - before_hs == 1
    # 40 deals: the key property looked up, one upsert, the contact associations, the contacts' companies
    # read, one line item create
    assert hs.count_calls(deal_calls) - before_deals <= 5
    assert len(hs.deals(shop.portal)) == 41
    assert len(platforms.hubspot.contacts(shop.portal)) == len(BUYERS)


def test_a_bad_item_fails_only_its_order_with_its_reason(make_hub, shop_factory, platforms) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    qb = platforms.quickbooks
    orders = _orders(platforms, shop, 6)
    assert run_batch(hub, _open(hub, shop, orders[:3])).count("succeeded") == 3
    # the bookkeeper made the cap inactive, and another order already took number 2008
    with hub.session() as s:
        cap = s.scalar(select(Binding).where(Binding.source_type == "sku", Binding.source_id == "CAP-9"))
    qb.edit(shop.realm, "Item", cap.target_id, {"Active": False})
    _qb_create(qb, shop.realm, "Invoice", {
        "DocNumber": "2008", "PrivateNote": "typed by hand", "CustomerRef": {"value": _any_customer(qb, shop)},
        "Line": [{"Amount": Decimal("1.00"), "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": _item(hub, "MUG-1")}, "Qty": 1,
                                          "UnitPrice": Decimal("1.00")}}]})
    more = _orders(platforms, shop, 6, first_id=500_004, first_number=2004)[:6]
    ids = _open(hub, shop, more)

    result = run_batch(hub, ids)

    by_run = _status(hub, ids)
    names = {r.id: r.source_name for r in by_run.values()}
    failed = {names[i]: by_run[i] for i, st in result.statuses.items() if st == "failed"}
    with_cap = {o.name for o in more if any(ln.sku == "CAP-9" for ln in o.lines)}
    assert with_cap == {"#2006", "#2009"}
    assert set(failed) == with_cap | {"#2008"}, {names[i]: st for i, st in result.statuses.items()}
    for name in with_cap:
        assert "Invalid Reference" in failed[name].reason and failed[name].error_code.startswith("quickbooks:")
    assert "2008" in failed["#2008"].reason and failed["#2008"].error_code == "quickbooks:6140"
    assert result.count("succeeded") == 3
    docs = sorted(i["DocNumber"] for i in qb.objects(shop.realm, "Invoice"))
    assert docs == ["2001", "2002", "2003", "2004", "2005", "2007", "2008"]


def _item(hub, sku: str) -> str:  # noqa: ANN001
    with hub.session() as s:
        return s.scalar(select(Binding.target_id).where(Binding.source_type == "sku", Binding.source_id == sku))


def _any_customer(qb, shop) -> str:  # noqa: ANN001
    return qb.objects(shop.realm, "Customer")[0]["Id"]


def test_results_are_matched_to_their_orders_by_bid(make_hub, shop_factory, platforms, monkeypatch) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    real = QuickBooksSimulator._batch

    def reversed_batch(self, company, body):  # noqa: ANN001, ANN202 - the API promises bIds, not an order
        out = real(self, company, body)
        out["BatchItemResponse"].reverse()
        return out

    monkeypatch.setattr(QuickBooksSimulator, "_batch", reversed_batch)
    orders = _orders(platforms, shop, 12)
    ids = _open(hub, shop, orders)
    assert run_batch(hub, ids).count("succeeded") == 12
    invoices = {i["Id"]: i for i in platforms.quickbooks.objects(shop.realm, "Invoice")}
    with hub.session() as s:
        bindings = {b.source_id: b for b in s.scalars(select(Binding).where(Binding.source_type == "order"))
                    if b.target_type == "invoice"}
    for o in orders:
        inv = invoices[bindings[str(o.order_id)].target_id]
        assert inv["DocNumber"] == str(o.number) and Decimal(str(inv["TotalAmt"])) == o.total
        assert str(o.order_id) in inv["PrivateNote"]


@pytest.mark.parametrize("lost", ["invoices", "payments"])
def test_a_lost_batch_answer_is_retried_without_duplicates(make_hub, shop_factory, platforms, lost) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    qb = platforms.quickbooks
    warm = _orders(platforms, shop, 4, first_id=400_001, first_number=1501)
    run_batch(hub, _open(hub, shop, warm))  # customers and items bound: the next batch request is the invoices'
    orders = _orders(platforms, shop, 8, status="pending" if lost == "payments" else None)
    ids = _open(hub, shop, orders)
    if lost == "payments":  # invoiced while pending; then paid: the next batch request is the payments'
        assert run_batch(hub, ids).count("succeeded") == 8
        for o in orders:
            platforms.shopify.update_order(shop.domain, o.order_id, financial_status="paid")
        _requeue(hub, ids)
    qb.drop_response_next(1, path_contains="batch")

    first = run_batch(hub, ids)

    assert set(first.statuses.values()) == {"retrying"}, _status(hub, ids)
    assert "502" in _status(hub, ids)[ids[0]].reason
    _requeue(hub, ids)
    second = run_batch(hub, ids)
    assert second.count("succeeded") == 8, _status(hub, ids)
    docs = [i["DocNumber"] for i in qb.objects(shop.realm, "Invoice")]
    assert len(docs) == len(set(docs)) == 12
    paid = [o for o in [*warm, *orders]
            if platforms.shopify.get_order(shop.domain, o.order_id).financial_status == "paid"]
    payments = [p["PaymentRefNum"] for p in qb.objects(shop.realm, "Payment")]
    assert sorted(payments) == sorted(o.name for o in paid)


def test_a_lone_order_of_a_known_buyer_costs_two_quickbooks_calls_and_a_second_doc_number_is_refused(
        make_hub, shop_factory, platforms) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    qb = platforms.quickbooks
    warm = _orders(platforms, shop, 4, first_id=410_001, first_number=1601)
    run_batch(hub, _open(hub, shop, warm))   # buyers and items bound
    [lone] = _orders(platforms, shop, 1, first_id=410_101, first_number=1701)
    with qb.lock:
        qb.calls.clear()
    assert run_batch(hub, _open(hub, shop, [lone])).count("succeeded") == 1
    # no look-up first: the invoice was never asked for, so QuickBooks cannot have it
    assert [c.path.rsplit("/", 1)[1] for c in qb.calls if "/v3/company/" in c.path] == ["invoice", "payment"]

    # a bookkeeper typed an invoice numbered like the next order: QuickBooks refuses the duplicate number,
    # and the order fails with the reason (no second invoice with that number, none taken as the order's)
    customer, item = qb.objects(shop.realm, "Customer")[0], qb.objects(shop.realm, "Item")[0]
    _qb_create(qb, shop.realm, "Invoice", {"DocNumber": "1702", "CustomerRef": {"value": customer["Id"]},
                                            "Line": [{"Amount": 5, "DetailType": "SalesItemLineDetail",
                                                      "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]},
                                                                              "Qty": 1, "UnitPrice": 5}}]})
    [clash] = _orders(platforms, shop, 1, first_id=410_102, first_number=1702)
    [run_id] = _open(hub, shop, [clash])
    assert run_batch(hub, [run_id]).statuses[run_id] == "failed"
    reason = _status(hub, [run_id])[run_id].reason
    assert "already has an invoice numbered 1702" in reason and "another order" in reason, reason
    assert sum(1 for i in qb.objects(shop.realm, "Invoice") if i["DocNumber"] == "1702") == 1


def test_shopify_backfill_syncs_listed_orders_in_batches_and_resumes(make_hub, shop_factory, platforms,
                                                                     monkeypatch) -> None:  # noqa: ANN001
    from click.testing import CliRunner

    import sync.backfill as bf
    from cli.main import main as o2c

    hub = make_hub()
    shop = shop_factory(hub)
    _plus_plan(platforms, shop)
    orders = _orders(platforms, shop, 40)
    busy = _open(hub, shop, orders[-1:])  # a webhook's run, claimed by a worker that is still alive
    assert runs.claim(hub.sessions, busy[0], 600) is not None
    monkeypatch.setattr(bf, "GROUP", 16)
    real, calls = bf._sync_store, {"groups": 0}

    def interrupted(*args, **kw):  # noqa: ANN002, ANN003, ANN202 - the process dies in the second group
        import sync.orders.runner as batch

        original = batch.run_orders

        def run_batch(*a, **k):  # noqa: ANN002, ANN003, ANN202
            calls["groups"] += 1
            if calls["groups"] == 2:
                raise RuntimeError("killed")
            return original(*a, **k)

        monkeypatch.setattr(batch, "run_orders", run_batch)
        return real(*args, **kw)

    monkeypatch.setattr(bf, "_sync_store", interrupted)
    first = CliRunner().invoke(o2c, ["backfill", str(shop.merchant_id), "--since", "2020-01-01"])
    assert first.exit_code == 1 and "run it again to resume" in first.output
    monkeypatch.setattr(bf, "_sync_store", real)
    import sync.orders.runner as batch

    monkeypatch.setattr(batch, "run_orders", batch.run_orders)
    shopify_before = platforms.shopify.count_calls()
    again = CliRunner().invoke(o2c, ["backfill", str(shop.merchant_id), "--since", "2020-01-01"])
    assert again.exit_code == 0, again.output
    assert "backfill resumed" in again.output and "failed" not in again.output
    # the pages not synced before (FULL_PAGE_SIZE whole orders each; the first group of 16 was) are all
    # the Shopify calls: no order is fetched on its own
    pages = math.ceil(len(orders) / FULL_PAGE_SIZE) - math.ceil(16 / FULL_PAGE_SIZE)
    assert platforms.shopify.count_calls() - shopify_before == pages
    invoices = sorted(i["DocNumber"] for i in platforms.quickbooks.objects(shop.realm, "Invoice"))
    assert invoices == sorted(str(o.number) for o in orders[:-1])  # the claimed run was left alone
    with hub.session() as s:
        assert s.get(SyncRun, busy[0]).status == "running"
        assert len(s.scalars(select(SyncRun)).all()) == 40
