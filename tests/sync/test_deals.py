"""The order as a HubSpot deal: one deal per order, upserted by its order key, associated with the buyer's
contact, one line item per order line, its stage following the order (awaiting payment → paid → shipped →
refunded), whatever the retries."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from demo.simulators.shopify_orders import ShopifyOrder
from tests.helpers import an_order, settled, webhook


def deliver(client: Any, order: ShopifyOrder, shop: Any, topic: str = "orders/updated") -> None:
    body, headers = webhook(order, shop.domain, topic)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200


def deal_of(platforms: Any, shop: Any, order: ShopifyOrder) -> dict:
    [deal] = [d for d in platforms.hubspot.deals(shop.portal)
              if d["properties"]["o2c_order_key"] == f"shopify::{order.order_id}"]
    return deal


@pytest.mark.slow
def test_twenty_orders_through_the_cycle_end_with_one_deal_each_in_the_right_stage(hub, client, shop,  # noqa: ANN001
                                                                                   platforms, runner) -> None:
    hs = platforms.hubspot
    # a Shopify Plus shop (1,000 points/s): every stage pulls its 20 orders again, and this test is about deals
    platforms.shopify.set_throttle(maximum_available=10_000, restore_rate=1_000, domain=shop.domain)
    orders = [an_order(470_001 + n, 3001 + n, financial_status="authorized", email=f"buyer{n % 7}@example.com",
                       customer={"id": 881_000 + n % 7, "first_name": f"B{n % 7}", "last_name": "Cycle",
                                 "email": f"buyer{n % 7}@example.com"}) for n in range(20)]
    for order in orders:
        platforms.shopify.add_order(shop.domain, order)
        deliver(client, order, shop, "orders/create")
    settled(hub, timeout=60)
    assert {deal_of(platforms, shop, o)["properties"]["dealstage"] for o in orders} == {"contractsent"}
    for order in orders:   # paid, shipped in two parts
        order.capture(order.outstanding, order.created_at + timedelta(hours=1))
        deliver(client, order, shop, "orders/paid")
    settled(hub, timeout=60)
    assert {deal_of(platforms, shop, o)["properties"]["dealstage"] for o in orders} == {"closedwon"}
    for order in orders:
        tee, mug = order.lines
        order.fulfil(order.created_at + timedelta(days=1), company="UPS", numbers=[f"1Z{order.order_id}"],
                     lines={tee.id: tee.quantity})
        order.fulfil(order.created_at + timedelta(days=2), company="UPS", numbers=[f"2Z{order.order_id}"],
                     lines={mug.id: mug.quantity})
        deliver(client, order, shop, "orders/fulfilled")
    settled(hub, timeout=60)
    for order in orders[:5]:   # five sent back and refunded in full
        order.refund({0: order.lines[0].quantity, 1: order.lines[1].quantity}, shipping=True, note="returned")
        deliver(client, order, shop)
    settled(hub, timeout=60)
    calls = len(hs.calls)

    deals = hs.deals(shop.portal)
    assert len(deals) == len(orders)   # one deal per order, whatever the stage changes
    for n, order in enumerate(orders):
        deal = deal_of(platforms, shop, order)
        refunded = n < 5
        assert deal["properties"]["dealstage"] == ("closedlost" if refunded else "closedwon")
        assert Decimal(deal["properties"]["amount"]) == (0 if refunded else order.total)
        assert deal["properties"]["dealname"] == f"Order {order.name}"
        items = hs.line_items_of(shop.portal, deal["id"])
        assert sorted((i["properties"]["hs_sku"], i["properties"]["quantity"]) for i in items) == \
            sorted((ln.sku, str(ln.quantity)) for ln in order.lines)
        assert all(Decimal(i["properties"]["price"]) >= 0 for i in items)
        [contact] = hs.deal_contacts(shop.portal, deal["id"])
        assert next(c for c in hs.contacts(shop.portal) if c["id"] == contact)["properties"]["email"] == \
            order.customer_email
    invoices = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert len(invoices) == len(orders) and all(i.get("ShipDate") and i.get("TrackingNum") for i in invoices)
    listed = json.loads(runner.invoke(["orders", "list", "--json", "--limit", "100"]).output)
    assert all(o["hubspot"]["deal_id"] for o in listed), listed[0]
    print(f"\nHubSpot calls per order over the cycle (create, paid, fulfilled): {calls / len(orders):.2f}")


def test_a_crash_after_the_deal_upsert_leaves_one_deal_and_one_set_of_line_items(hub, client, shop,  # noqa: ANN001
                                                                                 platforms, monkeypatch) -> None:
    from sync.orders import deals as deal_step

    real_create, crashed = deal_step.NewBinding, []

    def binding_then_crash(*args: Any, **kwargs: Any) -> Any:
        if args and args[2] == "deal" and not crashed:   # the worker dies before the deal's binding is kept
            crashed.append(True)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        return real_create(*args, **kwargs)

    monkeypatch.setattr(deal_step, "NewBinding", binding_then_crash)
    order = an_order()
    platforms.shopify.add_order(shop.domain, order)
    deliver(client, order, shop, "orders/create")
    [run] = settled(hub, timeout=30)
    assert crashed and run.status == "succeeded", run.reason
    [deal] = platforms.hubspot.deals(shop.portal)
    assert len(platforms.hubspot.line_items_of(shop.portal, deal["id"])) == len(order.lines)
    deliver(client, order, shop)   # and once more: nothing changes
    settled(hub)
    assert len(platforms.hubspot.deals(shop.portal)) == 1
    assert len(platforms.hubspot.line_items_of(shop.portal, deal["id"])) == len(order.lines)


def test_a_refund_in_full_closes_the_deal_lost_and_a_partial_one_lowers_its_amount(hub, client, shop,  # noqa: ANN001
                                                                                   platforms) -> None:
    order = an_order()
    platforms.shopify.add_order(shop.domain, order)
    deliver(client, order, shop, "orders/create")
    settled(hub)
    part = platforms.shopify.refund_order(shop.domain, order.order_id, {0: 1})["amount"]   # one tee back
    deliver(client, order, shop)
    runs = settled(hub)
    assert runs[-1].status == "succeeded", runs[-1].reason
    deal = deal_of(platforms, shop, order)
    assert deal["properties"]["dealstage"] == "closedwon"
    assert Decimal(deal["properties"]["amount"]) == order.total - part
    assert Decimal(deal["properties"]["o2c_refunded_amount"]) == part
    platforms.shopify.refund_order(shop.domain, order.order_id, {0: 1, 1: 1}, shipping=True)   # the rest
    deliver(client, order, shop)
    settled(hub)
    deal = deal_of(platforms, shop, order)
    assert deal["properties"]["dealstage"] == "closedlost" and Decimal(deal["properties"]["amount"]) == 0
    assert len(platforms.hubspot.deals(shop.portal)) == 1


def test_rules_naming_a_stage_the_pipeline_lacks_are_refused_when_saved(shop, platforms, runner,  # noqa: ANN001
                                                                        tmp_path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("hubspot:\n  deal_stages:\n    shipped: shipped\n", encoding="utf-8")
    refused = runner.invoke(["mapping", "import", str(shop.merchant_id), str(rules)])
    assert refused.exit_code == 1 and "hubspot.deal_stages.shipped" in refused.output, refused.output
    platforms.hubspot.add_pipeline(shop.portal, "webshop", [("awaiting", "Awaiting payment", "0.5"),
                                                            ("paid", "Paid", "1.0"), ("shipped", "Shipped", "1.0"),
                                                            ("lost", "Lost", "0.0")])
    rules.write_text("hubspot:\n  deal_pipeline: webshop\n  deal_stages:\n    awaiting_payment: awaiting\n"
                     "    paid: paid\n    shipped: shipped\n    refunded: lost\n    cancelled: lost\n",
                     encoding="utf-8")
    saved = runner.invoke(["mapping", "import", str(shop.merchant_id), str(rules)])
    assert saved.exit_code == 0, saved.output


def test_a_cancelled_unpaid_order_closes_its_deal_lost(hub, client, shop, platforms) -> None:  # noqa: ANN001
    from datetime import UTC, datetime

    order = an_order(financial_status="pending")
    platforms.shopify.add_order(shop.domain, order)
    deliver(client, order, shop, "orders/create")
    settled(hub)
    assert deal_of(platforms, shop, order)["properties"]["dealstage"] == "contractsent"
    platforms.shopify.update_order(shop.domain, order.order_id, cancelled_at=datetime.now(UTC),
                                   cancel_reason="CUSTOMER")
    deliver(client, order, shop, "orders/cancelled")
    runs = settled(hub)
    assert runs[-1].status == "succeeded", runs[-1].reason
    assert deal_of(platforms, shop, order)["properties"]["dealstage"] == "closedlost"
    assert len(platforms.hubspot.deals(shop.portal)) == 1


def test_the_deal_is_associated_with_the_contacts_company_too(hub, client, shop, platforms) -> None:  # noqa: ANN001
    ada = platforms.hubspot.add_contact(shop.portal, {"email": "ada@example.com", "firstname": "Ada"})
    company = platforms.hubspot.add_company(shop.portal, "Analytical Engines Ltd", contact_id=ada["id"])
    order = an_order()
    platforms.shopify.add_order(shop.domain, order)
    deliver(client, order, shop, "orders/create")
    settled(hub)
    deal = deal_of(platforms, shop, order)
    assert platforms.hubspot.deal_contacts(shop.portal, deal["id"]) == [ada["id"]]
    assert platforms.hubspot.deal_companies(shop.portal, deal["id"]) == [company]


def test_the_order_key_property_is_looked_up_once_and_made_again_when_deleted(hub, client, shop,  # noqa: ANN001
                                                                              platforms) -> None:
    hs = platforms.hubspot

    def property_calls() -> int:
        return hs.count_calls(lambda c: c.path.startswith("/crm/v3/properties/deals"))

    first, second, third = (an_order(471_001 + n, 3101 + n) for n in range(3))
    for order in (first, second):
        platforms.shopify.add_order(shop.domain, order)
        deliver(client, order, shop, "orders/create")
        settled(hub)
    assert property_calls() == 2   # looked up (missing) and made, for the first order only
    with hs.lock:   # someone deletes the property in HubSpot
        del hs._crm(shop.portal)["properties"]["o2c_order_key"]
    platforms.shopify.add_order(shop.domain, third)
    deliver(client, third, shop, "orders/create")
    runs = settled(hub)
    assert runs[-1].status == "succeeded", runs[-1].reason
    assert property_calls() == 4   # the refused upsert looked it up again and made it
    assert {deal_of(platforms, shop, o)["properties"]["dealstage"] for o in (first, second, third)} == {"closedwon"}
