"""What a hostile or careless outsider sends never breaks the hub: every id, date and text from outside goes
through one strict reader (``mappings.inputs``), so an id out of its column's range, a digit that is not
ASCII ("²", "١٢٣"), a date that overflows once taken to UTC, a lone surrogate or a NUL is a 400 (a 404 for a
path id) and stores nothing, never a 500. 405 answers say what is allowed, and a QuickBooks notification
for a company nobody connected is recorded where support sees it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from demo.simulators.shopify import webhook_headers
from hub.merchants import connect
from hub.models import AuditEntry, Merchant, SyncRun, WebhookEvent
from hub.runtime import Hub
from mappings.inputs import (
    INTEGER_MAX,
    InvalidInput,
    clean_json,
    clean_text,
    parse_date,
    parse_datetime,
    parse_id,
    parse_optional_id,
)
from mappings.model import MappingError
from mappings.woocommerce import order_from_rest
from tests.conftest import SHOPIFY_SECRET
from tests.web.test_api import new_token
from tests.web.test_console import add_user, login
from web.app import create_app

SUPPORT = "support@example.com"
WOO_SECRET = "woo-hostile-webhook-secret"
VERIFIER = "qb-hostile-verifier"
HUGE = "99999999999999999999"            # over 2^63 - 1
PAST_INTEGER = str(INTEGER_MAX + 1)       # fits SQLite, overflows PostgreSQL's INTEGER ids


class NoDispatch:
    """The hub's dispatcher, minus the work: these tests look at what the receiver answers and stores."""

    def dispatch(self, run_id: int) -> None:
        return None

    def stop(self) -> None:
        return None


@dataclass
class Hostile:
    hub: Hub
    app: Flask
    shop: Any
    woo_id: int
    token: str
    seen: Counter = field(default_factory=Counter)   # HTTP status → answers (the fuzz tests count them)

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def console(self) -> FlaskClient:
        client = self.app.test_client()
        assert login(client, SUPPORT, "correct horse battery").status_code == 302
        return client

    def api(self, method: str, path: str, **kw: Any) -> Any:
        return self.client().open(f"/api/v1{path}", method=method,
                                  headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def counts(self) -> tuple[int, int, int]:
        with self.hub.session() as s:
            return tuple(s.scalar(select(func.count()).select_from(model)) or 0
                         for model in (WebhookEvent, SyncRun, AuditEntry))  # type: ignore[return-value]

    def shopify(self, body: bytes, topic: str = "orders/create", **headers: str) -> Any:
        return self.client().post("/webhooks/shopify", data=body, headers={
            **webhook_headers(self.shop.domain, topic, body, SHOPIFY_SECRET), **headers})

    def woocommerce(self, body: bytes, conn: int | str | None = None, signed: bool = True) -> Any:
        headers = {"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Delivery-ID": "1",
                   "Content-Type": "application/json"}
        if signed:
            headers["X-WC-Webhook-Signature"] = sign(body, WOO_SECRET)
        return self.client().post(f"/webhooks/woocommerce/{self.woo_id if conn is None else conn}", data=body,
                                  headers=headers)

    def quickbooks(self, body: bytes, signed: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["intuit-signature"] = sign(body, VERIFIER)
        return self.client().post("/webhooks/quickbooks", data=body, headers=headers)


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def make_hostile(make_hub, shop_factory, database_url: str) -> Hostile:  # noqa: ANN001
    hub = make_hub(database_url, QUICKBOOKS_WEBHOOK_VERIFIER_TOKEN=VERIFIER)
    hub._dispatcher = NoDispatch()  # type: ignore[assignment]
    shop = shop_factory(hub)
    with hub.session() as s:
        merchant = s.get(Merchant, shop.merchant_id)
        woo_id = connect(s, hub.secrets, merchant, "woocommerce", "https://cafe.example",
                         {"consumer_key": "ck_x", "consumer_secret": "cs_x", "webhook_secret": WOO_SECRET}).id
    add_user(hub, SUPPORT)
    return Hostile(hub, create_app(hub), shop, woo_id, new_token(SUPPORT))


@pytest.fixture
def hostile(make_hub, shop_factory, database_url) -> Hostile:  # noqa: ANN001
    return make_hostile(make_hub, shop_factory, database_url)


def one_line(response: Any) -> str:
    message = response.json["error"] if response.is_json else response.get_data(as_text=True)
    assert message and "Traceback" not in message
    return message


# -- the strict reader itself -------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["²", "١٢٣", "１２", "1e3", "-1", "0", "+5", "1_000", " ", "", "0x10", HUGE,
                                 PAST_INTEGER, True, False, None, 1.0, [], {}, -3, 2**64])
def test_parse_id_takes_ascii_digits_inside_the_column_range_only(raw: Any) -> None:
    with pytest.raises(InvalidInput, match="^merchant "):
        parse_id(raw, name="merchant")


def test_parse_id_reads_what_is_an_id() -> None:
    assert parse_id("42") == 42 == parse_id(42) == parse_id(" 42\n") == parse_id("0042")
    assert parse_id(str(INTEGER_MAX)) == INTEGER_MAX
    assert parse_id("18446744073709551615", high=2**64 - 1) == 2**64 - 1 and parse_id(HUGE, high=10**20) == int(HUGE)
    assert parse_optional_id(None) is None and parse_optional_id("  ") is None and parse_optional_id("7") == 7
    with pytest.raises(InvalidInput, match=r'^before must be from 1 to 2147483647, not "2147483648"$'):
        parse_id(PAST_INTEGER, name="before")


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "yesterday",
                                 "2026-02-30", "２０２６-01-31", "2026-01-31T25:00", 20260131, None])
def test_parse_datetime_refuses_what_python_cannot_convert(raw: Any) -> None:
    with pytest.raises(InvalidInput, match="^created_after "):
        parse_datetime(raw, name="created_after")


def test_parse_datetime_reads_dates_and_date_times_as_naive_utc() -> None:
    assert str(parse_datetime("2026-01-31")) == "2026-01-31 00:00:00"
    assert str(parse_datetime("2026-01-31T12:00:00Z")) == "2026-01-31 12:00:00"
    assert str(parse_datetime("2026-01-31T12:00:00+05:30")) == "2026-01-31 06:30:00"
    assert str(parse_datetime("9999-12-31T23:59:59")) == "9999-12-31 23:59:59"
    assert str(parse_date("2026-01-31")) == "2026-01-31"
    with pytest.raises(InvalidInput):
        parse_date("2026-01-31T00:00:00")


def test_clean_text_makes_any_text_storable() -> None:
    assert clean_text("Ada\ud800 Love\x00lace") == "Ada\ufffd Lovelace"
    assert clean_text("Zoë 😀") == "Zoë 😀"
    assert clean_json({"a\x00": ["\udfff", {"b": "\ud83d"}], "n": 1}) == {"a": ["\ufffd", {"b": "\ufffd"}], "n": 1}
    deep: list = []
    node = deep
    for _ in range(50_000):   # however deep it nests: no recursion
        node.append([])
        node = node[0]
    node.append("\ud800")
    clean_json(deep)
    assert node == ["\ufffd"]


def test_a_store_date_that_overflows_in_utc_is_a_mapping_error_a_support_agent_can_read() -> None:
    order = {"id": 5, "number": "5", "currency": "USD", "total": "0", "line_items": [],
             "date_created_gmt": "0001-01-01T00:00:00+01:00"}
    with pytest.raises(MappingError, match="date_created is not a date"):
        order_from_rest(order)


# -- ids out of range or not ASCII: 404 for a path, 400 for a parameter, never a 500 -------------------

def test_path_ids_out_of_range_or_not_ascii_are_404(hostile: Hostile) -> None:
    before = hostile.counts()
    for conn in (HUGE, PAST_INTEGER, "١", "²"):
        r = hostile.woocommerce(b"x", conn=conn, signed=False)
        assert r.status_code == 404, (conn, r.status_code)
    # a run that exists is not reached by a number written in other digits
    hostile.shopify(b'{"name": "#1003", "line_items": []}')   # no order id: a failed run, stored
    [run_id] = [r["id"] for r in hostile.api("GET", "/runs").json["runs"]]
    assert hostile.api("GET", f"/runs/{run_id}").status_code == 200
    arabic = "".join(chr(0x0660 + int(d)) for d in str(run_id))
    console = hostile.console()
    for path in (HUGE, PAST_INTEGER, arabic):
        assert hostile.api("GET", f"/runs/{path}").status_code == 404
        assert hostile.api("POST", f"/runs/{path}/retry").status_code == 404
        assert hostile.api("POST", f"/runs/{path}/skip", json={"reason": "x"}).status_code == 404
        assert hostile.api("POST", f"/connections/{path}/resume").status_code == 404
        assert console.get(f"/console/runs/{path}").status_code == 404
        assert console.get(f"/console/mapping/{path}").status_code == 404
    assert hostile.counts()[:2] == (before[0] + 1, before[1] + 1)   # only the one real webhook


BAD_QUERIES = [f"merchant={HUGE}", f"merchant={PAST_INTEGER}", "merchant=%C2%B2", f"before={HUGE}",
               f"before={PAST_INTEGER}", "before=%D9%A1", "created_after=0001-01-01T00:00:00%2B01:00",
               "created_before=9999-12-31T23:59:59-01:00", f"limit={HUGE}"]


def test_api_query_parameters_out_of_range_are_400_with_a_one_line_message(hostile: Hostile) -> None:
    before = hostile.counts()
    for query in BAD_QUERIES:
        r = hostile.api("GET", f"/runs?{query}")
        assert r.status_code == 400 and "\n" not in one_line(r) and query.split("=")[0] in r.json["error"], query
        if query.startswith(("merchant", "created")):   # the same filter in the body of a re-run by filter
            name, value = query.split("=", 1)
            body = {name: value.replace("%2B", "+").replace("%C2%B2", "²")}
            assert hostile.api("POST", "/runs/retry", json=body).status_code == 400, body
    assert hostile.counts() == before


def test_api_takes_json_integers_for_ids_but_not_bools_and_text_with_nul(hostile: Hostile) -> None:
    m = hostile.shop.merchant_id
    assert hostile.api("POST", "/runs/retry", json={"merchant": m}).status_code == 202
    for bad in ({"merchant": True}, {"merchant": 1.5}, {"merchant": [m]}, {"merchant": 2**70}):
        assert hostile.api("POST", "/runs/retry", json=bad).status_code == 400, bad
    assert hostile.api("GET", "/runs?q=%00%231001").status_code == 200   # NUL: PostgreSQL refuses it in text
    assert hostile.api("GET", "/runs?before=").status_code == 200
    deep = b"[" * 100_000 + b"]" * 100_000
    assert hostile.api("POST", "/runs/retry", data=deep, content_type="application/json").status_code == 400


def test_console_and_connect_parameters_out_of_range_are_400_not_500(hostile: Hostile) -> None:
    console = hostile.console()
    for path in (f"/console/runs?before={HUGE}", f"/console/runs?before={PAST_INTEGER}", "/console/runs?before=%C2%B2",
                 f"/console/audit?before={HUGE}", f"/console/audit?before={PAST_INTEGER}",
                 f"/console/preview?merchant={HUGE}", f"/console/preview?merchant={PAST_INTEGER}",
                 "/console/preview?merchant=%D9%A1", f"/connect/quickbooks?merchant={HUGE}",
                 f"/connect/quickbooks?merchant={PAST_INTEGER}", "/connect/hubspot?merchant=%C2%B2"):
        r = console.get(path)
        assert r.status_code == 400, (path, r.status_code)
        assert "merchant" in one_line(r) or "before" in one_line(r)
    for path in (f"/console/runs?merchant={HUGE}", "/console/runs?merchant=%C2%B2"):   # a filter: said on the page
        page = console.get(path)
        assert page.status_code == 200 and "merchant must be" in page.get_data(as_text=True)
    assert console.get("/console/runs?created_to=9999-12-31&created_from=0001-01-01").status_code == 200
    assert console.get(f"/connect/quickbooks?merchant={hostile.shop.merchant_id}&connection={HUGE}").status_code == 404


# -- webhook bodies: ids not ASCII and text that cannot be stored ----------------------------------

def test_a_signed_woocommerce_order_with_a_superscript_id_is_a_failed_run_not_a_500(hostile: Hostile) -> None:
    events, runs, _ = hostile.counts()
    r = hostile.woocommerce(json.dumps({"id": "²", "number": "\ud800"}).encode())
    assert r.status_code == 200
    with hostile.hub.session() as s:
        [run] = s.scalars(select(SyncRun)).all()
        assert run.status == "failed" and run.error_kind == "mapping" and run.source_id.startswith("webhook-")
        assert '"²"' in run.reason and "not an order id" in run.reason
    assert hostile.counts()[:2] == (events + 1, runs + 1)


def test_a_signed_shopify_order_with_an_id_shopify_never_sends_is_not_queued(hostile: Hostile) -> None:
    for order_id in ("²", "١٢٣", "12\u00a0", HUGE, -5, 1.5, "0", [7]):
        r = hostile.shopify(json.dumps({"id": order_id, "name": "#1001"}).encode())
        assert r.status_code == 200, order_id
        with hostile.hub.session() as s:
            event = s.scalar(select(WebhookEvent).order_by(WebhookEvent.id.desc()))
            run = s.get(SyncRun, event.sync_run_id)
        assert run.status == "failed" and run.source_id == f"webhook-{event.id}" and event.status == "failed"
        assert "not a Shopify order id" in run.reason, run.reason
    with hostile.hub.session() as s:   # nothing is waiting to be pulled from Shopify under such an id
        assert s.scalars(select(SyncRun.status).distinct()).all() == ["failed"]


def test_lone_surrogates_and_nuls_in_signed_bodies_are_replaced_before_the_database(hostile: Hostile) -> None:
    body = json.dumps({"id": 450_001, "name": "#10\ud80001\u0000", "order_number": 1001}).encode()
    assert b"\\ud800" in body
    r = hostile.shopify(body, **{"X-Shopify-Webhook-Id": "w\x00-1"})
    assert r.status_code == 200
    with hostile.hub.session() as s:
        run = s.scalar(select(SyncRun))
        assert run.source_id == "450001" and run.source_name == "#10\ufffd01"
    woo = hostile.woocommerce(json.dumps({"id": 77, "number": "7\ud8007"}).encode())
    assert woo.status_code == 200
    qb = hostile.quickbooks(json.dumps({"eventNotifications": [{"realmId": hostile.shop.realm, "dataChangeEvent": {
        "entities": [{"name": "Payment\ud800\u0000", "id": "12", "operation": "Create"}]}}]}).encode())
    assert qb.status_code == 200
    # the same body unsigned: 401 and nothing more stored
    counts = hostile.counts()
    r = hostile.client().post("/webhooks/shopify", data=body, headers={"X-Shopify-Topic": "orders/create"})
    assert r.status_code == 401 and hostile.counts() == counts


# -- HTTP correctness ---------------------------------------------------------------------------

def test_every_405_says_which_methods_are_allowed(hostile: Hostile) -> None:
    console = hostile.console()
    for method, path, client in (("DELETE", "/api/v1/runs", hostile.client()),
                                 ("PUT", "/api/v1/runs/1/retry", hostile.client()),
                                 ("GET", "/api/v1/runs/retry", hostile.client()),
                                 ("GET", "/webhooks/shopify", hostile.client()),
                                 ("PUT", f"/webhooks/woocommerce/{hostile.woo_id}", hostile.client()),
                                 ("DELETE", "/console/runs", console),
                                 ("GET", "/console/runs/1/rerun", console)):
        r = client.open(path, method=method, headers={"Authorization": f"Bearer {hostile.token}"})
        assert r.status_code == 405, (method, path, r.status_code)
        allowed = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
        assert allowed and method not in allowed, (method, path, r.headers.get("Allow"))
    r = hostile.client().delete("/api/v1/runs", headers={"Authorization": f"Bearer {hostile.token}"})
    assert r.is_json and r.json["error"] and "GET" in r.headers["Allow"]


def test_a_notification_for_an_unknown_quickbooks_company_is_recorded_for_support(hostile: Hostile) -> None:
    body = json.dumps({"eventNotifications": [
        {"realmId": "4620816365999999999", "dataChangeEvent": {"entities": [
            {"name": "Payment", "id": "77", "operation": "Create", "lastUpdated": "2026-01-31T12:00:00Z"}]}},
        {"realmId": hostile.shop.realm, "dataChangeEvent": {"entities": [
            {"name": "Payment", "id": "78", "operation": "Create"}]}}]}).encode()
    r = hostile.quickbooks(body)
    assert r.status_code == 200 and len(r.json["runs"]) == 1        # the known company's change is worked on
    assert hostile.quickbooks(body).status_code == 200               # Intuit re-sends it: recorded once
    with hostile.hub.session() as s:
        [unknown] = s.scalars(select(WebhookEvent).where(WebhookEvent.status == "unknown_realm")).all()
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "webhook.unknown_realm")).all()
    assert unknown.account == "4620816365999999999" and unknown.merchant_id is None and unknown.topic == "Payment"
    assert entry.target_id == "4620816365999999999" and entry.detail["inbox_event"] == unknown.id
    page = hostile.console().get("/console/audit").get_data(as_text=True)
    assert "webhook.unknown_realm" in page and "4620816365999999999" in page


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_order_time_that_cannot_be_taken_to_utc_is_a_mapping_error(stamp: str) -> None:
    from mappings.model import MappingError
    from mappings.shopify_values import _datetime

    with pytest.raises(MappingError, match="out of range once taken to UTC"):
        _datetime(stamp, "updated_at", "order #1001")
