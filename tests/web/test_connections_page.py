"""The Connections page without dead ends: one next step per merchant and platform (Connect when the hub's
app is configured, Reconnect once connected, a plain sentence otherwise — support also reads what to
configure), WooCommerce connected from the console by its key exchange, any connection disconnected after a
confirmation, and Resume offered only once a reconnected connection has runs waiting."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from sqlalchemy import select

from hub.merchants import create_merchant
from hub.models import AuditEntry, Connection, SyncRun
from tests.web.test_console import PASSWORD, add_user, csrf, login
from web.app import create_app

OWNER, AGENT = "owner@example.com", "agent@example.com"


def _client(app, email):  # noqa: ANN001, ANN202
    client = app.test_client()
    assert login(client, email, PASSWORD).status_code == 302
    return client


def _page(client, path="/console/connections"):  # noqa: ANN001, ANN202
    r = client.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.get_data(as_text=True)


def _panel(page: str, platform: str) -> str:
    start = page.index(f'data-platform="{platform}"')
    return page[start:page.index('class="panel"', start) if 'class="panel"' in page[start:] else None]


def test_each_platform_offers_one_next_step_and_unconfigured_apps_are_explained(make_hub, shop_factory,  # noqa: ANN001
                                                                                  monkeypatch) -> None:
    monkeypatch.delenv("SHOPIFY_API_KEY", raising=False)
    hub = make_hub(HUBSPOT_CLIENT_ID="")            # no Shopify app and no HubSpot app on this hub
    shop = shop_factory(hub)
    with hub.session() as s:
        fresh = create_merchant(s, "Fresh merchant").id
    add_user(hub, OWNER, "merchant", fresh)
    add_user(hub, AGENT, "support")
    app = create_app(hub)

    owner = _page(_client(app, OWNER))
    assert 'id="connect-quickbooks"' in _panel(owner, "quickbooks")          # configured: Connect
    assert "not available on this hub yet" in _panel(owner, "shopify")       # a plain sentence
    assert "not available on this hub yet" in _panel(owner, "hubspot")
    assert "SHOPIFY_API_KEY" not in owner and 'id="connect-woocommerce"' in owner   # key exchange: no app needed

    agent = _client(app, AGENT)
    connected = _page(agent, f"/console/connections?merchant={shop.merchant_id}")
    assert "SHOPIFY_API_KEY and SHOPIFY_API_SECRET" in _panel(connected, "shopify")   # support: what to set
    qb = _panel(connected, "quickbooks")
    assert "Reconnect" in qb and 'id="connect-quickbooks"' not in qb and shop.realm in qb   # connected: Reconnect
    assert "<button>Resume</button>" not in connected

    with_shopify = create_app(make_hub(SHOPIFY_API_KEY="shopify-key"))
    shopify = _panel(_page(_client(with_shopify, OWNER)), "shopify")
    assert 'id="connect-shopify"' in shopify and ".myshopify.com" in shopify and "Settings → Domains" in shopify


def test_woocommerce_connects_from_the_console_and_a_connection_disconnects_after_confirmation(
        make_hub, shop_factory, platforms) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    add_user(hub, OWNER, "merchant", shop.merchant_id)
    add_user(hub, AGENT, "support")
    app = create_app(hub)
    store = platforms.woocommerce.url
    owner = _client(app, OWNER)
    r = owner.post("/console/connections/woocommerce", data={"csrf_token": csrf(owner), "url": store})
    assert r.status_code == 302 and "/connect/woocommerce/start?token=" in r.headers["Location"]
    onward = app.test_client().get(urlparse(r.headers["Location"])._replace(scheme="", netloc="").geturl())
    assert onward.status_code == 302 and "/wc-auth/v1/authorize" in onward.headers["Location"]   # to the store
    bad = owner.post("/console/connections/woocommerce", data={"csrf_token": csrf(owner), "url": "not a url"})
    assert bad.status_code == 302 and "Not connected" in _page(owner)

    agent = _client(app, AGENT)
    link_page = agent.post("/console/connections/woocommerce",
                           data={"csrf_token": csrf(agent), "url": store, "merchant": str(shop.merchant_id)})
    assert link_page.status_code == 200 and re.search(r'value="[^"]+/connect/woocommerce/start\?token=',
                                                      link_page.get_data(as_text=True))

    with hub.session() as s:
        hs = s.scalar(select(Connection.id).where(Connection.merchant_id == shop.merchant_id,
                                                  Connection.platform == "hubspot"))
    confirm = _page(owner, f"/console/connections/{hs}/disconnect")
    assert "Yes, disconnect" in confirm
    with hub.session() as s:
        assert s.get(Connection, hs).status == "active"                 # asking changed nothing
    done = owner.post(f"/console/connections/{hs}/disconnect", data={"csrf_token": csrf(owner)})
    assert done.status_code == 302
    with hub.session() as s:
        assert s.get(Connection, hs).status == "disconnected"
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "connection.disconnect")).one()
        assert entry.actor == OWNER and entry.merchant_id == shop.merchant_id
    assert 'id="connect-hubspot"' in _panel(_page(owner), "hubspot")     # connectable again


def test_resume_appears_only_once_the_connection_is_reconnected(make_hub, shop_factory) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    add_user(hub, AGENT, "support")
    app = create_app(hub)
    with hub.session() as s:
        conn = s.scalars(select(Connection).where(Connection.merchant_id == shop.merchant_id,
                                                  Connection.platform == "quickbooks")).one()
        conn.status, conn.status_reason = "needs_reconnect", "the refresh token expired"
        s.add(SyncRun(merchant_id=shop.merchant_id, kind="order", source_platform="shopify", source_id="77",
                      status="retrying", error_kind="auth", error_code="quickbooks", attempts=1,
                      reason="waiting: the quickbooks connection needs reconnecting"))
        conn_id = conn.id
    agent = _client(app, AGENT)
    page = _page(agent, f"/console/connections?merchant={shop.merchant_id}")
    assert "<button>Resume</button>" not in page and f'data-reconnect="{conn_id}"' in page
    with hub.session() as s:
        s.get(Connection, conn_id).status = "active"                    # reconnected
    page = _page(agent, f"/console/connections?merchant={shop.merchant_id}")
    assert "<button>Resume</button>" in page
    r = agent.post(f"/console/connections/{conn_id}/resume", data={"csrf_token": csrf(agent)})
    assert r.status_code == 302 and "/console/progress/" in r.headers["Location"]   # the live progress page
    progress = _page(agent, urlparse(r.headers["Location"]).path)
    assert "Resume after a reconnect" in progress and 'data-count="total">1<' in progress
    as_json = agent.get(urlparse(r.headers["Location"]).path + ".json").get_json()
    assert as_json["total"] == 1 and as_json["done"] + as_json["failed"] + as_json["remaining"] == 1


def test_an_admin_starts_a_backfill_catch_up_and_reconcile_and_follows_each_to_the_end(make_hub, shop_factory,  # noqa: ANN001
                                                                                       platforms) -> None:
    from tests.helpers import an_order, wait_until

    hub = make_hub()
    shop = shop_factory(hub)
    for n in range(3):   # orders the hub never heard of: only a backfill finds them
        platforms.shopify.add_order(shop.domain, an_order(460_001 + n, 2001 + n))
    add_user(hub, "admin@example.com", "admin")
    add_user(hub, AGENT, "support")
    app = create_app(hub)
    admin = _client(app, "admin@example.com")
    page = _page(admin, f"/console/connections?merchant={shop.merchant_id}")
    assert 'id="start-backfill"' in page and 'id="start-reconcile"' in page
    support = _client(app, AGENT)
    assert 'id="start-backfill"' not in _page(support, f"/console/connections?merchant={shop.merchant_id}")
    refused = support.post("/console/tasks", data={"csrf_token": csrf(support), "kind": "catch_up",
                                                   "merchant": str(shop.merchant_id)})
    assert refused.status_code == 403
    assert admin.post("/console/tasks", data={"csrf_token": csrf(admin), "kind": "backfill",
                                              "merchant": str(shop.merchant_id), "since": "someday"}).status_code == 400

    def follow(kind: str, **form: str) -> dict:
        r = admin.post("/console/tasks", data={"csrf_token": csrf(admin), "kind": kind,
                                               "merchant": str(shop.merchant_id), **form})
        assert r.status_code == 302 and "/console/tasks/" in r.headers["Location"], r.get_data(as_text=True)[:300]
        path = urlparse(r.headers["Location"]).path
        assert "Runs opened by this task" in _page(admin, path)
        state: dict = {}

        def finished() -> bool:
            state.update(admin.get(path + ".json").get_json())
            return state["finished"]
        wait_until(finished, 30)
        return state

    backfilled = follow("backfill", since="2020-01-01")
    assert backfilled["status"] == "done" and backfilled["total"] == 3 and backfilled["done"] == 3
    assert backfilled["result"]["listed"] == 3
    assert len(platforms.quickbooks.objects(shop.realm, "Invoice")) == 3
    caught_up = follow("catch_up")
    assert caught_up["status"] == "done" and caught_up["result"]["errors"] == {}
    reconciled = follow("reconcile")
    assert reconciled["status"] == "done" and reconciled["result"]["discrepancies"] == 0
    with hub.session() as s:
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "admin@example.com")))
    assert {"task.backfill", "task.catch_up", "task.reconcile"} <= actions
