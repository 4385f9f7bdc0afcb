"""The WooCommerce simulator over real HTTP, driven through the ``woocommerce`` SDK (OAuth 1.0a on http)."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from woocommerce import API
from woocommerce.oauth import OAuth

from demo.simulators.woocommerce import AuthorizationError, WooCommerceSimulator, oauth_signature, php_query, sign
from demo.simulators.woocommerce_orders import TAX_PROFILES, build_order, random_order, render_order

STORE = "acme"
MONEY = re.compile(r"^-?\d+\.\d{2}$")


class Receiver:
    """A local endpoint recording what it is sent; ``statuses`` maps a path to the status to answer."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses: dict[str, int] = {}
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _app(self, environ: dict, start_response: Any) -> list[bytes]:
        req = Request(environ)
        self.received.append((req.path, dict(req.headers), req.get_data()))
        status = self.statuses.get(req.path, 200)
        start_response(f"{status} STATUS", [("Content-Type", "text/plain")])
        return [b"ok"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def at(self, path: str) -> list[tuple[str, dict[str, str], bytes]]:
        return [r for r in self.received if r[0] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server():
    s = WooCommerceSimulator(delivery_timeout=5).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def _receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def receiver(_receiver):
    _receiver.received.clear()
    _receiver.statuses.clear()
    return _receiver


@pytest.fixture
def sim(server):
    server.reset()
    server.add_store(STORE)
    return server


def client(sim: WooCommerceSimulator, key: tuple[str, str] | None = None, store: str = STORE) -> API:
    ck, cs = key or sim.add_key(store)
    return API(url=sim.store_url(store), consumer_key=ck, consumer_secret=cs, version="wc/v3", timeout=5)


def call(api: API, method: str, endpoint: str, data: Any = None, **params: Any) -> requests.Response:
    with getattr(api, method)(endpoint, *([data] if data is not None else []), params=params) as r:
        r.content  # noqa: B018 - read the body before the connection closes
        return r


def order_spec(**kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"lines": [{"name": "Café au lait", "sku": "COF-1", "quantity": 2, "price": "10.00"}],
                            "billing": {"first_name": "Zoë", "last_name": "Müller", "email": "zoe@example.com"}}
    spec.update(kw)
    return spec


# -- authentication ----------------------------------------------------------------------------------
def test_sdk_oauth_is_accepted_and_a_wrong_secret_is_not(sim):
    sim.add_order(STORE, **order_spec())
    ck, _ = key = sim.add_key(STORE)
    ok = call(client(sim, key), "get", "orders")
    assert ok.status_code == 200 and len(ok.json()) == 1
    assert "oauth_signature" in ok.request.url and "Authorization" not in ok.request.headers
    bad = call(client(sim, (ck, "cs_wrong")), "get", "orders")
    assert bad.status_code == 401
    assert bad.json() == {"code": "woocommerce_rest_authentication_error",
                          "message": "Invalid signature - provided signature does not match.", "data": {"status": 401}}
    unknown = call(client(sim, ("ck_nobody", "cs_x")), "get", "orders")
    assert unknown.json()["message"] == "Consumer key is invalid."
    other = sim.add_store("other")
    assert other.url.endswith("/stores/other")
    assert call(client(sim, key, store="other"), "get", "orders").json()["message"] == "Consumer key is invalid."


def test_replayed_nonce_and_stale_timestamp_are_rejected(sim):
    ck, cs = sim.add_key(STORE)
    url = OAuth(url=f"{sim.api_url(STORE)}/orders?per_page=5", consumer_key=ck, consumer_secret=cs,
                version="wc/v3", method="GET").get_oauth_url()
    with requests.get(url, timeout=5) as first, requests.get(url, timeout=5) as again:
        assert first.status_code == 200
        assert again.status_code == 401
        assert again.json()["message"] == "Invalid nonce - nonce has already been used."
    stale = OAuth(url=f"{sim.api_url(STORE)}/orders", consumer_key=ck, consumer_secret=cs, version="wc/v3",
                  method="GET", oauth_timestamp=int(time.time()) - 3600).get_oauth_url()
    with requests.get(stale, timeout=5) as r:
        assert r.json()["message"] == "Invalid timestamp."
    partial = f"{sim.api_url(STORE)}/orders?oauth_consumer_key={ck}"
    with requests.get(partial, timeout=5) as r:
        assert r.status_code == 401 and r.json()["code"] == "woocommerce_rest_authentication_missing_parameter"


def test_signature_base_string_follows_woocommerce():
    params = php_query("b=2&a%5B%5D=x&a%5B%5D=y&oauth_signature=zzz")
    assert params == {"b": "2", "a": {"0": "x", "1": "y"}, "oauth_signature": "zzz"}
    base = "GET&http%3A%2F%2Fh%2Fwp-json%2Fwc%2Fv3%2Forders&a%255B0%255D%3Dx%26a%255B1%255D%3Dy%26b%3D2"
    import base64
    import hashlib
    import hmac
    want = base64.b64encode(hmac.new(b"sec&", base.encode(), hashlib.sha256).digest()).decode()
    assert oauth_signature("GET", "http://h/wp-json/wc/v3/orders", params, "sec", "HMAC-SHA256") == want


def test_basic_auth_query_keys_read_only_keys_and_no_credentials(sim):
    order = sim.add_order(STORE, **order_spec())
    ck, cs = sim.add_key(STORE)
    url = f"{sim.api_url(STORE)}/orders"
    with requests.get(url, auth=(ck, cs), timeout=5) as r:
        assert r.status_code == 200 and r.json()[0]["id"] == order["id"]
    with requests.get(url, params={"consumer_key": ck, "consumer_secret": cs}, timeout=5) as r:
        assert r.status_code == 200
    with requests.get(url, auth=(ck, "cs_bad"), timeout=5) as r:
        assert r.status_code == 401 and r.json()["message"] == "Consumer secret is invalid."
    with requests.get(url, timeout=5) as r:
        assert r.status_code == 401 and r.json()["code"] == "woocommerce_rest_cannot_view"
    ro = client(sim, sim.add_key(STORE, permissions="read"))
    assert call(ro, "get", f"orders/{order['id']}").status_code == 200
    denied = call(ro, "put", f"orders/{order['id']}", {"status": "completed"})
    assert denied.status_code == 401
    assert denied.json()["message"] == "The API key provided does not have write permissions."
    assert sim.get_order(STORE, order["id"])["status"] == "processing"


# -- orders --------------------------------------------------------------------------------------------
def test_pagination_headers_across_three_pages(sim):
    start = datetime(2024, 3, 1, tzinfo=UTC)
    for i in range(25):
        sim.add_order(STORE, **order_spec(created_at=start + timedelta(hours=i)))
    api = client(sim)
    seen, page = [], 1
    while True:
        r = call(api, "get", "orders", per_page=10, page=page)
        assert r.headers["X-WP-Total"] == "25" and r.headers["X-WP-TotalPages"] == "3"
        assert r.links.get("prev") is None if page == 1 else f"page={page - 1}" in r.links["prev"]["url"]
        seen += [o["id"] for o in r.json()]
        if "next" not in r.links:
            break
        assert f"page={page + 1}" in r.links["next"]["url"]
        page += 1
    assert page == 3 and len(seen) == 25 == len(set(seen))
    assert seen == sorted(seen, reverse=True)        # newest first
    assert call(api, "get", "orders", per_page=10, page=4).json() == []
    too_many = call(api, "get", "orders", per_page=101)
    assert too_many.status_code == 400 and too_many.json()["code"] == "rest_invalid_param"
    assert too_many.json()["data"]["params"] == {
        "per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"}


def test_after_and_modified_after_filters(sim):
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ids = [sim.add_order(STORE, **order_spec(created_at=start + timedelta(days=i)))["id"] for i in range(4)]
    sim.clock = lambda: datetime(2024, 6, 1, 9, 30, tzinfo=UTC)
    try:
        sim.update_order(STORE, ids[1], customer_note="ring twice")
    finally:
        sim.clock = lambda: datetime.now(UTC)
    api = client(sim)
    after = call(api, "get", "orders", after="2024-05-02T12:00:00", orderby="id", order="asc").json()
    assert [o["id"] for o in after] == ids[2:]                  # strictly after
    modified = call(api, "get", "orders", modified_after="2024-05-20T00:00:00").json()
    assert [o["id"] for o in modified] == [ids[1]] and modified[0]["date_modified_gmt"] == "2024-06-01T09:30:00"
    bad = call(api, "get", "orders", after="yesterday")
    assert bad.status_code == 400 and bad.json()["data"]["params"]["after"] == "Invalid date."
    statuses = call(api, "get", "orders", status="completed,on-hold").json()
    assert statuses == []


def test_status_change_set_paid_and_notes(sim):
    api = client(sim)
    pending = sim.add_order(STORE, **order_spec(status="pending"))
    assert pending["date_paid"] is None and pending["needs_payment"] is True
    paid = call(api, "put", f"orders/{pending['id']}", {"set_paid": True, "transaction_id": "ch_123"}).json()
    assert paid["status"] == "processing" and paid["date_paid"] and paid["transaction_id"] == "ch_123"
    done = call(api, "put", f"orders/{pending['id']}", {"status": "completed"}).json()
    assert done["status"] == "completed" and done["date_completed"]
    bad = call(api, "put", f"orders/{pending['id']}", {"status": "shipped"})
    assert bad.status_code == 400 and bad.json()["data"]["params"]["status"].startswith("status is not one of pending")
    assert call(api, "put", "orders/999", {"status": "completed"}).status_code == 400
    assert call(api, "get", "orders/999").json()["code"] == "woocommerce_rest_shop_order_invalid_id"
    note = call(api, "post", f"orders/{pending['id']}/notes", {"note": "Packed — 2 boxes", "customer_note": True})
    assert note.status_code == 201 and note.json()["customer_note"] is True
    notes = call(api, "get", f"orders/{pending['id']}/notes").json()
    assert [n["note"] for n in notes] == ["Packed — 2 boxes", "Order status changed from Processing to Completed.",
                                          "Order status changed from Pending payment to Processing."]
    assert call(api, "post", f"orders/{pending['id']}/notes", {"x": 1}).json()["code"] == "rest_missing_callback_param"


def test_refunds_listing_and_full_refund(sim, receiver):
    api = client(sim)
    order = sim.add_order(STORE, **order_spec())
    call(api, "post", "webhooks", {"topic": "order.updated", "delivery_url": f"{receiver.url}/updated"})
    sim.add_refund(STORE, order["id"], "5.00", reason="Dented can")
    assert len(receiver.at("/updated")) == 2                # ping + one order.updated
    sim.add_refund(STORE, order["id"], Decimal(order["total"]) - 5)
    refunds = call(api, "get", f"orders/{order['id']}/refunds").json()
    assert [r["amount"] for r in refunds] == [f"{Decimal(order['total']) - 5:.2f}", "5.00"]
    after = sim.get_order(STORE, order["id"])
    assert after["status"] == "refunded" and after["refunds"][-1] == {"id": refunds[-1]["id"], "reason": "Dented can",
                                                                      "total": "-5.00"}
    with pytest.raises(ValueError):
        sim.add_refund(STORE, order["id"], "0.01")


# -- webhooks ------------------------------------------------------------------------------------------
def test_webhook_creation_ping_and_signed_delivery(sim, receiver):
    api = client(sim)
    created = call(api, "post", "webhooks", {"name": "Hub", "topic": "order.created",
                                             "delivery_url": f"{receiver.url}/wc", "secret": "s3cr3t"})
    assert created.status_code == 201 and created.json()["status"] == "active"
    assert "secret" not in created.json() and created.json()["hooks"] == ["woocommerce_new_order"]
    (path, headers, body), = receiver.at("/wc")
    assert body == f"webhook_id={created.json()['id']}".encode() and "X-Wc-Webhook-Signature" not in headers
    order = sim.add_order(STORE, **order_spec())
    _, headers, body = receiver.at("/wc")[-1]
    assert headers["X-Wc-Webhook-Signature"] == sign(body, "s3cr3t")
    assert headers["X-Wc-Webhook-Topic"] == "order.created" and headers["X-Wc-Webhook-Event"] == "created"
    assert headers["X-Wc-Webhook-Resource"] == "order" and headers["X-Wc-Webhook-Source"] == sim.store_url(STORE) + "/"
    assert headers["X-Wc-Webhook-Id"] == str(created.json()["id"])
    assert json.loads(body) == order and b"\\/" in body       # PHP-style JSON: the raw body is what is signed
    delivery = sim.deliveries[-1]
    assert delivery.status == 200 and delivery.delivery_id == headers["X-Wc-Webhook-Delivery-Id"]
    duplicate = sim.redeliver(delivery)
    assert duplicate.delivery_id == delivery.delivery_id and receiver.at("/wc")[-1][2] == body
    listed = call(api, "get", "webhooks").json()
    assert [w["id"] for w in listed] == [created.json()["id"]]
    assert call(api, "delete", f"webhooks/{listed[0]['id']}").status_code == 501
    assert call(api, "delete", f"webhooks/{listed[0]['id']}", force="true").status_code == 200
    assert call(api, "get", "webhooks").json() == []


def test_webhook_is_disabled_after_more_than_five_failures(sim, receiver):
    receiver.statuses["/down"] = 500
    api = client(sim)
    hook = call(api, "post", "webhooks", {"topic": "order.updated", "delivery_url": f"{receiver.url}/down"}).json()
    assert sim.webhooks(STORE)[0]["ping_error"] == "Error: Delivery URL returned response code: 500"
    order = sim.add_order(STORE, **order_spec())
    for n in range(1, 7):
        sim.update_order(STORE, order["id"], customer_note=f"try {n}")
        assert sim.webhooks(STORE)[0]["status"] == "active" and sim.webhooks(STORE)[0]["failure_count"] == n
    sim.update_order(STORE, order["id"], customer_note="try 7")
    assert sim.webhooks(STORE)[0]["status"] == "disabled"
    sim.update_order(STORE, order["id"], customer_note="try 8")
    assert len(receiver.at("/down")) == 1 + 7                 # ping + 7 deliveries, none after disabling
    again = call(api, "put", f"webhooks/{hook['id']}", {"status": "active"}).json()
    assert again["status"] == "active" and sim.webhooks(STORE)[0]["failure_count"] == 6
    sim.update_order(STORE, order["id"], customer_note="try 9")
    assert sim.webhooks(STORE)[0]["status"] == "disabled"    # the count was kept: one more failure disables


def test_deleted_restored_and_forced_delete(sim, receiver):
    api = client(sim)
    for topic in ("order.deleted", "order.restored"):
        call(api, "post", "webhooks", {"topic": topic, "delivery_url": f"{receiver.url}/{topic}"})
    order = sim.add_order(STORE, **order_spec(status="completed"))
    trashed = call(api, "delete", f"orders/{order['id']}")
    assert trashed.status_code == 200 and trashed.json()["status"] == "completed"
    assert json.loads(receiver.at("/order.deleted")[-1][2]) == {"id": order["id"]}
    assert call(api, "get", f"orders/{order['id']}").json()["status"] == "trash"
    assert call(api, "get", "orders").json() == []
    assert [o["id"] for o in call(api, "get", "orders", status="trash").json()] == [order["id"]]
    assert call(api, "delete", f"orders/{order['id']}").status_code == 410
    restored = sim.restore_order(STORE, order["id"])
    assert restored["status"] == "completed"
    assert json.loads(receiver.at("/order.restored")[-1][2])["status"] == "completed"
    sim.delete_order(STORE, order["id"], force=True)
    assert len(receiver.at("/order.deleted")) == 2 and sim.get_order(STORE, order["id"]) is None


def test_checkout_creation_and_async_queue_coalesce(sim, receiver):
    api = client(sim)
    for topic in ("order.created", "order.updated"):
        call(api, "post", "webhooks", {"topic": topic, "delivery_url": f"{receiver.url}/{topic}"})
    order = sim.add_order(STORE, checkout=True, **order_spec(payment_method="stripe"))
    assert json.loads(receiver.at("/order.created")[-1][2])["status"] == "pending"
    assert json.loads(receiver.at("/order.updated")[-1][2])["status"] == "processing"
    sim.async_webhooks = True
    sim.update_order(STORE, order["id"], status="completed")
    sim.update_order(STORE, order["id"], customer_note="leave at door")
    assert len(receiver.at("/order.updated")) == 2
    sent = sim.run_webhook_queue()
    assert len(sent) == 1 and json.loads(sent[0].body)["customer_note"] == "leave at door"


# -- app key exchange ------------------------------------------------------------------------------------
def auth_params(receiver: Receiver, **kw: str) -> dict[str, str]:
    return {"app_name": "O2C Hub", "scope": "read_write", "user_id": "merchant-42",
            "return_url": f"{receiver.url}/return?from=wc", "callback_url": f"{receiver.url}/callback", **kw}


def test_app_authentication_posts_keys_and_redirects(sim, receiver):
    redirect = sim.approve_auth(STORE, auth_params(receiver))
    assert parse_qs(urlsplit(redirect).query) == {"from": ["wc"], "success": ["1"], "user_id": ["merchant-42"]}
    (_, headers, body), = receiver.at("/callback")
    keys = json.loads(body)
    assert headers["Content-Type"].startswith("application/json")
    assert keys["user_id"] == "merchant-42" and keys["key_permissions"] == "read_write"
    assert keys["consumer_key"].startswith("ck_") and keys["consumer_secret"].startswith("cs_") and keys["key_id"]
    assert call(client(sim, (keys["consumer_key"], keys["consumer_secret"])), "get", "orders").status_code == 200
    deny = sim.deny_auth(STORE, auth_params(receiver))
    assert parse_qs(urlsplit(deny).query)["success"] == ["0"]
    receiver.statuses["/callback"] = 500
    with pytest.raises(AuthorizationError, match="unable to send the consumer data"):
        sim.approve_auth(STORE, auth_params(receiver))
    assert len(sim.stores[STORE].keys) == 1
    with pytest.raises(AuthorizationError, match="Invalid scope"):
        sim.approve_auth(STORE, auth_params(receiver, scope="admin"))


def test_app_authentication_over_http(sim, receiver):
    url = f"{sim.store_url(STORE)}/wc-auth/v1/authorize"
    with requests.get(url, params=auth_params(receiver), allow_redirects=False, timeout=5) as page:
        assert page.status_code == 200 and "Approve" in page.text
        approve = re.search(r'wc-auth-approve" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    with requests.get(approve, allow_redirects=False, timeout=5) as granted:
        assert granted.status_code == 302 and "success=1" in granted.headers["Location"]
    sim.auto_approve, sim.require_https_callback = True, True
    with requests.get(url, params=auth_params(receiver), allow_redirects=False, timeout=5) as refused:
        assert refused.status_code == 401 and "The callback_url needs to be over SSL" in refused.text
    with requests.get(url, params=auth_params(receiver, callback_url="hub.example/cb"), allow_redirects=False,
                      timeout=5) as r:
        assert r.status_code == 401            # https://hub.example/cb is assumed and cannot be reached


# -- order builder ------------------------------------------------------------------------------------
def check_totals(o: dict[str, Any]) -> None:
    D = Decimal
    for key in ("discount_total", "discount_tax", "shipping_total", "shipping_tax", "cart_tax", "total", "total_tax"):
        assert MONEY.match(o[key]), (key, o[key])
    lines, fees, ships = o["line_items"], o["fee_lines"], o["shipping_lines"]
    assert D(o["total"]) == sum((D(x["total"]) + D(x["total_tax"]) for x in [*lines, *fees, *ships]), D(0))
    assert D(o["total_tax"]) == D(o["cart_tax"]) + D(o["shipping_tax"])
    assert D(o["cart_tax"]) == sum((D(t["tax_total"]) for t in o["tax_lines"]), D(0))
    assert D(o["shipping_tax"]) == sum((D(t["shipping_tax_total"]) for t in o["tax_lines"]), D(0))
    assert D(o["shipping_total"]) == sum((D(s["total"]) for s in ships), D(0))
    assert D(o["discount_total"]) == sum((D(x["subtotal"]) - D(x["total"]) for x in lines), D(0))
    assert D(o["discount_tax"]) == sum((D(x["subtotal_tax"]) - D(x["total_tax"]) for x in lines), D(0))
    if o["coupon_lines"]:
        assert D(o["discount_total"]) == sum(D(c["discount"]) for c in o["coupon_lines"])
        assert D(o["discount_tax"]) == sum(D(c["discount_tax"]) for c in o["coupon_lines"])
    for x in lines:
        assert D(x["total_tax"]) == sum((D(t["total"]) for t in x["taxes"]), D(0))
        assert D(x["subtotal_tax"]) == sum((D(t["subtotal"]) for t in x["taxes"]), D(0))
        assert D(0) <= D(x["total"]) <= D(x["subtotal"])
    assert sum(-D(r["total"]) for r in o["refunds"]) <= D(o["total"])


def test_builder_totals_are_consistent_over_200_random_orders():
    rng = random.Random(20240501)
    seen: dict[str, bool] = {}
    for i in range(1, 201):
        o = render_order(random_order(rng, i), api_url="http://s/wp-json/wc/v3", store_url="http://s")
        check_totals(o)
        seen["inclusive"] = seen.get("inclusive") or o["prices_include_tax"]
        seen["guest without e-mail"] = seen.get("guest without e-mail") or (
            o["customer_id"] == 0 and o["billing"]["email"] == "")
        seen["coupons"] = seen.get("coupons") or len(o["coupon_lines"]) > 1
        seen["negative fee"] = seen.get("negative fee") or any(f["total"].startswith("-") for f in o["fee_lines"])
        seen["free shipping"] = seen.get("free shipping") or any(
            s["method_id"] == "free_shipping" for s in o["shipping_lines"])
        seen["many lines"] = seen.get("many lines") or len(o["line_items"]) >= 30
        seen["zero-priced line"] = seen.get("zero-priced line") or any(x["total"] == "0.00" for x in o["line_items"])
        seen["foreign currency"] = seen.get("foreign currency") or o["currency"] not in ("USD",)
        seen["several rates"] = seen.get("several rates") or len(o["tax_lines"]) > 1
        seen["non-ASCII"] = seen.get("non-ASCII") or not o["billing"]["last_name"].isascii()
    assert all(seen.values()) and len(seen) == 10, seen


def test_builder_matches_woocommerce_arithmetic():
    vat = build_order(lines=[{"name": "Tea", "quantity": 3, "price": "9.99"}], tax_rates=TAX_PROFILES["uk-vat"],
                      prices_include_tax=True, coupons=[{"code": "TEN", "type": "percent", "amount": "10"}])
    o = render_order(vat, api_url="u", store_url="s")
    line = o["line_items"][0]
    assert (line["subtotal"], line["subtotal_tax"]) == ("24.97", "5.00")     # 29.97 with 20 % VAT inside
    assert (line["total"], line["total_tax"], o["total"]) == ("22.47", "4.50", "26.97")   # 10 % off 29.97 = 3.00
    assert line["taxes"] == [{"id": 3, "total": "4.5", "subtotal": "5"}]
    assert line["price"] == 22.47 / 3 == 7.489999999999999            # a float, as PHP divides
    compound = render_order(build_order(lines=[{"name": "Lamp", "quantity": 1, "price": "100.00"}],
                                        tax_rates=TAX_PROFILES["compound"]), api_url="u", store_url="s")
    assert [t["tax_total"] for t in compound["tax_lines"]] == ["10.00", "2.75"] and compound["total"] == "112.75"
    cart = render_order(build_order(lines=[{"name": "A", "quantity": 3, "price": "1.00"},
                                           {"name": "Free", "quantity": 1, "price": "0"}],
                                    coupons=[{"code": "X", "type": "fixed_cart", "amount": "1.00"}], calc_taxes=False),
                        api_url="u", store_url="s")
    assert [x["total"] for x in cart["line_items"]] == ["2.00", "0.00"] and cart["discount_total"] == "1.00"
    guest = build_order(lines=[{"name": "B", "quantity": 1, "price": "5"}], billing={"first_name": "李"})
    assert guest.customer_id == 0 and guest.billing["email"] == ""
    with pytest.raises(ValueError):
        build_order(lines=[{"name": "C", "quantity": 1, "price": "1.00"}], fees=[{"name": "x", "amount": "-5"}])
