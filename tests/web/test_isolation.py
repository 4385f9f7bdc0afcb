"""Tenants are isolated. A merchant user tries every route of the app (enumerated from its url_map, so a
new route is covered the day it is added) with another merchant's run, merchant, connection, user and
failure group — through the console (session + CSRF) and the JSON API (its bearer token) — and gets a
404 or 403, with nothing of the other merchant read or changed. Routes without ids get the other
merchant in their query string and show nothing of it. A webhook signed for one store cannot create
work for another. An admin manages the support accounts; nobody else sees that page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from demo.simulators.shopify import webhook_headers
from hub import audit
from hub.credit_models import CreditLimit, CreditOrder
from hub.mapping_rules import save_overrides
from hub.merchants import connect
from hub.models import AuditEntry, Connection, Merchant, SyncRun, User, WebhookEvent
from hub.oauth_models import OAuthState
from hub.payout_models import StorePayout
from hub.task_models import OperatorTask
from hub.users import create_user
from sync.failures import failure_groups
from tests.conftest import SHOPIFY_SECRET
from tests.helpers import an_order, settled
from tests.web.test_compliance import dump_for
from tests.web.test_oauth import PASSWORD, SHOPIFY_KEY, oauth_app

MINE, THEIRS = "me@mine.example", "them@theirs.example"
SKIP_ENDPOINTS = {"static", "console.logout"}                # logging out is not an attack on anyone
# answers an unknown failure group with a flash and a redirect instead of a 404; it changes nothing (the
# snapshot below proves it), and a group key is a hash of a cause, not any merchant's object
REDIRECTS_INSTEAD_OF_404 = {"console.failures_rerun", "console.failures_skip"}
CONVERTED = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")


def console_client(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/console/login", data={"email": email, "password": PASSWORD,
                                               "csrf_token": token}).status_code == 302
    return client


def csrf(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        return sess["csrf"]


@pytest.fixture
def tenants(make_hub, shop_factory, platforms):  # noqa: ANN001, ANN201
    hub = make_hub(SHOPIFY_API_KEY=SHOPIFY_KEY)
    mine, theirs = shop_factory(hub), shop_factory(hub)
    with hub.session() as s:
        for shop, reason in ((mine, "quickbooks: my own trouble (code 6000)"),
                             (theirs, "mapping: their secret-sauce rule (code TH-1)")):
            for status in ("failed", "retrying", "succeeded"):
                s.add(SyncRun(merchant_id=shop.merchant_id, kind="order", source_platform="shopify",
                              source_id=f"{shop.merchant_id}0{len(status)}", source_name=f"#THEIRS{shop.merchant_id}"
                              if shop is theirs else f"#MINE{len(status)}", status=status, attempts=1,
                              reason=reason if status != "succeeded" else None,
                              error_kind="permanent" if status == "failed" else None))
        save_overrides(s, theirs.merchant_id, {"discounts": {"mode": "unit_price"}}, by="them")
        s.add(StorePayout(merchant_id=theirs.merchant_id, platform="shopify", store=theirs.domain, payout_id="7000001",
                          processor="shopify_payments", status="paid", currency="USD", net="10.00", unexplained=[],
                          deposit_state="held", reason="their held payout"))
        create_user(s, MINE, PASSWORD, "merchant", mine.merchant_id)
        their_user = create_user(s, THEIRS, PASSWORD, "merchant", theirs.merchant_id).id
        their_run = s.scalar(select(SyncRun.id).where(SyncRun.merchant_id == theirs.merchant_id,
                                                      SyncRun.status == "failed"))
        their_conn = s.scalar(select(Connection.id).where(Connection.merchant_id == theirs.merchant_id,
                                                          Connection.platform == "quickbooks"))
        their_work = audit.record(s, "them", "failures.rerun_group", merchant_id=theirs.merchant_id,
                                  detail={"runs": [their_run]})   # the progress page of their re-run
        s.flush()
        their_entry = their_work.id
        their_task = OperatorTask(merchant_id=theirs.merchant_id, kind="reconcile", actor="them", params={},
                                  run_ids=[their_run], result={})
        s.add(their_task)
        s.flush()
        their_task_id = their_task.id
        their_limit = CreditLimit(merchant_id=theirs.merchant_id, customer_key="email:them@example.com",
                                  email="them@example.com", amount="10.00", updated_by="them")
        s.add(their_limit)
        s.flush()
        their_hold = CreditOrder(merchant_id=theirs.merchant_id, limit_id=their_limit.id, platform="shopify",
                                 order_id="9990001", amount="50.00", hold_status="held", exposure="50.00",
                                 limit_amount="10.00")
        s.add(their_hold)
        s.flush()
        their_hold_id = their_hold.id
        [their_group] = [g.key for g in failure_groups(s, theirs.merchant_id)]
        assert their_group not in [g.key for g in failure_groups(s, mine.merchant_id)]
    values = {"run_id": their_run, "merchant_id": theirs.merchant_id, "connection_id": their_conn,
              "user_id": their_user, "key": their_group,
              "platform": "shopify", "order_id": f"{theirs.merchant_id}0{len('failed')}",   # their order
              "payout_id": "7000001",   # their payout
              "entry_id": their_entry, "task_id": their_task_id,   # their work's progress
              "hold_id": their_hold_id,  # their credit hold
              "version": 1,             # their rules' first version
              "token": "not-a-link-token"}   # a one-time password link names no merchant: a made-up one opens nothing
    return hub, oauth_app(hub), mine, theirs, values


def _snapshot(hub: Any, merchant_id: int) -> str:
    with hub.session() as s:
        conns = [(c.id, c.status, c.secrets, c.status_reason) for c in
                 s.scalars(select(Connection).where(Connection.merchant_id == merchant_id))]
        users = [(u.id, u.disabled, u.password_hash) for u in s.scalars(select(User))]
    return dump_for(hub, merchant_id, records=False) + repr(conns) + repr(users)


def test_every_route_refuses_another_merchants_objects(tenants) -> None:  # noqa: ANN001
    hub, app, mine, theirs, values = tenants
    from web.api.tokens import create_token

    with hub.session() as s:
        _, api_token = create_token(s, MINE, "isolation test")
    browser = console_client(app, MINE)
    before = _snapshot(hub, theirs.merchant_id)
    tried = []
    for rule in app.url_map.iter_rules():
        if not rule.arguments or rule.endpoint in SKIP_ENDPOINTS or rule.rule.startswith("/webhooks/"):
            continue
        unknown = rule.arguments - values.keys()
        assert not unknown, f"{rule.rule}: teach this test which object of another merchant {unknown} names"
        path = CONVERTED.sub(lambda m: str(values[m.group(1)]), rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if rule.rule.startswith("/api/"):
                r = app.test_client().open(path, method=method, headers={"Authorization": f"Bearer {api_token}"},
                                           json={} if method == "POST" else None)
            else:
                data = {"csrf_token": csrf(browser), "reason": "x", "rules": "{}", "disabled": "1"}
                r = browser.open(path, method=method, data=data if method == "POST" else None)
            tried.append((method, path, r.status_code))
            allowed = (403, 404, 302) if rule.endpoint in REDIRECTS_INSTEAD_OF_404 else (403, 404)
            assert r.status_code in allowed, (method, path, r.status_code, r.get_data(as_text=True)[:200])
    assert len(tried) >= 10 and {m for m, _, _ in tried} == {"GET", "POST"}
    assert _snapshot(hub, theirs.merchant_id) == before
    with hub.session() as s:
        assert not s.scalars(select(AuditEntry).where(AuditEntry.actor == MINE,
                                                      AuditEntry.merchant_id == theirs.merchant_id)).all()


def test_routes_without_ids_show_nothing_of_another_merchant(tenants) -> None:  # noqa: ANN001
    hub, app, mine, theirs, values = tenants
    from web.api.tokens import create_token

    with hub.session() as s:
        _, api_token = create_token(s, MINE, "isolation test")
    browser = console_client(app, MINE)
    before = _snapshot(hub, theirs.merchant_id)
    foreign = {"merchant": theirs.merchant_id, "connection": values["connection_id"], "shop": theirs.domain,
               "order": "#THEIRS", "status": "failed"}
    markers = (f"#THEIRS{theirs.merchant_id}", "secret-sauce", theirs.domain, theirs.realm)
    for rule in app.url_map.iter_rules():
        if rule.arguments or "GET" not in rule.methods or rule.endpoint in SKIP_ENDPOINTS:
            continue
        if rule.rule.startswith("/api/"):
            r = app.test_client().get(rule.rule, query_string=foreign, headers={"Authorization": f"Bearer {api_token}"})
        else:
            r = browser.get(rule.rule, query_string=foreign)
        text = r.get_data(as_text=True)
        assert not [m for m in markers if m in text], (rule.rule, r.status_code)
        if rule.rule in ("/connect/quickbooks", "/connect/hubspot"):
            assert r.status_code == 404, rule.rule          # no flow starts for another merchant
        if rule.rule == "/connect/shopify":
            assert r.status_code in (403, 404), r.status_code
    r = app.test_client().post("/api/v1/runs/retry", json={"merchant": theirs.merchant_id},
                               headers={"Authorization": f"Bearer {api_token}"})
    assert r.status_code in (403, 404) or (r.status_code == 202 and r.json["count"] == 0)
    assert _snapshot(hub, theirs.merchant_id) == before
    with hub.session() as s:
        assert s.scalars(select(OAuthState)).all() == []


def test_a_webhook_signed_for_one_store_creates_no_work_for_another(tenants, platforms) -> None:  # noqa: ANN001
    hub, app, mine, theirs, _ = tenants
    with hub.session() as s:
        woo = {}
        for shop, secret in ((mine, "mine-webhook-secret-1234"), (theirs, "their-webhook-secret-5678")):
            m = s.get(Merchant, shop.merchant_id)
            woo[shop.merchant_id] = connect(s, hub.secrets, m, "woocommerce", f"https://{shop.portal}.example",
                                            {"consumer_key": "ck", "consumer_secret": "cs",
                                             "webhook_secret": secret}).id
    events = _events(hub)
    body = json.dumps({"id": 77, "number": "77", "status": "processing"}).encode()
    signed_mine = base64.b64encode(hmac.new(b"mine-webhook-secret-1234", body, hashlib.sha256).digest()).decode()
    r = app.test_client().post(f"/webhooks/woocommerce/{woo[theirs.merchant_id]}", data=body, headers={
        "X-WC-Webhook-Signature": signed_mine, "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Delivery-ID": "1"})
    assert r.status_code == 401 and _events(hub) == events

    # Shopify signs with the app's secret and names the shop in a header: the order is read from that shop,
    # so a body naming another shop's order creates nothing for the other merchant
    order = an_order(990_001, 9001)
    platforms.shopify.add_order(theirs.domain, order)
    body = json.dumps(order.webhook_body()).encode()
    r = app.test_client().post("/webhooks/shopify", data=body,
                               headers=webhook_headers(mine.domain, "orders/create", body, SHOPIFY_SECRET))
    assert r.status_code == 200
    runs = settled(hub)
    made = [r for r in runs if r.source_id == "990001"]
    assert [r.merchant_id for r in made] == [mine.merchant_id] and made[0].status != "succeeded"
    assert platforms.quickbooks.objects(theirs.realm, "Invoice") == []


def _events(hub: Any) -> int:
    with hub.session() as s:
        return len(s.scalars(select(WebhookEvent.id)).all())


def test_only_an_admin_manages_support_accounts(tenants) -> None:  # noqa: ANN001
    hub, app, mine, _, _ = tenants
    with hub.session() as s:
        create_user(s, "boss@example.com", PASSWORD, "admin")
        create_user(s, "agent@example.com", PASSWORD, "support")
    for who in (MINE, "agent@example.com"):
        client = console_client(app, who)
        assert client.get("/console/staff").status_code == 404
        assert client.post("/console/staff", data={"csrf_token": csrf(client), "email": "x@example.com",
                                                   "password": PASSWORD, "role": "admin"}).status_code == 404
    admin = console_client(app, "boss@example.com")
    page = admin.get("/console/staff").get_data(as_text=True)
    assert "agent@example.com" in page and MINE in page and 'href="/console/staff"' in page   # merchant users too
    bad = admin.post("/console/staff", data={"csrf_token": csrf(admin), "email": "new@example.com",
                                             "password": "short", "role": "support"})
    assert bad.status_code == 400 and "at least 8" in bad.get_data(as_text=True)
    assert admin.post("/console/staff", data={"email": "new@example.com", "password": PASSWORD,
                                              "role": "support"}).status_code == 400       # no CSRF token
    ok = admin.post("/console/staff", data={"csrf_token": csrf(admin), "email": "new@example.com",
                                            "password": PASSWORD, "role": "support"})
    assert ok.status_code == 302
    new = console_client(app, "new@example.com")
    assert "new@example.com" in new.get("/console/runs").get_data(as_text=True)
    with hub.session() as s:
        new_id = s.scalar(select(User.id).where(User.email == "new@example.com"))
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "user.created"))
        assert (entry.actor, entry.target_id) == ("boss@example.com", str(new_id))
        assert PASSWORD not in json.dumps(entry.detail)
    assert admin.post(f"/console/staff/{new_id}/disable", data={"csrf_token": csrf(admin), "confirm": "yes"}
                      ).status_code == 302
    assert new.get("/console/runs").status_code == 302                # signed out: the account is disabled
