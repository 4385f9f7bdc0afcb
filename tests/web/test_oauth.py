"""The OAuth connect flows end to end over real HTTP: the hub served on 127.0.0.1, a browser (a
``requests`` session keeping the hub's session cookie), and the Shopify, Intuit and HubSpot fakes.

Shopify: install of a new shop (expiring token, webhooks subscribed, new merchant), a signed-in merchant's
shop with a classic token, and every refusal — tampered HMAC, wrong state, old or future timestamp,
foreign host, another shop, replayed callback, replayed code, a shop of another merchant. QuickBooks:
connect, refresh ahead of expiry and on a 401 (once, under the lock), an expired refresh token → needs
reconnect with the runs waiting, Reconnect → the runs resume and succeed, refusals, disconnect revokes.
HubSpot: connect (hub id from the token info), refresh, needs reconnect, revoke.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import select, update

from hub.merchants import connect, create_merchant
from hub.models import AuditEntry, Connection, Merchant, SyncRun, utcnow
from hub.oauth_models import OAuthState
from hub.runtime import Hub
from hub.settings import Settings
from hub.storefronts import disconnect
from hub.users import create_user
from sync.accounts import Accounts, NeedsReconnect
from tests.conftest import HS_CLIENT, QB_CLIENT, SHOPIFY_SECRET, Platforms
from tests.helpers import an_order, served, settled, wait_until, webhook
from web.app import create_app
from web.oauth import bp as oauth_bp

SHOPIFY_KEY = "shopify-test-client-id"
PASSWORD = "correct horse battery"
SUPPORT = "support@example.com"


def oauth_app(hub: Hub) -> Flask:
    """The web app with the connect flows (registered here until ``hub/app.py`` does it)."""
    app = create_app(hub)
    if "oauth" not in app.blueprints:
        app.register_blueprint(oauth_bp)
    return app


@dataclass
class Web:
    hub: Hub
    app: Flask
    base: str
    platforms: Platforms

    def browser(self, email: str | None = None) -> requests.Session:
        """A browser; signed in to the console as ``email`` unless None."""
        b = requests.Session()
        if email:
            page = b.get(f"{self.base}/console/login", timeout=10).text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            r = b.post(f"{self.base}/console/login", data={"email": email, "password": PASSWORD,
                                                           "csrf_token": token}, allow_redirects=False, timeout=10)
            assert r.status_code == 302, r.text
        return b

    def merchant(self, name: str, user: str | None = None, *, shop: str | None = None) -> int:
        """A merchant (with a console user ``user``, and a Shopify shop connected by token when given)."""
        with self.hub.session() as s:
            m = create_merchant(s, name)
            if user:
                create_user(s, user, PASSWORD, "merchant", m.id)
            if shop:
                self.platforms.shopify.add_shop(shop)
                connect(s, self.hub.secrets, m, "shopify", shop,
                        {"access_token": self.platforms.shopify.issue_token(shop)})
            return m.id

    def staff(self, email: str = SUPPORT, role: str = "support") -> None:
        with self.hub.session() as s:
            create_user(s, email, PASSWORD, role)

    def connections(self, platform: str | None = None) -> list[Connection]:
        with self.hub.session() as s:
            q = select(Connection).order_by(Connection.id)
            return list(s.scalars(q.where(Connection.platform == platform) if platform else q))

    def secrets(self, conn_id: int) -> dict[str, Any]:
        with self.hub.session() as s:
            return self.hub.secrets.decrypt(s.get(Connection, conn_id).secrets)

    def states(self) -> list[OAuthState]:
        with self.hub.session() as s:
            return list(s.scalars(select(OAuthState).order_by(OAuthState.id)))

    def send(self, shop: str, order: Any) -> None:
        self.platforms.shopify.add_order(shop, order)
        body, headers = webhook(order, shop)
        r = requests.post(f"{self.base}/webhooks/shopify", data=body, headers=headers, timeout=10)
        assert r.status_code == 200, r.text


@pytest.fixture
def web(make_hub, platforms: Platforms, monkeypatch: pytest.MonkeyPatch) -> Web:  # noqa: ANN001
    hub = make_hub(SHOPIFY_API_KEY=SHOPIFY_KEY)
    platforms.shopify.register_app(SHOPIFY_KEY, SHOPIFY_SECRET)
    app = oauth_app(hub)
    with served(app) as base:
        monkeypatch.setenv("O2C_PUBLIC_URL", base)
        hub.settings = replace(hub.settings, public_url=base)
        platforms.shopify.register_app(SHOPIFY_KEY, SHOPIFY_SECRET, redirect_urls=(f"{base}/connect/",))
        yield Web(hub, app, base, platforms)


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def signed(params: dict[str, str], secret: str = SHOPIFY_SECRET) -> dict[str, str]:
    """``params`` with Shopify's ``hmac`` over them (as a real callback would carry)."""
    body = {k: v for k, v in params.items() if k != "hmac"}
    message = "&".join(sorted(f"{k}={v}" for k, v in body.items()))
    return {**body, "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}


def shopify_callback(web: Web, browser: requests.Session, shop: str, **start: str) -> str:
    """Start a Shopify install in ``browser`` and return the callback URL the fake approves with (unvisited)."""
    r = browser.get(f"{web.base}/connect/shopify", params={"shop": shop, **start}, allow_redirects=False,
                    timeout=10)
    assert r.status_code == 302, r.text
    authorize = r.headers["Location"]
    assert authorize.startswith(f"{web.platforms.shopify.url}/admin/oauth/authorize?")
    q = query(authorize)
    assert q["client_id"] == SHOPIFY_KEY and {"read_orders", "write_orders"} <= set(q["scope"].split(","))
    assert q["redirect_uri"] == f"{web.base}/connect/shopify/callback" and len(q["state"]) >= 32
    approved = requests.get(authorize, allow_redirects=False, timeout=10)
    assert approved.status_code == 302, approved.text
    return approved.headers["Location"]


# -- Shopify ---------------------------------------------------------------------------------------
def test_shopify_install_of_a_new_shop_creates_its_merchant_with_an_expiring_token_and_webhooks(web: Web) -> None:
    shop = web.platforms.shopify.add_shop("new-cafe.myshopify.com", name="New Cafe")
    page = web.browser().get(f"{web.base}/connect/shopify", params={"shop": shop}, timeout=10)
    assert page.status_code == 200 and "new-cafe.myshopify.com is connected" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"

    [conn] = web.connections("shopify")
    assert conn.status == "active" and conn.settings["token_kind"] == "expiring"
    assert timedelta(minutes=55) < conn.token_expires_at - utcnow() <= timedelta(hours=1)
    tokens = web.secrets(conn.id)
    assert tokens["access_token"].startswith("shpat_") and tokens["refresh_token"].startswith("shprt_")
    assert tokens["access_token"] not in (conn.secrets or "")
    with web.hub.session() as s:
        assert s.get(Merchant, conn.merchant_id).name == "New Cafe"
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "connection.connected")).actor == \
            f"shopify:{shop}"
    subs = web.platforms.shopify.subscriptions(shop)
    assert sorted(s["topic"] for s in subs) == sorted([
        "ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_PAID", "ORDERS_CANCELLED", "ORDERS_FULFILLED",
        "ORDERS_PARTIALLY_FULFILLED", "REFUNDS_CREATE", "FULFILLMENTS_CREATE", "FULFILLMENTS_UPDATE",
        "APP_UNINSTALLED"])
    assert {s["callbackUrl"] for s in subs} == {f"{web.base}/webhooks/shopify"}
    assert [st.status for st in web.states()] == ["completed"]

    # the expiring token is refreshed ahead of its expiry, and the rotated refresh token is kept
    with web.hub.session() as s:
        s.execute(update(Connection).values(token_expires_at=utcnow() + timedelta(minutes=2)))
    client = Accounts(web.hub, conn.merchant_id).shopify()
    assert client.graphql("query { shop { name } }")["shop"]["name"] == "New Cafe"
    assert web.platforms.shopify.app_state.refreshes == 1
    fresh = web.secrets(conn.id)
    assert fresh["access_token"] != tokens["access_token"] and fresh["refresh_token"] != tokens["refresh_token"]

    # installing again (the merchant reinstalls) reconnects the same merchant, subscribes nothing twice
    web.browser().get(f"{web.base}/connect/shopify", params={"shop": shop}, timeout=10)
    assert [c.id for c in web.connections()] == [conn.id]
    assert len(web.platforms.shopify.subscriptions(shop)) == len(subs)

    # a refresh token Shopify no longer takes: the shop needs reconnecting, nothing is lost
    web.platforms.shopify.expire_refresh_tokens()
    web.platforms.shopify.expire_tokens()
    with pytest.raises(NeedsReconnect):
        Accounts(web.hub, conn.merchant_id).shopify().graphql("query { shop { name } }")
    assert web.connections("shopify")[0].status == "needs_reconnect"


def test_shopify_classic_token_for_a_signed_in_merchant_user(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_TOKEN_KIND", "classic")   # read through the settings, as a restarted hub would
    monkeypatch.setattr(web.hub, "settings", Settings.from_env())
    merchant = web.merchant("Tea House", "owner@tea.example")
    shop = web.platforms.shopify.add_shop("tea-house.myshopify.com")
    browser = web.browser("owner@tea.example")
    page = browser.get(f"{web.base}/connect/shopify", params={"shop": shop}, timeout=10)
    assert page.url.startswith(f"{web.base}/console/connections")
    assert "tea-house.myshopify.com is connected" in page.text
    [conn] = web.connections("shopify")
    assert conn.merchant_id == merchant and conn.settings["token_kind"] == "classic"
    assert conn.token_expires_at is None and web.secrets(conn.id)["refresh_token"] is None
    assert Accounts(web.hub, merchant).shopify().graphql("query { shop { name } }")["shop"]


def test_shopify_callbacks_that_are_not_genuine_are_refused_and_save_nothing(web: Web) -> None:
    shop = web.platforms.shopify.add_shop("genuine.myshopify.com")
    other = web.platforms.shopify.add_shop("other-shop.myshopify.com")
    browser = web.browser()

    for bad in ("evil.example.com", "genuine.myshopify.com.evil.example", "-x.myshopify.com", "https://a.b/c",
                "GENUINE.myshopify.com/../x", ""):
        r = browser.get(f"{web.base}/connect/shopify", params={"shop": bad}, allow_redirects=False, timeout=10)
        assert r.status_code == 400 and "myshopify.com" in r.text, bad

    callback = shopify_callback(web, browser, shop)
    path, genuine = urlsplit(callback).path, query(callback)
    url = f"{web.base}{path}"

    def refused(params: dict[str, str], status: int, words: str, who: requests.Session = browser) -> None:
        r = who.get(url, params=params, allow_redirects=False, timeout=10)
        assert r.status_code == status and words in r.text, (params, r.status_code, r.text[:300])

    tampered = dict(genuine, hmac=genuine["hmac"][:-1] + ("0" if genuine["hmac"][-1] != "0" else "1"))
    refused(tampered, 401, "HMAC mismatch")
    refused(dict(genuine, shop=other), 401, "HMAC mismatch")                 # a changed parameter
    refused({k: v for k, v in genuine.items() if k != "hmac"}, 401, "HMAC mismatch")
    refused(signed(dict(genuine), secret="not-the-app-secret"), 401, "HMAC mismatch")
    refused(signed(dict(genuine, timestamp=str(int(time.time()) - 2 * 86400))), 400, "more than a day old")
    refused(signed(dict(genuine, timestamp=str(int(time.time()) + 3600))), 400, "in the future")
    refused(signed(dict(genuine, shop="evil.example.com")), 400, "myshopify.com")
    refused(genuine, 400, "state mismatch", who=web.browser())              # another browser (login CSRF)
    assert web.connections() == [] and web.platforms.shopify.app_state.exchanges == 0

    # the state was for one shop: a genuine answer for another shop is refused (and the state is used up)
    refused(signed(dict(genuine, shop=other)), 400, "connect request was for genuine.myshopify.com")
    refused(genuine, 400, "state mismatch")
    # a genuine answer with a state this browser never had
    fresh = query(shopify_callback(web, browser, shop))
    refused(signed(dict(fresh, state="x" * 43)), 400, "state mismatch")
    assert web.connections() == [] and web.platforms.shopify.app_state.exchanges == 0

    # a genuine callback in the browser that started it connects; replaying it changes nothing
    second = shopify_callback(web, browser, shop)
    ok = browser.get(second, timeout=10)
    assert ok.status_code == 200 and "is connected" in ok.text
    assert browser.get(second, allow_redirects=False, timeout=10).status_code == 400
    [conn] = web.connections()
    before = conn.secrets

    # a used code, signed afresh with a fresh state: Shopify refuses it, nothing is saved
    third = query(shopify_callback(web, browser, shop))
    replay = browser.get(url, params=signed(dict(third, code=query(second)["code"])), timeout=10)
    assert replay.status_code == 400 and "already used, or expired" in replay.text
    assert web.connections()[0].secrets == before
    assert [st.status for st in web.states()][-1] == "failed"


def test_a_shop_of_another_merchant_cannot_be_taken_over(web: Web) -> None:
    owner = web.merchant("Owner", shop="taken.myshopify.com")
    web.merchant("Intruder", "intruder@example.com")
    web.staff()
    r = web.browser("intruder@example.com").get(f"{web.base}/connect/shopify",
                                                 params={"shop": "taken.myshopify.com"}, timeout=10)
    assert r.status_code == 403 and "another merchant" in r.text
    # a signed-in merchant user cannot name another merchant, nor its connection
    r = web.browser("intruder@example.com").get(f"{web.base}/connect/quickbooks", params={"merchant": owner},
                                                timeout=10)
    assert r.status_code == 404
    [conn] = web.connections()
    assert conn.merchant_id == owner and web.platforms.shopify.app_state.exchanges == 0
    assert len(web.states()) == 0


# -- QuickBooks ------------------------------------------------------------------------------------
def connect_quickbooks(web: Web, browser: requests.Session, **params: Any) -> requests.Response:
    page = browser.get(f"{web.base}/connect/quickbooks", params=params, timeout=15)
    assert page.status_code == 200, page.text[:500]
    return page


def test_quickbooks_connect_refresh_needs_reconnect_and_resume(web: Web) -> None:
    p = web.platforms
    shop = "books-shop.myshopify.com"
    merchant = web.merchant("Books", "owner@books.example", shop=shop)
    p.quickbooks.add_company("9130350")
    browser = web.browser("owner@books.example")

    page = connect_quickbooks(web, browser)
    assert page.url.startswith(f"{web.base}/console/connections")
    assert "QuickBooks company" in page.text and "(9130350) is connected" in page.text
    [books] = web.connections("quickbooks")
    assert (books.merchant_id, books.account, books.status) == (merchant, "9130350", "active")
    assert timedelta(minutes=55) < books.token_expires_at - utcnow() <= timedelta(hours=1)
    first = web.secrets(books.id)
    assert p.quickbooks.token_account(first["access_token"]) == "9130350"

    web.send(shop, an_order(450_001, 1001))
    assert [r.status for r in settled(web.hub)] == ["succeeded"]
    assert p.quickbooks.refresh_count == 0

    # ahead of expiry: refreshed before use (once), the rotated refresh token kept
    with web.hub.session() as s:
        s.execute(update(Connection).where(Connection.id == books.id)
                  .values(token_expires_at=utcnow() + timedelta(minutes=3)))
    web.send(shop, an_order(450_002, 1002))
    assert [r.status for r in settled(web.hub)] == ["succeeded"] * 2
    second = web.secrets(books.id)
    assert p.quickbooks.refresh_count == 1 and second["refresh_token"] != first["refresh_token"]
    assert web.connections("quickbooks")[0].token_expires_at - utcnow() > timedelta(minutes=55)

    # on a 401: refreshed once, however many workers need the token at the same moment
    p.quickbooks.expire_tokens()
    with web.hub.session() as s:
        s.execute(update(Connection).where(Connection.id == books.id)
                  .values(token_expires_at=utcnow() + timedelta(seconds=30)))
    clients: list[Any] = []
    threads = [threading.Thread(target=lambda: clients.append(Accounts(web.hub, merchant).quickbooks()))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.quickbooks.refresh_count == 2 and len(clients) == 4
    assert all(c.preferences() for c in clients) and p.quickbooks.refresh_count == 2

    # the refresh token expires at Intuit: the connection needs reconnecting and the run waits
    p.quickbooks.expire_tokens()
    with p.quickbooks.lock:
        p.quickbooks.refresh_tokens.clear()
    web.send(shop, an_order(450_003, 1003))
    waiting = wait_until(lambda: [r for r in settled_or_open(web.hub) if r.source_id == "450003"
                                  and r.status == "retrying"])
    assert waiting[0].error_kind == "auth" and waiting[0].reason.startswith("waiting:")
    [books] = web.connections("quickbooks")
    assert books.status == "needs_reconnect"
    connections_page = browser.get(f"{web.base}/console/connections", timeout=10).text
    link = re.search(rf'data-reconnect="{books.id}" href="([^"]+)"', connections_page).group(1)

    # Reconnect: the same company, new tokens, the waiting run resumes and succeeds
    page = browser.get(f"{web.base}{link.replace('&amp;', '&')}", timeout=15)
    assert page.status_code == 200 and "is connected" in page.text
    [books] = web.connections("quickbooks")
    assert books.status == "active" and web.secrets(books.id)["access_token"] != second["access_token"]
    runs = settled(web.hub)
    assert [r.status for r in runs] == ["succeeded"] * 3
    assert len(p.quickbooks.objects("9130350", "Invoice")) == 3
    with web.hub.session() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "connection.connected")).all()
    assert [(e.actor, e.detail["reconnected"]) for e in entries] == [("owner@books.example", False),
                                                                      ("owner@books.example", True)]


def settled_or_open(hub: Hub) -> list[SyncRun]:
    with hub.session() as s:
        return list(s.scalars(select(SyncRun).order_by(SyncRun.id)))


def test_quickbooks_refusals_save_nothing(web: Web) -> None:
    p = web.platforms
    merchant = web.merchant("Careful", "owner@careful.example")
    other = web.merchant("Other")
    p.quickbooks.add_company("5550001")
    p.quickbooks.add_company("5550002")
    browser = web.browser("owner@careful.example")

    anonymous = requests.get(f"{web.base}/connect/quickbooks", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and "/console/login" in anonymous.headers["Location"]
    assert browser.get(f"{web.base}/connect/quickbooks", params={"merchant": other}, timeout=10).status_code == 404

    def callback(**params: str) -> str:
        r = browser.get(f"{web.base}/connect/quickbooks", params=params, allow_redirects=False, timeout=10)
        assert r.status_code == 302
        q = query(r.headers["Location"])
        assert q["scope"] == "com.intuit.quickbooks.accounting" and q["client_id"] == QB_CLIENT[0]
        approved = requests.get(r.headers["Location"], allow_redirects=False, timeout=10)
        return approved.headers["Location"]

    genuine = query(callback())
    url = f"{web.base}/connect/quickbooks/callback"
    for params, words in ((dict(genuine, state="y" * 43), "state mismatch"),
                          ({k: v for k, v in genuine.items() if k != "state"}, "no state")):
        r = browser.get(url, params=params, timeout=10)
        assert r.status_code == 400 and words in r.text
    # the state was used up by the mismatching answer: the browser starts again
    genuine = query(callback())
    r = browser.get(url, params=dict(genuine, realmId="5550002"), timeout=10)   # a tampered company
    assert r.status_code == 400 and "does not open QuickBooks company 5550002" in r.text
    denied = query(callback())
    r = browser.get(url, params={"error": "access_denied", "state": denied["state"]}, timeout=10)
    assert r.status_code == 400 and "not granted" in r.text
    used = query(callback())
    r = browser.get(url, params=dict(used, code=genuine["code"]), timeout=10)   # a replayed code
    assert r.status_code == 400 and "refused the authorization code" in r.text
    assert web.connections("quickbooks") == []
    assert [s.status for s in web.states()] == ["issued", "failed", "failed", "failed"]   # the first: never answered

    ok = callback()
    assert browser.get(ok, timeout=10).status_code == 200
    assert browser.get(ok, allow_redirects=False, timeout=10).status_code == 400     # replayed callback
    [books] = web.connections("quickbooks")
    assert books.merchant_id == merchant and books.account == "5550001"
    assert p.quickbooks.refresh_count == 0


def test_disconnect_revokes_the_quickbooks_and_hubspot_grants(web: Web) -> None:
    p = web.platforms
    web.merchant("Leaving", "owner@leaving.example")
    p.quickbooks.add_company("7770001")
    browser = web.browser("owner@leaving.example")
    connect_quickbooks(web, browser)
    [books] = web.connections("quickbooks")
    refresh = web.secrets(books.id)["refresh_token"]
    connect_hubspot(web, browser, "7123")
    [crm] = web.connections("hubspot")
    crm_refresh = web.secrets(crm.id)["refresh_token"]

    assert disconnect(web.hub, books.id).status == "disconnected"
    assert p.quickbooks.refresh_tokens[refresh].grant.revoked
    assert disconnect(web.hub, crm.id).status == "disconnected"
    assert crm_refresh not in p.hubspot.refresh_tokens


# -- HubSpot ---------------------------------------------------------------------------------------
def connect_hubspot(web: Web, browser: requests.Session, hub_id: str, **params: Any) -> requests.Response:
    r = browser.get(f"{web.base}/connect/hubspot", params=params, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    location = r.headers["Location"]
    assert location.startswith("https://app.hubspot.com/oauth/authorize?")
    q = query(location)
    assert q["client_id"] == HS_CLIENT[0] and "crm.objects.contacts.write" in q["scope"].split()
    assert q["redirect_uri"] == f"{web.base}/connect/hubspot/callback"
    code = web.platforms.hubspot.issue_auth_code(hub_id, HS_CLIENT[0])   # the user approves at HubSpot
    return browser.get(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", timeout=10)


def test_hubspot_connect_refresh_and_needs_reconnect(web: Web) -> None:
    p = web.platforms
    merchant = web.merchant("Crm", "owner@crm.example")
    browser = web.browser("owner@crm.example")
    page = connect_hubspot(web, browser, "4242")
    assert page.status_code == 200 and "HubSpot account 4242 is connected" in page.text
    [crm] = web.connections("hubspot")
    assert (crm.merchant_id, crm.account) == (merchant, "4242")
    assert timedelta(minutes=25) < crm.token_expires_at - utcnow() <= timedelta(minutes=30)

    # a refused access token: refreshed once with the stored refresh token, then the call goes through
    p.hubspot.expire_tokens()
    client = Accounts(web.hub, merchant).hubspot()
    [contact] = client.upsert_contacts([{"email": "ada@example.com", "firstname": "Ada"}])
    assert contact.created and p.hubspot.contacts("4242")

    # replayed callback and a made-up code: refused, nothing changes
    r = browser.get(f"{web.base}/connect/hubspot/callback", params={"code": "nope", "state": "nope"}, timeout=10)
    assert r.status_code == 400
    r = browser.get(f"{web.base}/connect/hubspot", allow_redirects=False, timeout=10)
    state = query(r.headers["Location"])["state"]
    r = browser.get(f"{web.base}/connect/hubspot/callback", params={"code": "made-up", "state": state}, timeout=10)
    assert r.status_code == 400 and "refused the authorization code" in r.text
    assert len(web.connections("hubspot")) == 1

    # the refresh token is gone at HubSpot: needs reconnect; Reconnect renews the same account
    p.hubspot.revoke_refresh_token(web.secrets(crm.id)["refresh_token"])
    p.hubspot.expire_tokens()
    with pytest.raises(NeedsReconnect):
        Accounts(web.hub, merchant).hubspot().upsert_contacts([{"email": "bob@example.com"}])
    assert web.connections("hubspot")[0].status == "needs_reconnect"
    assert connect_hubspot(web, browser, "9999", connection=crm.id).status_code == 400   # another account
    page = connect_hubspot(web, browser, "4242", connection=crm.id)
    assert page.status_code == 200 and web.connections("hubspot")[0].status == "active"
    assert Accounts(web.hub, merchant).hubspot().upsert_contacts([{"email": "bob@example.com"}])
