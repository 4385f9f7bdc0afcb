"""Fulfil and ship: a store's shipments reach the QuickBooks invoice (ship date, tracking numbers, ship
method) by a sparse update with the current SyncToken, once per change, whatever the webhooks' order."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from demo.simulators.shopify import webhook_headers
from demo.simulators.shopify_orders import Fulfillment, ShopifyOrder
from tests.conftest import SHOPIFY_SECRET
from tests.helpers import an_order, settled, webhook


def shipped(client: Any, shop: Any, f: Fulfillment, topic: str = "fulfillments/create",
            webhook_id: str | None = None) -> Any:
    body = json.dumps(f.webhook_body()).encode()
    headers = webhook_headers(shop.domain, topic, body, SHOPIFY_SECRET, webhook_id=webhook_id)
    return client.post("/webhooks/shopify", data=body, headers=headers)


def invoiced(hub: Any, client: Any, shop: Any, platforms: Any) -> ShopifyOrder:
    order = an_order()
    platforms.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason
    return order


def invoice_writes(platforms: Any, shop: Any) -> list[dict]:
    return [json.loads(c.body) for c in platforms.quickbooks.calls
            if c.method == "POST" and c.path == f"/v3/company/{shop.realm}/invoice" and c.status == 200]


def test_two_shipments_reach_the_invoice_once_each_whatever_the_webhooks_order(hub, client, shop,  # noqa: ANN001
                                                                               platforms, runner) -> None:
    order = invoiced(hub, client, shop, platforms)
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert "ShipDate" not in invoice and "TrackingNum" not in invoice
    tee, mug = order.lines
    first = order.fulfil(order.created_at + timedelta(days=1), company="UPS", numbers=["1Z999AA10123456784"],
                         urls=["https://ups.example/1Z999AA10123456784"], lines={tee.id: tee.quantity})
    assert shipped(client, shop, first, webhook_id="f-1").status_code == 200
    assert shipped(client, shop, first, webhook_id="f-1").get_json()["status"] == "duplicate"
    settled(hub)
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    ship_date = (order.created_at + timedelta(days=1)).date().isoformat()
    assert (invoice["ShipDate"], invoice["TrackingNum"]) == (ship_date, "1Z999AA10123456784")
    assert invoice["ShipMethodRef"]["value"] == "UPS"
    [update] = [w for w in invoice_writes(platforms, shop) if w.get("Id")]
    assert update["sparse"] is True and set(update) == {"Id", "SyncToken", "sparse", "ShipDate", "TrackingNum",
                                                         "ShipMethodRef"}

    second = order.fulfil(order.created_at + timedelta(days=3), company="UPS", numbers=["1Z999AA10123456785"],
                          lines={mug.id: mug.quantity})
    assert shipped(client, shop, second, webhook_id="f-2").status_code == 200
    settled(hub)
    # Shopify's orders/fulfilled arrives late, and the first shipment's webhook again under a new id
    body, headers = webhook(order, shop.domain, "orders/fulfilled")
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    assert shipped(client, shop, first, webhook_id="f-1-again").status_code == 200
    runs = settled(hub)
    assert all(r.status == "succeeded" for r in runs), [r.reason for r in runs]
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert invoice["ShipDate"] == ship_date
    assert invoice["TrackingNum"] == "1Z999AA10123456784 +1 more"   # both don't fit QuickBooks' 31 characters
    assert len([w for w in invoice_writes(platforms, shop) if w.get("Id")]) == 2   # one update per shipment
    assert str(invoice["TotalAmt"]) == str(order.total)
    [row] = json.loads(runner.invoke(["orders", "list", "--json"]).output)
    assert row["state"] == "in_sync" and row["fulfillment_status"] == "shipped in 2 parts"
    assert row["fulfilled_at"].startswith(ship_date)


def test_tracking_numbers_that_fit_are_joined_and_a_cancelled_shipment_is_no_failure(hub, client, shop,  # noqa: ANN001
                                                                                     platforms) -> None:
    order = invoiced(hub, client, shop, platforms)
    tee, mug = order.lines
    f1 = order.fulfil(order.created_at + timedelta(hours=5), company="USPS", numbers=["9400111"],
                      lines={tee.id: 1})
    order.fulfil(order.created_at + timedelta(hours=6), company="USPS", numbers=["9400222"],
                 lines={tee.id: 1, mug.id: 1})
    assert shipped(client, shop, f1).status_code == 200
    settled(hub)
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert invoice["TrackingNum"] == "9400111, 9400222"
    order.cancel_fulfillment(f1, order.created_at + timedelta(hours=7))
    assert shipped(client, shop, f1, "fulfillments/update").status_code == 200
    runs = settled(hub)
    assert runs[-1].status == "succeeded", runs[-1].reason
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert invoice["TrackingNum"] == "9400222"


def test_a_stale_sync_token_is_read_again_never_overwritten(hub, client, shop, platforms,  # noqa: ANN001
                                                            monkeypatch) -> None:
    from connectors.quickbooks import QuickBooksClient

    order = invoiced(hub, client, shop, platforms)
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    real_get, edited = QuickBooksClient.get, []

    def get_then_a_bookkeeper_edits(self, entity, object_id):  # noqa: ANN001, ANN202
        answer = real_get(self, entity, object_id)
        if entity == "Invoice" and not edited:   # between the hub's read and its write
            edited.append(platforms.quickbooks.edit(shop.realm, "Invoice", invoice["Id"],
                                                    {"CustomerMemo": {"value": "Thanks for your order!"}}))
        return answer

    monkeypatch.setattr(QuickBooksClient, "get", get_then_a_bookkeeper_edits)
    f = order.fulfil(order.created_at + timedelta(days=1), company="DHL", numbers=["JD014600006"])
    assert shipped(client, shop, f).status_code == 200
    [*_, run] = settled(hub)
    assert run.status == "succeeded", run.reason
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert invoice["TrackingNum"] == "JD014600006"
    assert invoice["CustomerMemo"] == {"value": "Thanks for your order!"}   # the bookkeeper's edit kept
    assert [c.status for c in platforms.quickbooks.calls if c.method == "POST"
            and c.path.endswith("/invoice") and "Id" in json.loads(c.body)] == [400, 200]


def test_shipping_turned_off_in_quickbooks_leaves_the_fields_out_and_the_check_says_so(hub, client, shop,  # noqa: ANN001
                                                                                       platforms) -> None:
    from mappings.rules import load_rules
    from sync.rules_check import check_rules

    platforms.quickbooks.set_allow_shipping(shop.realm, False)
    order = invoiced(hub, client, shop, platforms)
    f = order.fulfil(order.created_at + timedelta(days=1), company="UPS", numbers=["1Z1"])
    assert shipped(client, shop, f).status_code == 200
    runs = settled(hub)
    assert runs[-1].status == "succeeded", runs[-1].reason
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert "TrackingNum" not in invoice and "ShipDate" not in invoice
    report = check_rules(hub, shop.merchant_id, load_rules())
    assert any("shipping is turned off" in n for n in report.notes), report
