"""Collect and reconcile, end to end: payments a bookkeeper records in (simulated) QuickBooks reach the
hub as signed notifications over real HTTP, and the store order ends paid; partial and multi-invoice
payments, duplicates, a lost notification found by the catch-up, cancellations and the reconcile report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from cli.main import main as o2c
from demo.simulators.quickbooks import sign_webhook
from hub.models import SyncRun, SyncStep
from tests.helpers import an_order, count_events, served, settled, wait_until, webhook
from web.app import create_app

VERIFIER = "verifier-token-for-tests"


@pytest.fixture
def books(make_hub, shop_factory, platforms, monkeypatch):  # noqa: ANN001, ANN201
    """A hub served over real HTTP (so QuickBooks can call it), one connected merchant, notifications on."""
    monkeypatch.setenv("QUICKBOOKS_WEBHOOK_VERIFIER_TOKEN", VERIFIER)
    hub = make_hub()
    shop = shop_factory(hub)
    with served(create_app(hub)) as base:
        platforms.quickbooks.set_webhook(f"{base}/webhooks/quickbooks", VERIFIER, entities=("Payment",),
                                         retry_delays=(0.2, 0.5))
        yield hub, base, shop, platforms
        platforms.quickbooks.clear_webhook()


def _invoiced(hub, base, shop, p, order_id: int, number: int, **kw):  # noqa: ANN001, ANN202
    """A pending (unpaid) store order, synced to an invoice; returns (order, invoice, customer id)."""
    order = an_order(order_id, number, financial_status="pending", **kw)
    p.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    settled(hub)
    [invoice] = [i for i in p.quickbooks.objects(shop.realm, "Invoice") if i["DocNumber"] == str(number)]
    return order, invoice, invoice["CustomerRef"]["value"]


def _manual_invoice(p, shop, body: dict) -> dict:  # noqa: ANN001
    """An invoice a bookkeeper typed into QuickBooks (through the API, as any app would)."""
    token = p.quickbooks.issue_token(shop.realm)
    r = requests.post(f"{p.quickbooks.url}/v3/company/{shop.realm}/invoice?minorversion=75", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["Invoice"]


def _payment_runs(hub) -> list[SyncRun]:  # noqa: ANN001
    with hub.session() as s:
        return list(s.scalars(select(SyncRun).where(SyncRun.kind == "payment").order_by(SyncRun.id)))


def _steps(hub, run_id: int) -> dict[str, str]:  # noqa: ANN001
    with hub.session() as s:
        return {st.step: st.outcome for st in s.scalars(select(SyncStep).where(SyncStep.run_id == run_id))}


def _financial(p, shop, order_id: int) -> str:  # noqa: ANN001
    return p.shopify.get_order(shop.domain, order_id).financial_status


def test_full_payment_in_quickbooks_marks_the_store_order_paid(books) -> None:  # noqa: ANN001
    hub, base, shop, p = books
    order, invoice, customer = _invoiced(hub, base, shop, p, 460_001, 2001)
    assert _financial(p, shop, order.order_id) == "pending"

    payment = p.quickbooks.record_payment(shop.realm, customer, invoice["TotalAmt"],
                                          {invoice["Id"]: invoice["TotalAmt"]})
    assert p.quickbooks.wait_webhooks(10)
    wait_until(lambda: _financial(p, shop, order.order_id) == "paid", timeout=20)
    runs = settled(hub)
    [run] = [r for r in runs if r.kind == "payment"]
    assert (run.status, run.source_id) == ("succeeded", payment["Id"]), run.reason
    assert _steps(hub, run.id)["store"] == "marked-paid"
    assert _steps(hub, run.id)["contact"] == "updated"   # the HubSpot contact is written again
    # the hub wrote no payment of its own: QuickBooks holds exactly the bookkeeper's one
    assert [x["Id"] for x in p.quickbooks.objects(shop.realm, "Payment")] == [payment["Id"]]

    # Intuit sends the same notification again: stored once, no new work
    events = count_events(hub)
    p.quickbooks.redeliver_last()
    assert p.quickbooks.wait_webhooks(10)
    settled(hub)
    assert count_events(hub) == events
    assert len(_payment_runs(hub)) == 1


def test_partial_then_final_payment(books) -> None:  # noqa: ANN001
    hub, base, shop, p = books
    order, invoice, customer = _invoiced(hub, base, shop, p, 460_002, 2002)
    total = Decimal(str(invoice["TotalAmt"]))
    first = (total / 3).quantize(Decimal("0.01"))

    p.quickbooks.record_payment(shop.realm, customer, first, {invoice["Id"]: first})
    assert p.quickbooks.wait_webhooks(10)
    wait_until(lambda: [r for r in _payment_runs(hub) if r.status == "succeeded"], timeout=20)
    [run] = _payment_runs(hub)
    assert _steps(hub, run.id)["invoice"] == "partial"
    assert _financial(p, shop, order.order_id) == "pending"
    shown = CliRunner().invoke(o2c, ["syncs", "show", str(run.id), "--json"])
    partial = [st for st in json.loads(shown.output)["steps"] if st["outcome"] == "partial"]
    assert f"{total - first} of {total} still open" in partial[0]["message"]

    p.quickbooks.record_payment(shop.realm, customer, total - first, {invoice["Id"]: total - first})
    assert p.quickbooks.wait_webhooks(10)
    wait_until(lambda: _financial(p, shop, order.order_id) == "paid", timeout=20)
    assert [r.status for r in settled(hub) if r.kind == "payment"] == ["succeeded", "succeeded"]


def test_one_payment_over_two_invoices_and_an_unknown_one(books) -> None:  # noqa: ANN001
    hub, base, shop, p = books
    first, inv1, customer = _invoiced(hub, base, shop, p, 460_003, 2003)
    second, inv2, customer2 = _invoiced(hub, base, shop, p, 460_004, 2004)
    assert customer == customer2  # the same buyer: one QuickBooks customer
    stray = p.quickbooks.objects(shop.realm, "Item")[0]
    manual = _manual_invoice(p, shop, {  # typed in QuickBooks by hand: no store order
        "CustomerRef": {"value": customer}, "DocNumber": "MANUAL-1",
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": "10.00",
                  "SalesItemLineDetail": {"ItemRef": {"value": stray["Id"]}, "Qty": 1, "UnitPrice": "10.00"}}]})
    amounts = {inv1["Id"]: Decimal(str(inv1["TotalAmt"])), inv2["Id"]: Decimal(str(inv2["TotalAmt"])),
               manual["Id"]: Decimal("10.00")}
    p.quickbooks.record_payment(shop.realm, customer, sum(amounts.values()), amounts)
    assert p.quickbooks.wait_webhooks(10)
    wait_until(lambda: _financial(p, shop, first.order_id) == _financial(p, shop, second.order_id) == "paid",
               timeout=20)
    [run] = [r for r in settled(hub) if r.kind == "payment"]
    assert run.status == "succeeded", run.reason

    lone = _manual_invoice(p, shop, {
        "CustomerRef": {"value": customer}, "DocNumber": "MANUAL-2",
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": "7.00",
                  "SalesItemLineDetail": {"ItemRef": {"value": stray["Id"]}, "Qty": 1, "UnitPrice": "7.00"}}]})
    p.quickbooks.record_payment(shop.realm, customer, "7.00", {lone["Id"]: "7.00"})
    assert p.quickbooks.wait_webhooks(10)
    runs = [r for r in settled(hub) if r.kind == "payment"]
    assert runs[-1].status == "skipped" and runs[-1].reason.startswith("unmatched:")
    assert lone["Id"] in runs[-1].reason


def test_a_lost_notification_is_found_by_the_catch_up(books) -> None:  # noqa: ANN001
    hub, base, shop, p = books
    order, invoice, customer = _invoiced(hub, base, shop, p, 460_005, 2005)
    p.quickbooks.drop_next_webhooks(1)
    p.quickbooks.record_payment(shop.realm, customer, invoice["TotalAmt"], {invoice["Id"]: invoice["TotalAmt"]})
    assert p.quickbooks.wait_webhooks(10)
    settled(hub)
    assert _payment_runs(hub) == [] and _financial(p, shop, order.order_id) == "pending"

    result = CliRunner().invoke(o2c, ["catch-up", "--merchant", str(shop.merchant_id)])
    assert result.exit_code == 0, result.output
    wait_until(lambda: _financial(p, shop, order.order_id) == "paid", timeout=20)
    [run] = _payment_runs(hub)
    assert run.trigger == "catch-up" and run.status == "succeeded"
    # a second pass finds nothing new
    again = CliRunner().invoke(o2c, ["catch-up", "--merchant", str(shop.merchant_id)])
    assert again.exit_code == 0 and len(_payment_runs(hub)) == 1


def test_payments_the_hub_made_do_not_echo(books) -> None:  # noqa: ANN001
    hub, base, shop, p = books
    order = an_order(460_006, 2006)  # paid in the store: the hub records the QuickBooks payment
    p.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10)
    settled(hub)
    assert p.quickbooks.wait_webhooks(10)
    runs = settled(hub)
    [payment_run] = [r for r in runs if r.kind == "payment"]
    assert payment_run.status == "skipped" and "recorded by the hub itself" in payment_run.reason
    assert len(p.quickbooks.objects(shop.realm, "Payment")) == 1


def test_notifications_are_verified_and_both_formats_accepted(books) -> None:  # noqa: ANN001
    hub, base, shop, p = books
    classic = json.dumps({"eventNotifications": [{"realmId": shop.realm, "dataChangeEvent": {"entities": [
        {"name": "Payment", "id": "999", "operation": "Create", "lastUpdated": "2026-11-23T10:00:00Z"}]}}]}).encode()
    events = count_events(hub)
    bad = requests.post(f"{base}/webhooks/quickbooks", data=classic, timeout=10,
                        headers={"intuit-signature": sign_webhook(classic, "wrong")})
    missing = requests.post(f"{base}/webhooks/quickbooks", data=classic, timeout=10)
    assert (bad.status_code, missing.status_code) == (401, 401) and count_events(hub) == events
    garbage = b'{"hello": 1}'
    assert requests.post(f"{base}/webhooks/quickbooks", data=garbage, timeout=10,
                         headers={"intuit-signature": sign_webhook(garbage, VERIFIER)}).status_code == 400

    ok = requests.post(f"{base}/webhooks/quickbooks", data=classic, timeout=10,
                       headers={"intuit-signature": sign_webhook(classic, VERIFIER)})
    assert ok.status_code == 200
    cloud = json.dumps([{"specversion": "1.0", "id": "ev-1", "source": "//quickbooks.api.intuit.com",
                         "type": "qbo.payment.updated.v1", "time": "2026-11-23T10:01:00Z",
                         "intuitentityid": "998", "intuitaccountid": shop.realm, "data": {}}]).encode()
    assert requests.post(f"{base}/webhooks/quickbooks", data=cloud, timeout=10,
                         headers={"intuit-signature": sign_webhook(cloud, VERIFIER)}).status_code == 200
    runs = _payment_runs(hub)
    assert sorted(r.source_id for r in runs) == ["998", "999"]
    for run in settled(hub):
        if run.kind == "payment":
            assert run.status == "skipped" and "no longer exists" in run.reason


def test_cancelled_unpaid_order_voids_its_invoice(books) -> None:  # noqa: ANN001
    hub, base, shop, p = books
    order, invoice, _ = _invoiced(hub, base, shop, p, 460_007, 2007)
    p.shopify.update_order(shop.domain, order.order_id, cancelled_at=datetime.now(UTC), cancel_reason="CUSTOMER")
    body, headers = webhook(p.shopify.get_order(shop.domain, order.order_id), shop.domain, "orders/updated")
    requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10)
    runs = settled(hub)
    assert runs[-1].status == "succeeded", runs[-1].reason
    voided = p.quickbooks.get_object(shop.realm, "Invoice", invoice["Id"])
    assert Decimal(str(voided["TotalAmt"])) == 0 and voided["PrivateNote"].startswith("Voided")
    # the same event again changes nothing
    body, headers = webhook(p.shopify.get_order(shop.domain, order.order_id), shop.domain, "orders/updated",
                            webhook_id="again-1")
    requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10)
    assert settled(hub)[-1].status == "succeeded"
    assert _steps(hub, settled(hub)[-1].id)["void"] == "unchanged"


def test_reconcile_finds_every_planted_discrepancy_and_nothing_else(hub, shop, client, runner, platforms) -> None:  # noqa: ANN001
    p = platforms

    def synced(order_id: int, number: int, status: str):  # noqa: ANN202
        order = an_order(order_id, number, financial_status=status, email=f"buyer{number}@example.com")
        p.shopify.add_order(shop.domain, order)
        body, headers = webhook(order, shop.domain)
        assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
        settled(hub)
        return order

    synced(470_001, 3001, "paid")                                   # clean
    p.shopify.add_order(shop.domain, an_order(470_002, 3002))       # never reached the hub
    changed = synced(470_003, 3003, "pending")
    p.shopify.update_order(shop.domain, changed.order_id, shipping="11.00")  # edited; webhook lost
    paid_late = synced(470_004, 3004, "pending")
    p.shopify.update_order(shop.domain, paid_late.order_id, financial_status="paid")  # webhook lost
    synced(470_005, 3005, "pending")
    [invoice] = [i for i in p.quickbooks.objects(shop.realm, "Invoice") if i["DocNumber"] == "3005"]
    p.quickbooks.record_payment(shop.realm, invoice["CustomerRef"]["value"], invoice["TotalAmt"],
                                {invoice["Id"]: invoice["TotalAmt"]})  # no notifications configured
    cancelled = an_order(470_006, 3006, financial_status="pending")
    cancelled.cancelled_at = datetime.now(UTC)
    p.shopify.add_order(shop.domain, cancelled)                     # cancelled, never invoiced: fine

    result = runner.invoke(["reconcile", str(shop.merchant_id), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["orders_checked"] == 6
    found = sorted((row["kind"], row["order"]["name"]) for row in report["discrepancies"])
    assert found == [("invoice_total_differs", "#3003"), ("order_without_invoice", "#3002"),
                     ("paid_order_without_payment", "#3004"), ("payment_not_in_store", "#3005")]
    rows = {row["order"]["name"]: row for row in report["discrepancies"]}
    assert Decimal(rows["#3003"]["amount"]) == Decimal("6.48")  # shipping 5.00 → 11.00, taxed at 8 %
    assert rows["#3005"]["quickbooks"]["id"] == invoice["Id"]

    text = runner.invoke(["reconcile", str(shop.merchant_id)])
    assert text.exit_code == 0 and "4 discrepancies" in text.output
    resynced = runner.invoke(["reconcile", str(shop.merchant_id), "--resync"])
    assert resynced.exit_code == 0, resynced.output
    settled(hub)
    after = json.loads(runner.invoke(["reconcile", str(shop.merchant_id), "--json"]).output)
    # re-syncing carries the store's side over; a payment made only in QuickBooks needs its payment run
    assert [row["kind"] for row in after["discrepancies"]] == ["payment_not_in_store"]


def _refund_webhook(p, shop, order_id: int, refund: dict, webhook_id: str) -> tuple[bytes, dict[str, str]]:  # noqa: ANN001
    from demo.simulators.shopify import webhook_headers
    from tests.conftest import SHOPIFY_SECRET

    body = json.dumps({"id": refund["id"], "order_id": order_id, "note": None}).encode()
    return body, webhook_headers(shop.domain, "refunds/create", body, SHOPIFY_SECRET, webhook_id=webhook_id)


def test_refunds_become_refund_receipts_once_each(hub, shop, client, runner, platforms) -> None:  # noqa: ANN001
    p = platforms
    order = an_order(480_001, 4001)   # paid: invoice and payment in QuickBooks
    p.shopify.add_order(shop.domain, order)
    client.post("/webhooks/shopify", data=webhook(order, shop.domain)[0], headers=webhook(order, shop.domain)[1])
    settled(hub)

    first = p.shopify.refund_order(shop.domain, order.order_id, {0: 1}, shipping=True)   # one tee + shipping
    body, headers = _refund_webhook(p, shop, order.order_id, first, "refund-1")
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    runs = settled(hub)
    assert runs[-1].status == "succeeded", runs[-1].reason
    [receipt] = p.quickbooks.objects(shop.realm, "RefundReceipt")
    assert Decimal(str(receipt["TotalAmt"])) == first["amount"] > Decimal("29")  # a tee (net), shipping, 8 % tax
    assert Decimal(str(receipt["TxnTaxDetail"]["TotalTax"])) == first["tax"]
    items = {ln["SalesItemLineDetail"]["ItemRef"]["value"] for ln in receipt["Line"]
             if ln.get("DetailType") == "SalesItemLineDetail"}
    tee = next(i for i in p.quickbooks.objects(shop.realm, "Item") if i.get("Sku") == "TEE-BLK-M")
    assert tee["Id"] in items and receipt["DocNumber"] == "4001-R1"

    # the same refund again (a duplicate delivery, then an order update) creates nothing new
    assert client.post("/webhooks/shopify", data=body, headers=headers).get_json()["status"] == "duplicate"
    p.shopify.update_order(shop.domain, order.order_id, note="gift")
    client.post("/webhooks/shopify", data=webhook(p.shopify.get_order(shop.domain, order.order_id), shop.domain,
                                                  "orders/updated")[0],
                headers=webhook(p.shopify.get_order(shop.domain, order.order_id), shop.domain, "orders/updated",
                                webhook_id="upd-1")[1])
    settled(hub)
    assert len(p.quickbooks.objects(shop.realm, "RefundReceipt")) == 1

    second = p.shopify.refund_order(shop.domain, order.order_id, {1: 1})   # the mug
    body, headers = _refund_webhook(p, shop, order.order_id, second, "refund-2")
    client.post("/webhooks/shopify", data=body, headers=headers)
    settled(hub)
    receipts = sorted(p.quickbooks.objects(shop.realm, "RefundReceipt"), key=lambda r: r["DocNumber"])
    assert [r["DocNumber"] for r in receipts] == ["4001-R1", "4001-R2"]
    assert Decimal(str(receipts[1]["TotalAmt"])) == second["amount"]
    report = json.loads(runner.invoke(["reconcile", str(shop.merchant_id), "--json"]).output)
    assert report["discrepancies"] == []


def test_refund_missed_then_found_by_reconcile(hub, shop, client, runner, platforms) -> None:  # noqa: ANN001
    p = platforms
    order = an_order(480_002, 4002)
    p.shopify.add_order(shop.domain, order)
    client.post("/webhooks/shopify", data=webhook(order, shop.domain)[0], headers=webhook(order, shop.domain)[1])
    settled(hub)
    refund = p.shopify.refund_order(shop.domain, order.order_id, {1: 1}, note="chipped")   # webhook lost
    report = json.loads(runner.invoke(["reconcile", str(shop.merchant_id), "--json"]).output)
    assert [(r["kind"], r["amount"]) for r in report["discrepancies"]] == [("refund_not_carried",
                                                                           str(refund["amount"]))]
    assert runner.invoke(["reconcile", str(shop.merchant_id), "--resync"]).exit_code == 0
    settled(hub)
    assert json.loads(runner.invoke(["reconcile", str(shop.merchant_id), "--json"]).output)[
        "discrepancies"] == []
    [receipt] = p.quickbooks.objects(shop.realm, "RefundReceipt")
    assert Decimal(str(receipt["TotalAmt"])) == refund["amount"]


def test_scheduled_catch_up_finds_orders_whose_webhook_was_lost(make_hub, shop_factory, platforms) -> None:  # noqa: ANN001
    hub = make_hub(O2C_CATCHUP_INTERVAL="1")   # the tests turn it off by default; the sweeper runs it here
    shop = shop_factory(hub)
    hub.dispatcher.sweep()  # the embedded runner (and its sweeper thread) starts with the first use
    order = an_order(490_001, 5001)
    platforms.shopify.add_order(shop.domain, order)   # the store's webhook never arrives
    wait_until(lambda: platforms.quickbooks.objects(shop.realm, "Invoice"), timeout=30)
    [run] = settled(hub)
    assert (run.trigger, run.status) == ("catch-up", "succeeded")
    with hub.session() as s:
        from hub.models import Connection
        conn = s.scalars(select(Connection).where(Connection.platform == "shopify")).one()
        assert conn.settings["catchup"]["at"]  # the pass recorded where the next one starts


def test_a_throttled_catch_up_waits_for_the_cost_bucket_and_finishes_its_pass(hub, shop, platforms) -> None:  # noqa: ANN001
    """Shopify's bucket is empty when the catch-up asks for changed orders: the pass waits as long as
    ``THROTTLED`` says and finds the order now, instead of giving up until the next pass."""
    from sync.catchup import catch_up

    order = an_order(490_002, 5002)
    platforms.shopify.add_order(shop.domain, order)   # the store's webhook never arrives
    platforms.shopify.set_throttle(restore_rate=500, currently_available=0, domain=shop.domain)
    result = catch_up(hub, shop.merchant_id)
    assert all(isinstance(v, list) for v in result.values()), result
    assert any("THROTTLED" in op for op in platforms.shopify.operations)
    [run] = settled(hub)
    assert (run.trigger, run.status) == ("catch-up", "succeeded"), run.reason
    assert len(platforms.quickbooks.objects(shop.realm, "Invoice")) == 1
