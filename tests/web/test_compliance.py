"""Shopify's uninstall and privacy webhooks through the real receiver: signed like the order webhooks
(401 otherwise, nothing stored), handled once, each recorded in the audit log.

``app/uninstalled`` disconnects the shop and skips its waiting runs (also delivered by the fake to the
URL the install subscribed); ``customers/redact`` leaves no trace of that customer — nor of the other
customers' data — in the whole database; ``customers/data_request`` only records what is held;
``shop/redact`` erases the shop's data; none of them touches another merchant's."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import inspect, select, text

from demo.simulators.shopify import webhook_headers
from hub.models import AuditEntry, Binding, Connection, SyncRun, WebhookEvent, utcnow
from hub.order_models import StoreOrder
from hub.runtime import Hub
from tests.conftest import SHOPIFY_SECRET
from tests.helpers import an_order, settled, webhook
from tests.web.test_oauth import SHOPIFY_KEY, Web, web  # noqa: F401 - the ``web`` fixture
from web.app import create_app

GRACE = {"id": 880_002, "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com"}


def post(app: Flask, shop: str, topic: str, payload: dict[str, Any], *, secret: str = SHOPIFY_SECRET,
         webhook_id: str | None = None) -> Any:
    body = json.dumps(payload).encode()
    return app.test_client().post("/webhooks/shopify", data=body,
                                  headers=webhook_headers(shop, topic, body, secret, webhook_id=webhook_id))


def dump(hub: Hub) -> str:
    """Every row of every table, as text: what a database dump would show."""
    out = []
    with hub.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            out += [repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table}"'))]
    return "\n".join(out)


@pytest.fixture
def synced(make_hub, shop_factory, platforms) -> tuple[Hub, Flask, Any, Any]:  # noqa: ANN001
    """Two merchants; the first synced two orders of Ada and one of Grace, the second one order of Ada."""
    hub = make_hub()
    shop, other = shop_factory(hub), shop_factory(hub)
    app = create_app(hub)
    for target, order in ((shop, an_order(450_001, 1001)), (shop, an_order(450_002, 1002)),
                          (shop, an_order(450_003, 1003, email=GRACE["email"], customer=GRACE)),
                          (other, an_order(460_001, 2001))):
        platforms.shopify.add_order(target.domain, order)
        body, headers = webhook(order, target.domain)
        assert app.test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200
        assert [r.status for r in settled(hub)][-1] == "succeeded"
    return hub, app, shop, other


def test_privacy_webhooks_must_be_signed(synced) -> None:  # noqa: ANN001
    hub, app, shop, _ = synced
    events = _count(hub)
    for topic in ("customers/redact", "customers/data_request", "shop/redact", "app/uninstalled"):
        r = post(app, shop.domain, topic, {"shop_domain": shop.domain}, secret="forged")
        assert r.status_code == 401, topic
    assert _count(hub) == events
    # a body naming another shop than the (unsigned) header cannot act on the header's shop
    r = post(app, shop.domain, "shop/redact", {"shop_id": 1, "shop_domain": "someone-else.myshopify.com"})
    assert r.status_code == 400 and _count(hub) == events
    r = post(app, "never-connected.myshopify.com", "shop/redact", {"shop_domain": "never-connected.myshopify.com"})
    assert r.status_code == 200 and r.json["status"] == "nothing held"


def test_customers_redact_erases_the_customer_everywhere_and_nothing_else(synced, platforms) -> None:  # noqa: ANN001
    hub, app, shop, other = synced
    assert "ada@example.com" in dump(hub) and "Lovelace" in dump(hub)
    payload = {"shop_id": 954_889, "shop_domain": shop.domain,
               "customer": {"id": 880_001, "email": "ada@example.com", "phone": "+1-555-0100"},
               "orders_to_redact": [450_001, 450_002]}
    r = post(app, shop.domain, "customers/redact", payload, webhook_id="redact-1")
    assert r.status_code == 200 and r.json["status"] == "accepted"   # carried out by a privacy run
    with hub.session() as s:                                          # whom it is about is never kept in clear
        stored = s.scalar(select(WebhookEvent.payload).where(WebhookEvent.topic == "customers/redact"))
    assert "ada@example.com" not in stored and "+1-555-0100" not in stored
    assert post(app, shop.domain, "customers/redact", payload, webhook_id="redact-1").json["status"] == "duplicate"
    privacy = [r for r in settled(hub) if r.kind == "privacy"]
    assert [(r.status, r.id) for r in privacy] == [("succeeded", r.json["run"])]

    with hub.session() as s:
        runs = {r.source_id: r for r in s.scalars(select(SyncRun))}
        stored = s.scalar(select(WebhookEvent.payload).where(WebhookEvent.topic == "customers/redact"))
        mine = dump_for(hub, shop.merchant_id)
        theirs = dump_for(hub, other.merchant_id)
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "shopify.customer_redacted"))
        buyers = s.scalars(select(Binding).where(Binding.merchant_id == shop.merchant_id,
                                                 Binding.source_type == "buyer")).all()
    for gone in ("ada@example.com", "Lovelace", "+1-555-0100"):
        assert gone not in mine, gone
    assert runs["450001"].canonical["customer"]["email"] is None
    assert runs["450001"].canonical["total"] == runs["450003"].canonical["total"]   # amounts stay
    assert runs["450003"].canonical["customer"]["email"] == GRACE["email"] and "Hopper" in mine
    assert "ada@example.com" in theirs                                 # another merchant's own data stays
    assert {b.target_type for b in buyers if b.source_id.startswith("redacted:")} == {"contact", "customer"}
    assert entry.merchant_id == shop.merchant_id and entry.detail["customer_id"] == "880001"
    assert sorted(entry.detail["runs"]) == sorted([runs["450001"].id, runs["450002"].id])
    assert "ada@" not in json.dumps(entry.detail)
    assert json.loads(stored) == {"shop_id": 954_889, "topic": "customers/redact", "customer_id": 880_001,
                                  "orders_to_redact": [450_001, 450_002], "erased": True}

    # the hub goes on: Ada orders again and is synced (QuickBooks finds her customer by e-mail)
    order = an_order(450_004, 1004)
    platforms.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert app.test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    assert [r.status for r in settled(hub)][-1] == "succeeded"
    assert len(platforms.quickbooks.objects(shop.realm, "Customer")) == 2


def dump_for(hub: Hub, merchant_id: int, *, records: bool = True) -> str:
    """The rows of one merchant that may hold personal data: runs, steps, attempts, bindings, and (with
    ``records``) the inbox and the audit log."""
    rows: list[str] = []
    with hub.engine.connect() as conn:
        for sql in ('SELECT * FROM sync_runs WHERE merchant_id = :m',
                    'SELECT st.* FROM sync_steps st JOIN sync_runs r ON r.id = st.run_id WHERE r.merchant_id = :m',
                    'SELECT a.* FROM sync_attempts a JOIN sync_runs r ON r.id = a.run_id WHERE r.merchant_id = :m',
                    'SELECT * FROM bindings WHERE merchant_id = :m',
                    *(('SELECT * FROM webhook_events WHERE merchant_id = :m',
                       'SELECT * FROM audit_log WHERE merchant_id = :m') if records else ())):
            rows += [repr(tuple(r)) for r in conn.execute(text(sql), {"m": merchant_id})]
    return "\n".join(rows)


def test_customers_data_request_records_what_is_held_and_changes_nothing(synced) -> None:  # noqa: ANN001
    hub, app, shop, _ = synced
    before = dump_for(hub, shop.merchant_id, records=False)
    payload = {"shop_id": 954_889, "shop_domain": shop.domain, "orders_requested": [450_003],
               "customer": {"id": GRACE["id"], "email": GRACE["email"], "phone": None},
               "data_request": {"id": 9999}}
    assert post(app, shop.domain, "customers/data_request", payload).status_code == 200
    with hub.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "shopify.customer_data_request"))
        grace_run = s.scalar(select(SyncRun.id).where(SyncRun.source_id == "450003"))
        stored = s.scalar(select(WebhookEvent.payload).where(WebhookEvent.topic == "customers/data_request"))
    assert entry.detail["runs"] == [grace_run] and entry.detail["data_request_id"] == 9999
    assert {"email", "first_name", "last_name", "binding", "webhook payload"} <= set(entry.detail["personal_data"])
    assert GRACE["email"] not in json.dumps(entry.detail) and GRACE["email"] not in stored
    assert dump_for(hub, shop.merchant_id, records=False) == before and GRACE["email"] in before


def test_uninstall_then_shop_redact(synced) -> None:  # noqa: ANN001
    hub, app, shop, other = synced
    with hub.session() as s:
        s.add(SyncRun(merchant_id=shop.merchant_id, connection_id=_shop_conn(s, shop), kind="order",
                      source_platform="shopify", source_id="450009", status="retrying", error_kind="auth",
                      reason="waiting: the quickbooks connection needs reconnecting", next_attempt_at=utcnow()))
        s.add(SyncRun(merchant_id=other.merchant_id, connection_id=_shop_conn(s, other), kind="order",
                      source_platform="shopify", source_id="460009", status="retrying", next_attempt_at=utcnow()))
        s.add(SyncRun(merchant_id=shop.merchant_id, connection_id=_shop_conn(s, shop), kind="privacy",   # not due
                      source_platform="shopify", source_id="customers/redact:0", status="retrying",
                      next_attempt_at=utcnow() + timedelta(days=1)))
    r = post(app, shop.domain, "app/uninstalled", {"id": 1, "myshopify_domain": shop.domain})
    assert r.status_code == 200
    with hub.session() as s:
        conn = s.get(Connection, _shop_conn(s, shop))
        waiting = s.scalar(select(SyncRun).where(SyncRun.source_id == "450009"))
        untouched = s.scalar(select(SyncRun).where(SyncRun.source_id == "460009"))
        assert (conn.status, conn.secrets) == ("disconnected", None) and "uninstalled" in conn.status_reason
        assert waiting.status == "skipped" and "uninstalled from" in waiting.reason
        assert untouched.status == "retrying"
        ledger = {o.order_id: o for o in s.scalars(select(StoreOrder))}
        assert ledger["450009"].state == "skipped" and "uninstalled from" in ledger["450009"].reason
        assert ledger["460009"].state == "pending"
        privacy = s.scalar(select(SyncRun).where(SyncRun.kind == "privacy"))
        assert privacy.status == "retrying"                     # a privacy request is honoured all the same
        s.delete(privacy)
    # new order webhooks of the uninstalled shop are not taken any more
    order = an_order(450_010, 1010)
    body, headers = webhook(order, shop.domain)
    assert app.test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 404

    # 48 hours later: shop/redact erases what the hub held of the shop
    assert post(app, shop.domain, "shop/redact", {"shop_id": 954_889, "shop_domain": shop.domain}).status_code == 200
    assert [r.status for r in settled(hub) if r.kind == "privacy"] == ["succeeded"]
    mine, theirs = dump_for(hub, shop.merchant_id), dump_for(hub, other.merchant_id)
    for gone in ("ada@example.com", "Lovelace", GRACE["email"], "Hopper"):
        assert gone not in mine, gone
    assert "ada@example.com" in theirs
    with hub.session() as s:
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.action == "shopify.shop_redacted"))
        assert all(r.canonical is None or r.canonical["customer"]["email"] is None
                   for r in s.scalars(select(SyncRun).where(SyncRun.merchant_id == shop.merchant_id)))


def test_the_fake_delivers_app_uninstalled_to_the_subscribed_url(web: Web) -> None:  # noqa: F811
    shop = web.platforms.shopify.add_shop("leaving.myshopify.com")
    web.browser().get(f"{web.base}/connect/shopify", params={"shop": shop}, timeout=10)
    [conn] = web.connections("shopify")
    assert web.platforms.shopify.uninstall(shop, SHOPIFY_KEY) == [200]
    [conn] = web.connections("shopify")
    assert conn.status == "disconnected" and conn.secrets is None
    with web.hub.session() as s:
        assert s.scalar(select(AuditEntry.actor).where(AuditEntry.action == "shopify.app_uninstalled")) == "shopify"


def _shop_conn(s: Any, shop: Any) -> int:
    return s.scalar(select(Connection.id).where(Connection.platform == "shopify", Connection.account == shop.domain))


def _count(hub: Hub) -> int:
    with hub.session() as s:
        return len(s.scalars(select(WebhookEvent.id)).all())
