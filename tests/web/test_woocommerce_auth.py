"""WooCommerce app authentication end to end, over real HTTP: ``o2c connect woocommerce-link`` → the link →
the store's approval (the simulator's key exchange) → the callback connects the store → the return page;
and every way it must refuse: a reused or expired link, a forged callback, read-only keys, a denial."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select, update

import cli.connect_links  # noqa: F401 - registers ``o2c connect woocommerce-link``
from cli.main import main as o2c
from demo.simulators.woocommerce import AuthorizationError, WooCommerceSimulator
from hub.auth_models import PendingAuthorization
from hub.models import Connection, utcnow
from hub.runtime import Hub
from tests.conftest import Shop
from tests.helpers import served, settled
from web import woocommerce_auth
from web.app import create_app

LINES = [{"name": "Beans 1 kg", "sku": "BEANS-1", "quantity": 2, "price": "18.50"}]
BUYER = {"first_name": "Ida", "last_name": "Noddack", "email": "ida@example.com", "country": "US"}


@dataclass
class Exchange:
    hub: Hub
    base: str
    shop: Shop
    woo: WooCommerceSimulator

    @property
    def store(self) -> str:
        return self.woo.store_url("cafe")

    def link(self, *extra: str) -> str:
        result = CliRunner().invoke(o2c, ["connect", "woocommerce-link", str(self.shop.merchant_id), "--url",
                                          self.store, *extra])
        assert result.exit_code == 0, result.output
        return result.output.split()[-1]

    def start(self, link: str) -> str:
        r = requests.get(link, allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text
        return r.headers["Location"]

    def connections(self) -> list[Connection]:
        with self.hub.session() as s:
            return list(s.scalars(select(Connection).where(Connection.platform == "woocommerce")))

    def pending(self) -> list[PendingAuthorization]:
        with self.hub.session() as s:
            return list(s.scalars(select(PendingAuthorization).order_by(PendingAuthorization.id)))


@pytest.fixture
def exchange(make_hub, shop_factory, platforms, monkeypatch) -> Exchange:  # noqa: ANN001
    """A merchant with QuickBooks and HubSpot, a WooCommerce store not connected yet, and the hub served
    over HTTP with ``O2C_PUBLIC_URL`` pointing at it."""
    hub = make_hub()
    shop = shop_factory(hub)
    platforms.woocommerce.add_store("cafe")
    app = create_app(hub)
    if woocommerce_auth.bp.name not in app.blueprints:  # until hub/app.py registers it
        app.register_blueprint(woocommerce_auth.bp)
    with served(app) as base:
        monkeypatch.setenv("O2C_PUBLIC_URL", base)
        hub.settings = replace(hub.settings, public_url=base)
        yield Exchange(hub, base, shop, platforms.woocommerce)


def _params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_link_approval_connects_the_store_and_its_orders_reach_the_books(exchange, platforms) -> None:  # noqa: ANN001
    ex = exchange
    link = ex.link()
    assert link.startswith(f"{ex.base}/connect/woocommerce/start?token=")
    [pending] = ex.pending()
    assert _params(link)["token"] not in pending.token_hash and len(pending.token_hash) == 64  # stored hashed

    authorize = ex.start(link)
    assert authorize.split("?")[0] == f"{ex.store}/wc-auth/v1/authorize"
    params = _params(authorize)
    assert {k: v for k, v in params.items() if k != "user_id"} == {
        "app_name": "O2C Hub", "scope": "read_write", "return_url": f"{ex.base}/connect/woocommerce/return",
        "callback_url": f"{ex.base}/connect/woocommerce/callback"}
    assert len(params["user_id"]) >= 40

    back = ex.woo.approve_auth("cafe", authorize)   # the merchant clicks Approve
    assert back.startswith(f"{ex.base}/connect/woocommerce/return?") and _params(back)["success"] == "1"
    [callback] = [d for d in ex.woo.deliveries if d.kind == "callback"]
    keys = json.loads(callback.body)
    [conn] = ex.connections()
    assert (conn.merchant_id, conn.account, conn.status) == (ex.shop.merchant_id, ex.store, "active")
    assert keys["consumer_secret"] not in conn.secrets and keys["consumer_key"] not in conn.secrets
    stored = ex.hub.secrets.decrypt(conn.secrets)
    assert (stored["consumer_key"], stored["consumer_secret"]) == (keys["consumer_key"], keys["consumer_secret"])
    hooks = ex.woo.webhooks("cafe")
    assert sorted(h["topic"] for h in hooks) == ["order.created", "order.deleted", "order.restored", "order.updated"]
    assert {h["delivery_url"] for h in hooks} == {f"{ex.base}/webhooks/woocommerce/{conn.id}"}
    assert all(h["ping_error"] is None for h in hooks)
    [done] = ex.pending()
    assert (done.status, done.connection_id, done.reason) == ("completed", conn.id, None)

    page = requests.get(back, timeout=10)
    assert page.status_code == 200 and "Store connected" in page.text and f"connection {conn.id}" in page.text

    order = ex.woo.add_order("cafe", lines=LINES, billing=BUYER, status="processing")  # signed order.created
    [run] = settled(ex.hub)
    assert run.status == "succeeded", run.reason
    assert (run.source_platform, run.source_id) == ("woocommerce", str(order["id"]))
    [invoice] = platforms.quickbooks.objects(ex.shop.realm, "Invoice")
    assert invoice["DocNumber"] == order["number"] and Decimal(str(invoice["TotalAmt"])) == Decimal(order["total"])


def test_a_link_works_once_and_not_after_it_expires(exchange) -> None:  # noqa: ANN001
    ex = exchange
    link = ex.link()
    ex.start(link)
    again = requests.get(link, allow_redirects=False, timeout=10)
    assert again.status_code == 410 and "already used" in again.text

    late = ex.link("--expires-in", "60")
    with ex.hub.session() as s:
        s.execute(update(PendingAuthorization).where(PendingAuthorization.used_at.is_(None))
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = requests.get(late, allow_redirects=False, timeout=10)
    assert expired.status_code == 410 and "expired" in expired.text

    forged = requests.get(f"{ex.base}/connect/woocommerce/start?token=not-a-token", allow_redirects=False,
                          timeout=10)
    assert forged.status_code == 400 and "not valid" in forged.text
    bad_url = CliRunner().invoke(o2c, ["connect", "woocommerce-link", str(ex.shop.merchant_id), "--url", "shop"])
    nobody = CliRunner().invoke(o2c, ["connect", "woocommerce-link", "nobody", "--url", ex.store])
    assert bad_url.exit_code == 2 and nobody.exit_code == 1 and "no merchant" in nobody.output
    assert ex.connections() == []


def test_a_callback_with_a_wrong_user_id_is_refused_and_saves_nothing(exchange) -> None:  # noqa: ANN001
    ex = exchange
    authorize = ex.start(ex.link())
    key, secret = ex.woo.add_key("cafe")
    forged = {"key_id": 9, "user_id": "guessed-state", "consumer_key": key, "consumer_secret": secret,
              "key_permissions": "read_write"}
    r = requests.post(f"{ex.base}/connect/woocommerce/callback", json=forged, timeout=10)
    assert r.status_code == 400 and "unknown authorisation" in r.text
    assert ex.connections() == [] and ex.woo.webhooks("cafe") == []
    # wrong shapes are refused before anything is looked up
    url = f"{ex.base}/connect/woocommerce/callback"
    assert requests.post(url, data=urlencode(forged), timeout=10,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    assert requests.post(url, data=b"[1, 2]", headers={"Content-Type": "application/json"},
                         timeout=10).status_code == 400
    huge = json.dumps({**forged, "pad": "x" * (70 * 1024)})
    assert requests.post(url, data=huge, headers={"Content-Type": "application/json"}, timeout=10).status_code == 413
    # the genuine exchange was not spent by the forgeries
    [pending] = ex.pending()
    assert pending.status == "started"
    ex.woo.approve_auth("cafe", authorize)
    assert len(ex.connections()) == 1


def test_read_only_keys_are_refused_and_the_return_page_says_why(exchange) -> None:  # noqa: ANN001
    ex = exchange
    params = _params(ex.start(ex.link()))
    with pytest.raises(AuthorizationError):  # the callback answered 400: the store deletes the key
        ex.woo.approve_auth("cafe", {**params, "scope": "read"})
    assert ex.woo.stores["cafe"].keys == {}
    assert ex.connections() == [] and ex.woo.webhooks("cafe") == []
    [pending] = ex.pending()
    assert pending.status == "failed" and "read_write" in pending.reason
    page = requests.get(f"{ex.base}/connect/woocommerce/return?"
                        f"{urlencode({'success': '1', 'user_id': params['user_id']})}", timeout=10)
    assert page.status_code == 200 and "Not connected" in page.text and "read_write" in page.text


def test_an_answer_after_the_state_expired_is_refused(exchange) -> None:  # noqa: ANN001
    ex = exchange
    authorize = ex.start(ex.link())
    with ex.hub.session() as s:
        s.execute(update(PendingAuthorization).values(state_expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(AuthorizationError):
        ex.woo.approve_auth("cafe", authorize)
    assert ex.connections() == []
    assert "15-minute" in (ex.pending()[0].reason or "")


def test_the_merchant_denies_access(exchange) -> None:  # noqa: ANN001
    ex = exchange
    back = ex.woo.deny_auth("cafe", ex.start(ex.link()))
    assert _params(back)["success"] == "0"
    page = requests.get(back, timeout=10)
    assert page.status_code == 200 and "denied" in page.text
    assert [p.status for p in ex.pending()] == ["denied"]
    assert ex.connections() == [] and ex.woo.stores["cafe"].keys == {}
    unknown = requests.get(f"{ex.base}/connect/woocommerce/return?success=1&user_id=nope", timeout=10)
    assert unknown.status_code == 400


def test_the_keys_never_reach_the_logs(exchange, caplog) -> None:  # noqa: ANN001
    ex = exchange
    caplog.set_level(logging.DEBUG)
    ex.woo.approve_auth("cafe", ex.start(ex.link()))                   # connected
    params = _params(ex.start(ex.link()))
    with pytest.raises(AuthorizationError):
        ex.woo.approve_auth("cafe", {**params, "scope": "read"})       # refused
    callbacks = [d for d in ex.woo.deliveries if d.kind == "callback"]
    assert len(callbacks) == 2
    assert any(r.name == "o2c.woocommerce_auth" and "connected" in r.getMessage() for r in caplog.records)
    assert any(r.name == "o2c.woocommerce_auth" and "refused" in r.getMessage() for r in caplog.records)
    for delivery in callbacks:
        keys = json.loads(delivery.body)
        assert delivery.body.decode() not in caplog.text
        assert keys["consumer_secret"] not in caplog.text
        # over plain http the store's API is called with OAuth 1.0a, whose query string names the consumer
        # key (urllib3's DEBUG request lines and the simulated store's access log show it); nothing else may
        # (over https it goes in a Basic auth header)
        oauth = f"oauth_consumer_key={keys['consumer_key']}"
        assert [r.getMessage() for r in caplog.records
                if keys["consumer_key"] in r.getMessage().replace(oauth, "")] == []
