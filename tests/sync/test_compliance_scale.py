"""A privacy request of any size: ``customers/redact`` for a buyer named by 5,000 orders is answered at once
(the erasure is a ``privacy`` run) and leaves none of the buyer's e-mail, name, phone or address in any
table — runs that failed before mapping (no canonical order: only an excerpt or a reason), inbox payloads
wrapped as ``{"order": …}`` and the runs they opened included — while another buyer's data is untouched. On SQLite
and PostgreSQL; most rows are written directly with the models (fast), a few through the real pipeline."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import insert, select

from demo.simulators.shopify import sign_webhook
from hub.erasure import CHUNK, PAGE
from hub.models import AuditEntry, Connection, SyncAttempt, SyncRun, SyncStep, WebhookEvent, utcnow
from tests.conftest import SHOPIFY_SECRET
from tests.helpers import an_order, settled, webhook
from tests.web.test_compliance import dump, post
from web.app import create_app

ORDERS = 2600   # more than 5 pages and 5 chunks of 500
ADA = {"id": 880_001, "first_name": "Augusta", "last_name": "Lovelace-Byron", "email": "augusta.lb@example.com",
       "phone": "+1-555-0142"}
ADA_ADDRESS = {"first_name": "Augusta", "last_name": "Lovelace-Byron", "name": "Augusta Lovelace-Byron",
               "company": None, "address1": "12 Analytical Engine Row", "address2": "Flat 7", "city": "Marylebone",
               "province": "London", "province_code": None, "country": "United Kingdom", "country_code": "GB",
               "zip": "NW1 6XE", "phone": "+1-555-0142"}
ADA_MARKS = ("augusta.lb@example.com", "Lovelace-Byron", "+1-555-0142", "5550142", "Analytical Engine Row",
             "Marylebone", "NW1 6XE")
GRACE = {"id": 880_002, "first_name": "Grace", "last_name": "Hopper-Murray", "email": "grace.hm@example.com"}
GRACE_MARKS = ("grace.hm@example.com", "Hopper-Murray")


def _ada_order(order_id: int, number: int) -> Any:
    return an_order(order_id, number, email=ADA["email"], customer=ADA, phone=ADA["phone"], address=ADA_ADDRESS)


def _sync(app: Any, hub: Any, platforms: Any, shop: Any, order: Any) -> None:
    platforms.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert app.test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    settled(hub)


def _through_the_pipeline(app: Any, hub: Any, platforms: Any, shop: Any) -> list[str]:
    """Ada's and Grace's orders synced for real; then one of Ada's fails before mapping (Shopify's error echoes
    her name, phone and address into the excerpt) and one arrives wrapped as {"order": …} (a run that failed
    at once, its payload in the inbox). Returns Ada's order ids."""
    _sync(app, hub, platforms, shop, _ada_order(450_001, 1001))
    _sync(app, hub, platforms, shop, an_order(450_003, 1003, email=GRACE["email"], customer=GRACE))
    failing = _ada_order(450_002, 1002)
    platforms.shopify.add_order(shop.domain, failing)
    echo = {"errors": [{"message": "Order 450002 of Augusta Lovelace-Byron (+1-555-0142), 12 Analytical Engine Row, "
                                   "Marylebone NW1 6XE cannot be read", "extensions": {"code": "BAD_REQUEST"}}]}
    platforms.shopify.fail_next(400, count=50, path_contains="graphql", body=json.dumps(echo))
    body, headers = webhook(failing, shop.domain)
    assert app.test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    runs = settled(hub)
    platforms.shopify.faults.clear()
    pulled = next(r for r in runs if r.source_id == "450002")
    assert pulled.status == "failed" and pulled.canonical is None
    wrapped = json.dumps({"order": _ada_order(450_004, 1004).webhook_body()}).encode()
    headers = webhook(_ada_order(450_004, 1004), shop.domain)[1]
    headers["X-Shopify-Hmac-Sha256"] = sign_webhook(wrapped, SHOPIFY_SECRET)
    assert app.test_client().post("/webhooks/shopify", data=wrapped, headers=headers).status_code == 200
    with hub.session() as s:
        failed_at_once = s.scalar(select(SyncRun).where(SyncRun.source_id.like("webhook-%")))
        assert failed_at_once.status == "failed"
    return ["450001", "450002", "450004"]


def _many_rows(hub: Any, shop: Any, conn_id: int, template: dict[str, Any], body: dict[str, Any]) -> list[str]:
    """5,000 more runs of Ada (every tenth failed before mapping, with an excerpt naming her), their attempts,
    contact steps and inbox payloads (every fifth wrapped as {"order": …}); 300 of Grace. Returns Ada's ids."""
    now = utcnow()
    ada_ids = [str(600_000 + i) for i in range(ORDERS)]
    order_ids = ada_ids + [str(700_000 + i) for i in range(300)]
    echo = (f'{{"errors": [{{"message": "customer gid://shopify/Customer/{ADA["id"]} at '
            f'12 Analytical Engine Row, Marylebone NW1 6XE, +1-555-0142"}}]}}')
    grace_customer = {**template["customer"], "email": GRACE["email"], "first_name": GRACE["first_name"],
                      "last_name": GRACE["last_name"], "source_id": str(GRACE["id"]), "phone": None,
                      "billing_address": None, "shipping_address": None}
    grace_body = {**body, "email": GRACE["email"], "contact_email": GRACE["email"], "phone": None,
                  "billing_address": None, "shipping_address": None,
                  "customer": {**body["customer"], **GRACE, "phone": None}}

    def unmapped(i: int) -> bool:
        return i < ORDERS and i % 10 == 0

    runs = [dict(merchant_id=shop.merchant_id, connection_id=conn_id, kind="order", source_platform="shopify",
                 source_id=order_id, source_name=f"#{5000 + i}", trigger="bulk",
                 status="failed" if unmapped(i) else "succeeded", attempts=1, created_at=now, updated_at=now,
                 reason="shopify: Order of Augusta Lovelace-Byron cannot be read" if unmapped(i) else None,
                 canonical=None if unmapped(i) else {**template, "source_id": order_id, "name": f"#{5000 + i}",
                                                      **({} if i < ORDERS else {"customer": grace_customer})})
            for i, order_id in enumerate(order_ids)]
    with hub.session() as s:
        for start in range(0, len(runs), 1000):
            s.execute(insert(SyncRun), runs[start:start + 1000])
        run_of = dict(s.execute(select(SyncRun.source_id, SyncRun.id).where(SyncRun.trigger == "bulk")).all())
        attempts, steps, events = [], [], []
        for i, order_id in enumerate(order_ids):
            run_id, who = run_of[order_id], ADA if i < ORDERS else GRACE
            attempts.append(dict(run_id=run_id, number=1, started_at=now, finished_at=now,
                                 outcome="failed" if unmapped(i) else "succeeded",
                                 error="Shopify answered HTTP 400" if unmapped(i) else None,
                                 excerpt={"request": {"method": "POST", "url": "https://x/graphql.json",
                                                      "body": '{"query": "query HubOrder"}'},
                                          "response": {"status": 400, "body": echo}} if unmapped(i) else None))
            if not unmapped(i):
                steps.append(dict(run_id=run_id, attempt=1, step="contact", outcome="found", target_platform="hubspot",
                                  target_type="contact", target_id="1", message=f"HubSpot contact {who['email']} found",
                                  at=now))
            payload = {**(body if i < ORDERS else grace_body), "id": int(order_id), "name": f"#{5000 + i}"}
            events.append(dict(platform="shopify", delivery_id=f"bulk-{order_id}", topic="orders/updated",
                               account=shop.domain, merchant_id=shop.merchant_id, connection_id=conn_id,
                               sync_run_id=run_id, status="queued", received_at=now,
                               payload=json.dumps({"order": payload} if i < ORDERS and i % 5 == 1 else payload)))
        for model, rows in ((SyncAttempt, attempts), (SyncStep, steps), (WebhookEvent, events)):
            for start in range(0, len(rows), 1000):
                s.execute(insert(model), rows[start:start + 1000])
        # one unmapped run not in the request's list of orders: found only by what its excerpt says of her
        s.add(SyncRun(merchant_id=shop.merchant_id, connection_id=conn_id, kind="order", source_platform="shopify",
                      source_id="990001", status="failed", attempts=1, reason="shopify: the order cannot be read",
                      attempt_log=[SyncAttempt(number=1, outcome="failed", error="Shopify answered HTTP 400",
                                               excerpt={"response": {"status": 400, "body": echo}})]))
        s.commit()
    return ada_ids


def _rows_naming(hub: Any, *marks: tuple[str, ...]) -> list[list[str]]:
    """For each set of marks, the rows of a dump of every table that contain one of them."""
    lines = dump(hub).splitlines()
    return [sorted(line for line in lines if any(m in line for m in group)) for group in marks]


@pytest.mark.slow
def test_customers_redact_of_a_buyer_named_by_thousands_of_orders(database_url, make_hub, shop_factory,  # noqa: ANN001
                                                          platforms) -> None:
    assert ORDERS > 5 * max(PAGE, CHUNK)                       # many pages and many chunks, not one statement
    hub = make_hub(database_url)
    shop = shop_factory(hub)
    app = create_app(hub)
    listed = _through_the_pipeline(app, hub, platforms, shop)
    with hub.session() as s:
        conn_id = s.scalar(select(Connection.id).where(Connection.account == shop.domain))
        template = s.scalar(select(SyncRun.canonical).where(SyncRun.source_id == "450001"))
    listed += _many_rows(hub, shop, conn_id, template, _ada_order(450_001, 1001).webhook_body())
    ada_before, grace_before = _rows_naming(hub, ADA_MARKS, GRACE_MARKS)
    assert len(ada_before) > 2 * ORDERS and len(grace_before) > 600
    assert any('{"order": {"id": 450004' in row for row in ada_before)   # the wrapped delivery, in the inbox

    customer = {"id": ADA["id"], "email": ADA["email"], "phone": ADA["phone"]}
    started = time.monotonic()                                  # what is held: recorded at once, bounded too
    r = post(app, shop.domain, "customers/data_request", {"shop_id": 954_889, "shop_domain": shop.domain,
                                                          "orders_requested": [int(o) for o in listed],
                                                          "customer": customer, "data_request": {"id": 77}})
    asked = time.monotonic() - started
    assert r.status_code == 200 and asked < 5.0, f"{asked:.2f} s"
    with hub.session() as s:
        request = s.scalar(select(AuditEntry).where(AuditEntry.action == "shopify.customer_data_request"))
    assert request.detail["counts"]["runs"] == ORDERS + 4 and ADA["email"] not in json.dumps(request.detail)

    payload = {"shop_id": 954_889, "shop_domain": shop.domain, "orders_to_redact": [int(o) for o in listed],
               "customer": customer}
    started = time.monotonic()
    r = post(app, shop.domain, "customers/redact", payload, webhook_id="redact-5000")
    answered = time.monotonic() - started
    assert r.status_code == 200 and r.json["status"] == "accepted", r.get_data(as_text=True)[:500]
    assert answered < 1.0, f"{answered:.2f} s"                 # Shopify waits 5 s: the erasure is a job
    privacy = [run for run in settled(hub, timeout=120) if run.kind == "privacy"]
    assert [run.status for run in privacy] == ["succeeded"], [run.reason for run in privacy]
    erased = (privacy[0].finished_at - privacy[0].created_at).total_seconds()
    print(f"data request answered in {asked:.2f} s; redact answered in {answered:.2f} s, erased in {erased:.2f} s")

    left, grace_after = _rows_naming(hub, ADA_MARKS, GRACE_MARKS)
    assert left == [], left[:3]
    assert grace_after == grace_before                          # another buyer of the same shop: untouched
    with hub.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "shopify.customer_redacted"))
        kept = s.scalar(select(SyncRun).where(SyncRun.source_id == "600001"))
    assert entry.detail["counts"]["runs"] == ORDERS + len(["450001", "450002", "webhook run", "990001"])
    assert entry.detail["counts"] == request.detail["counts"]
    assert entry.detail["orders_to_redact_count"] == len(listed) and len(entry.detail["runs"]) == 500
    assert kept.canonical["total"] == template["total"] and kept.canonical["customer"]["email"] is None
