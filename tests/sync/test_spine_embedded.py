"""The spine in the embedded mode: signed webhook → real web app → inbox → in-process job →
simulated Shopify, HubSpot and QuickBooks over real HTTP."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from click.testing import CliRunner

from cli.main import main as o2c
from hub.models import Connection
from tests.helpers import an_order, count_events, count_runs, settled, webhook
from web.app import create_app


@pytest.fixture
def spine(hub, client, shop, platforms):  # noqa: ANN001, ANN201
    return hub, client, shop, platforms


def test_paid_order_becomes_contact_customer_invoice_and_payment(spine) -> None:  # noqa: ANN001
    hub, client, shop, p = spine
    order = an_order()
    p.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)

    response = client.post("/webhooks/shopify", data=body, headers=headers)
    assert response.status_code == 200
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason

    [contact] = p.hubspot.contacts(shop.portal)
    assert contact["properties"]["email"] == "ada@example.com"
    [customer] = p.quickbooks.objects(shop.realm, "Customer")
    assert customer["DisplayName"] == "Ada Lovelace"
    [invoice] = p.quickbooks.objects(shop.realm, "Invoice")
    assert invoice["DocNumber"] == "1001"
    assert Decimal(str(invoice["TotalAmt"])) == order.total
    assert "#1001" in invoice["PrivateNote"] and str(order.order_id) in invoice["PrivateNote"]
    [payment] = p.quickbooks.objects(shop.realm, "Payment")
    assert Decimal(str(payment["TotalAmt"])) == order.total
    linked = payment["Line"][0]["LinkedTxn"][0]
    assert (linked["TxnId"], linked["TxnType"]) == (invoice["Id"], "Invoice")
    assert Decimal(str(p.quickbooks.get_object(shop.realm, "Invoice", invoice["Id"])["Balance"])) == 0

    shown = CliRunner().invoke(o2c, ["syncs", "show", str(run.id), "--json"])
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert detail["source"] == {"platform": "shopify", "id": str(order.order_id), "name": "#1001"}
    assert {s["step"]: s["outcome"] for s in detail["steps"]}.items() >= {
        "contact": "created", "customer": "created", "invoice": "created", "payment": "created"}.items()
    targets = {(b["target"]["platform"], b["target"]["type"]): b["target"]["id"] for b in detail["bindings"]}
    assert targets[("quickbooks", "invoice")] == invoice["Id"]
    assert targets[("quickbooks", "payment")] == payment["Id"]
    assert targets[("hubspot", "contact")] == contact["id"]


def test_pending_order_is_invoiced_then_paid_by_a_later_event(spine) -> None:  # noqa: ANN001
    hub, client, shop, p = spine
    order = an_order(financial_status="pending")
    p.shopify.add_order(shop.domain, order)
    client.post("/webhooks/shopify", data=webhook(order, shop.domain)[0], headers=webhook(order, shop.domain)[1])
    settled(hub)
    assert len(p.quickbooks.objects(shop.realm, "Invoice")) == 1
    assert p.quickbooks.objects(shop.realm, "Payment") == []

    p.shopify.update_order(shop.domain, order.order_id, financial_status="paid")
    body, headers = webhook(p.shopify.get_order(shop.domain, order.order_id), shop.domain, "orders/paid")
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    runs = settled(hub)
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert len(p.quickbooks.objects(shop.realm, "Invoice")) == 1
    [payment] = p.quickbooks.objects(shop.realm, "Payment")
    assert Decimal(str(payment["TotalAmt"])) == order.total


def test_receiver_rejects_bad_deliveries_and_stores_nothing(spine) -> None:  # noqa: ANN001
    hub, client, shop, p = spine
    order = an_order()
    p.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)

    forged = dict(headers, **{"X-Shopify-Hmac-Sha256": webhook(order, shop.domain, secret="wrong")[1][
        "X-Shopify-Hmac-Sha256"]})
    assert client.post("/webhooks/shopify", data=body, headers=forged).status_code == 401
    missing = {k: v for k, v in headers.items() if k.lower() != "x-shopify-hmac-sha256"}
    assert client.post("/webhooks/shopify", data=body, headers=missing).status_code == 401
    tampered = body.replace(b"1001", b"1002")
    assert client.post("/webhooks/shopify", data=tampered, headers=headers).status_code == 401

    stranger = webhook(order, "stranger.myshopify.com")
    assert client.post("/webhooks/shopify", data=stranger[0], headers=stranger[1]).status_code == 404

    huge = b'{"id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    huge_headers = webhook(order, shop.domain)[1]
    assert client.post("/webhooks/shopify", data=huge, headers=huge_headers).status_code == 413

    not_json = b"<order>1</order>"
    from demo.simulators.shopify import webhook_headers
    from tests.conftest import SHOPIFY_SECRET
    headers_xml = webhook_headers(shop.domain, "orders/create", not_json, SHOPIFY_SECRET)
    assert client.post("/webhooks/shopify", data=not_json, headers=headers_xml).status_code == 400
    assert count_events(hub) == 0 and count_runs(hub) == 0

    # a repeated delivery id is acknowledged and does no new work
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    again = client.post("/webhooks/shopify", data=body, headers=headers)
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    settled(hub)
    assert count_events(hub) == 1 and count_runs(hub) == 1
    assert len(p.quickbooks.objects(shop.realm, "Invoice")) == 1


def test_a_webhook_without_an_order_id_is_a_failed_sync_with_a_reason(spine) -> None:  # noqa: ANN001
    hub, client, shop, _p = spine
    from demo.simulators.shopify import webhook_headers
    from tests.conftest import SHOPIFY_SECRET

    body = b'{"name": "#1001", "line_items": []}'
    r = client.post("/webhooks/shopify", data=body,
                    headers=webhook_headers(shop.domain, "orders/create", body, SHOPIFY_SECRET))
    assert r.status_code == 200
    [run] = settled(hub)
    assert run.status == "failed"
    assert "id" in run.reason and run.error_kind == "mapping"


def test_platform_failures_are_retried_with_backoff(spine) -> None:  # noqa: ANN001
    hub, client, shop, p = spine
    p.quickbooks.fail_next(503, 2, path_contains="/invoice")
    p.hubspot.fail_next(429, 1, retry_after=1)
    order = an_order()
    p.shopify.add_order(shop.domain, order)
    client.post("/webhooks/shopify", data=webhook(order, shop.domain)[0], headers=webhook(order, shop.domain)[1])
    [run] = settled(hub, timeout=60)
    assert run.status == "succeeded", run.reason
    assert run.attempts == 3   # HubSpot's 429 is a wait, not an attempt
    detail = CliRunner().invoke(o2c, ["syncs", "show", str(run.id), "--json"])
    attempts = json.loads(detail.output)["attempt_log"]
    assert [a["outcome"] for a in attempts] == ["deferred", "retrying", "retrying", "succeeded"]
    assert "rate limit" in attempts[0]["error"].lower() and attempts[0]["step"] == "contact"
    assert "503" in attempts[1]["error"] and attempts[1]["step"] == "invoice"
    assert len(p.quickbooks.objects(shop.realm, "Invoice")) == 1
    assert len(p.quickbooks.objects(shop.realm, "Customer")) == 1


def test_expired_quickbooks_token_is_refreshed_and_the_rotated_token_kept(hub, client, shop_factory,  # noqa: ANN001
                                                                          platforms) -> None:
    shop = shop_factory(hub, qb_token_ttl=0.2)
    with hub.session() as s:
        conn = s.query(Connection).filter_by(platform="quickbooks").one()
        before = hub.secrets.decrypt(conn.secrets)
    time.sleep(0.5)
    order = an_order()
    platforms.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    client.post("/webhooks/shopify", data=body, headers=headers)
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason
    assert platforms.quickbooks.refresh_count == 1
    with hub.session() as s:
        conn = s.query(Connection).filter_by(platform="quickbooks").one()
        after = hub.secrets.decrypt(conn.secrets)
        assert before["refresh_token"] not in conn.secrets and after["refresh_token"] not in conn.secrets
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]


def test_refused_refresh_waits_for_reconnect_then_resumes(hub, client, shop_factory, platforms) -> None:  # noqa: ANN001
    shop = shop_factory(hub, qb_token_ttl=0.1)
    with hub.session() as s:
        conn = s.query(Connection).filter_by(platform="quickbooks").one()
        secrets = hub.secrets.decrypt(conn.secrets)
        conn.secrets = hub.secrets.encrypt({**secrets, "refresh_token": "revoked-refresh-token"})
    time.sleep(0.3)
    order = an_order()
    platforms.shopify.add_order(shop.domain, order)
    client.post("/webhooks/shopify", data=webhook(order, shop.domain)[0], headers=webhook(order, shop.domain)[1])

    from tests.helpers import wait_until

    def waiting():  # noqa: ANN202
        with hub.session() as s:
            c = s.query(Connection).filter_by(platform="quickbooks").one()
            return c.status == "needs_reconnect"
    wait_until(waiting)
    result = CliRunner().invoke(o2c, ["syncs", "list", "--json"])
    [row] = json.loads(result.output)
    assert row["status"] == "retrying" and "reconnect" in row["reason"]
    assert platforms.quickbooks.objects(shop.realm, "Invoice") == []

    reconnect = CliRunner().invoke(o2c, [
        "connect", "quickbooks", str(shop.merchant_id), "--realm-id", shop.realm,
        "--access-token", platforms.quickbooks.issue_token(shop.realm),
        "--refresh-token", platforms.quickbooks.issue_refresh_token(shop.realm, "qb-test-client")])
    assert reconnect.exit_code == 0, reconnect.output
    [run] = settled(hub)
    assert run.status == "succeeded", run.reason
    assert len(platforms.quickbooks.objects(shop.realm, "Invoice")) == 1


def test_an_edited_order_updates_its_invoice_and_a_late_stale_event_changes_nothing(spine) -> None:  # noqa: ANN001
    hub, client, shop, p = spine
    order = an_order(financial_status="pending")
    p.shopify.add_order(shop.domain, order)
    first_body, first_headers = webhook(order, shop.domain)
    client.post("/webhooks/shopify", data=first_body, headers=first_headers)
    settled(hub)
    [invoice] = p.quickbooks.objects(shop.realm, "Invoice")

    edited = p.shopify.update_order(shop.domain, order.order_id, shipping="9.00")
    body, headers = webhook(edited, shop.domain, "orders/updated")
    client.post("/webhooks/shopify", data=body, headers=headers)
    settled(hub)
    [updated] = p.quickbooks.objects(shop.realm, "Invoice")
    assert updated["Id"] == invoice["Id"]
    assert Decimal(str(updated["TotalAmt"])) == edited.total != Decimal(str(invoice["TotalAmt"]))

    # the first delivery arrives again a day late under a new delivery id: the order is pulled fresh,
    # nothing differs from what was synced, and QuickBooks is not written to
    writes = p.quickbooks.count_calls(lambda c: c.method == "POST" and "/query" not in c.path)
    late = dict(first_headers, **{"X-Shopify-Webhook-Id": "late-redelivery"})
    client.post("/webhooks/shopify", data=first_body, headers=late)
    runs = settled(hub)
    assert len(runs) == 3 and runs[-1].status == "succeeded"
    assert p.quickbooks.count_calls(lambda c: c.method == "POST" and "/query" not in c.path) == writes
    assert len(p.quickbooks.objects(shop.realm, "Invoice")) == 1


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"id": "1\xff"', b'"just a string"'])
def test_hostile_bodies_are_refused_as_bad_requests(spine, body: bytes) -> None:  # noqa: ANN001
    hub, client, shop, _p = spine
    from demo.simulators.shopify import webhook_headers
    from tests.conftest import SHOPIFY_SECRET

    r = client.post("/webhooks/shopify", data=body,
                    headers=webhook_headers(shop.domain, "orders/create", body, SHOPIFY_SECRET))
    assert r.status_code == 400
    assert count_events(hub) == 0


def test_an_order_id_that_is_not_shopifys_fails_with_a_reason(spine) -> None:  # noqa: ANN001
    hub, client, shop, _p = spine
    from demo.simulators.shopify import webhook_headers
    from tests.conftest import SHOPIFY_SECRET

    body = json.dumps({"id": "../../admin/x", "name": "#1"}).encode()
    r = client.post("/webhooks/shopify", data=body,
                    headers=webhook_headers(shop.domain, "orders/create", body, SHOPIFY_SECRET))
    assert r.status_code == 200
    [run] = settled(hub)
    assert run.status == "failed" and "not a Shopify order id" in run.reason


def test_a_429_pauses_every_call_to_that_account_for_retry_after(spine) -> None:  # noqa: ANN001
    hub, client, shop, p = spine
    p.quickbooks.fail_next(429, 1, retry_after=2, path_contains="/query")
    orders = [an_order(order_id=450_001 + n, number=1001 + n, email=f"buyer{n}@example.com") for n in range(3)]
    for order in orders:
        p.shopify.add_order(shop.domain, order)
        body, headers = webhook(order, shop.domain)
        client.post("/webhooks/shopify", data=body, headers=headers)
    runs = settled(hub, timeout=60)
    assert {r.status for r in runs} == {"succeeded"}
    calls = [c for c in p.quickbooks.calls if c.path.startswith(f"/v3/company/{shop.realm}")]
    throttled = next(i for i, c in enumerate(calls) if c.status == 429)
    # no run, not only the throttled one, called that company again before Retry-After had passed
    # (calls already in flight when the 429 came back may still complete just after it)
    t = calls[throttled].at
    assert [c for c in calls if t + 0.3 < c.at < t + 1.9] == []
    assert any(c.at >= t + 1.9 for c in calls)
    assert len(p.quickbooks.objects(shop.realm, "Invoice")) == 3


def test_rate_limit_waits_as_long_as_told_and_never_uses_up_an_attempt(make_hub, shop_factory,  # noqa: ANN001
                                                                     platforms) -> None:
    """Three 429s with ``Retry-After: 2`` in a row, and only two attempts allowed: the order still syncs,
    each wait about 2 s (not Intuit's default minute), and none of the waits is counted as an attempt."""
    from hub.models import SyncAttempt

    hub = make_hub(O2C_MAX_ATTEMPTS="2")
    shop = shop_factory(hub)
    client = create_app(hub).test_client()
    platforms.quickbooks.fail_next(429, 3, retry_after=2)
    order = an_order()
    platforms.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    [run] = settled(hub, timeout=60)
    assert run.status == "succeeded", run.reason
    assert run.attempts == 1
    with hub.session() as s:
        attempts = s.query(SyncAttempt).filter_by(run_id=run.id).order_by(SyncAttempt.id).all()
        assert [a.outcome for a in attempts] == ["deferred"] * 3 + ["succeeded"]
        assert all("waiting 2 s" in (a.error or "") for a in attempts[:3]), [a.error for a in attempts]
    calls = [c for c in platforms.quickbooks.calls if c.path.startswith(f"/v3/company/{shop.realm}")]
    throttled = [c.at for c in calls if c.status == 429]
    after = [c.at for c in calls if c.status != 429 and c.at > throttled[-1]]
    gaps = [b - a for a, b in zip(throttled, [*throttled[1:], after[0]], strict=True)]
    assert all(1.9 <= g < 10 for g in gaps), gaps
    assert len(platforms.quickbooks.objects(shop.realm, "Invoice")) == 1
