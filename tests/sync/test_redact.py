"""The redaction of failing calls' excerpts (``connectors.redact``), and each connector attaching one when
it raises: no credential, header or whole e-mail address ever reaches the stored excerpt."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
import responses
from flask import Flask, Response

from connectors import redact
from connectors.errors import AuthExpired, ConnectorError, Permanent, Retryable
from connectors.hubspot import HubSpotClient
from connectors.quickbooks import QuickBooksClient
from connectors.shopify import ShopifyClient, operation_name
from connectors.woocommerce import WooCommerceClient
from tests.helpers import served

SECRET = "s3cr3t-value-never-shown"


@pytest.mark.parametrize("param", ["access_token", "consumer_key", "consumer_secret", "oauth_signature",
                                   "oauth_nonce", "code", "client_secret", "refresh_token", "x_api_token",
                                   "webhookSecret", "user_password", "oauth_consumer_key", "hapikey"])
def test_query_secrets_are_stripped_and_the_rest_kept(param: str) -> None:
    url = f"https://shop.example.com/wp-json/wc/v3/orders?per_page=1&{param}={SECRET}&page=2#frag"
    clean = redact.redact_url(url)
    assert SECRET not in clean and param not in clean
    assert clean == "https://shop.example.com/wp-json/wc/v3/orders?per_page=1&page=2"


def test_url_user_part_is_dropped_and_emails_masked() -> None:
    clean = redact.redact_url(f"https://ck_1:{SECRET}@store.example.com:8443/x/ada.lovelace@example.com"
                              "?email=grace%40example.org&minorversion=75")
    assert SECRET not in clean and "ck_1" not in clean
    assert clean == "https://store.example.com:8443/x/a***@example.com?email=g***%40example.org&minorversion=75"
    assert redact.redact_url(None) is None


def test_secret_json_keys_are_replaced_at_any_depth_and_emails_masked() -> None:
    body = {"access_token": SECRET, "refresh_token": SECRET, "client_secret": SECRET, "password": SECRET,
            "consumer_secret": SECRET, "Authorization": SECRET, "api_key": SECRET, "token": SECRET,
            "accessToken": SECRET, "x-webhook-secret": SECRET, "empty_token": "",
            "SyncToken": "3", "Id": "42", "nested": [{"secret": SECRET, "PrimaryEmailAddr": {
                "Address": "ada@example.com"}}], "note": f"Bearer {SECRET}", "amount": 12.5}
    out = json.loads(redact.redact_body(json.dumps(body)))
    assert SECRET not in json.dumps(out)
    assert out["access_token"] == out["token"] == out["accessToken"] == out["x-webhook-secret"] == "[redacted]"
    assert out["empty_token"] == ""                         # shows it was empty, which is worth knowing
    assert (out["SyncToken"], out["Id"], out["amount"]) == ("3", "42", 12.5)   # not secrets
    assert out["nested"][0] == {"secret": "[redacted]", "PrimaryEmailAddr": {"Address": "a***@example.com"}}
    assert out["note"] == "Bearer [redacted]"
    assert json.loads(redact.redact_body(body)) == out       # a dict gives the same as its JSON text


def test_text_forms_and_cut_json_are_scrubbed_too() -> None:
    form = redact.redact_body(f"grant_type=refresh_token&refresh_token={SECRET}&client_id=abc")
    assert SECRET not in form and "client_id=abc" in form and "grant_type=refresh_token" in form
    cut = '{"customer": {"email": "ada@example.com"}, "access_token": "' + SECRET + '", "x": "' + "y" * 50
    text = redact.redact_body(cut)
    assert SECRET not in text and "a***@example.com" in text and '"access_token": "[redacted]"' in text
    html = redact.redact_body(f"<html>Contact ada@example.com. Authorization: Bearer {SECRET}</html>")
    assert SECRET not in html and "a***@example.com" in html
    assert redact.redact_body(b"\xff{broken") is not None and redact.redact_body(None) is None


def test_bodies_are_cut_to_about_two_thousand_characters() -> None:
    text = redact.redact_body("x" * 10_000)
    assert text.startswith("x" * 2000) and len(text) < 2050 and "8000 more characters" in text
    big = {"items": [{"email": f"buyer{n}@example.com", "password": SECRET} for n in range(2000)]}
    out = redact.redact_body(big)
    assert len(out) < 2050 and SECRET not in out and "@example.com" in out and "buyer1@" not in out


def test_excerpt_shape() -> None:
    ex = redact.excerpt("post", f"https://api.example.com/v1?access_token={SECRET}", {"token": SECRET}, 400,
                        b'{"message": "bad"}')
    assert ex == {"request": {"method": "POST", "url": "https://api.example.com/v1", "body": '{"token": "[redacted]"}'},
                  "response": {"status": 400, "body": '{"message": "bad"}'}}
    assert SECRET not in json.dumps(ex)


def test_graphql_operation_names() -> None:
    assert operation_name("\n  query HubOrder($id: ID!) { order(id: $id) { id } }") == "query HubOrder"
    assert operation_name("mutation HubOrderMarkAsPaid($input: X!) { x }") == "mutation HubOrderMarkAsPaid"
    assert operation_name("{ shop { name } }") == "query (anonymous)"


# -- each connector attaches its excerpt --------------------------------------------------------------

def _assert_clean(exc: ConnectorError, *secrets: str) -> dict:
    ex = exc.excerpt
    assert ex is not None and set(ex) == {"request", "response"}
    text = json.dumps(ex)
    for secret in secrets:
        assert secret not in text
    assert "ada@example.com" not in text
    return ex


@responses.activate
def test_quickbooks_fault_carries_the_request_and_intuits_answer() -> None:
    fault = {"Fault": {"Error": [{"Message": "Invalid Reference Id", "Detail": "Item 99 for ada@example.com",
                                  "code": "2500"}], "type": "ValidationFault"}}
    responses.post("https://qb.test/v3/company/123/invoice", json=fault, status=400)
    client = QuickBooksClient("123", SECRET, api_url="https://qb.test")
    with pytest.raises(Permanent) as caught:
        client.create("Invoice", {"CustomerRef": {"value": "1"}, "BillEmail": {"Address": "ada@example.com"}},
                      request_id="rid-1")
    ex = _assert_clean(caught.value, SECRET)
    assert caught.value.code == "2500"
    assert ex["request"]["method"] == "POST"
    assert ex["request"]["url"] == "https://qb.test/v3/company/123/invoice?minorversion=75&requestid=rid-1"
    assert "a***@example.com" in ex["request"]["body"] and ex["response"]["status"] == 400
    assert "Invalid Reference Id" in ex["response"]["body"]


@responses.activate
def test_a_quickbooks_batch_items_fault_carries_that_items_excerpt() -> None:
    responses.post("https://qb.test/v3/company/123/batch", json={"BatchItemResponse": [
        {"bId": "b0", "Invoice": {"Id": "7"}},
        {"bId": "b1", "Fault": {"type": "ValidationFault", "Error": [
            {"Message": "Duplicate Document Number Error", "Detail": "ada@example.com", "code": "6140"}]}}]})
    client = QuickBooksClient("123", SECRET, api_url="https://qb.test")
    answers = client.batch([{"bId": "b0", "operation": "create", "Invoice": {"DocNumber": "1"}},
                            {"bId": "b1", "operation": "create", "Invoice": {"DocNumber": "2", "BillEmail": {
                                "Address": "ada@example.com"}}}])
    fault = answers["b1"]
    assert answers["b0"] == {"Id": "7"} and fault.code == "6140"
    assert fault.excerpt["request"]["url"] == "https://qb.test/v3/company/123/batch?minorversion=75"
    sent = fault.excerpt["request"]["body"]
    assert '"DocNumber": "2"' in sent and '"DocNumber": "1"' not in sent     # only that item
    assert "6140" in fault.excerpt["response"]["body"] and "ada@example.com" not in json.dumps(fault.excerpt)


@responses.activate
def test_quickbooks_throttle_and_server_errors_carry_the_excerpt() -> None:
    responses.post("https://qb.test/v3/company/123/query", body="busy", status=503)
    client = QuickBooksClient("123", SECRET, api_url="https://qb.test")
    with pytest.raises(Retryable) as caught:
        client.query("SELECT * FROM Customer WHERE PrimaryEmailAddr = 'ada@example.com'")
    ex = _assert_clean(caught.value, SECRET)
    assert ex["response"] == {"status": 503, "body": "busy"}
    assert "a***@example.com" in ex["request"]["body"]


@pytest.fixture
def canned() -> Iterator[tuple[str, dict]]:
    """A real HTTP server answering every POST with ``answer["status"]``, ``answer["body"]`` (and
    ``answer["headers"]``): for the clients that do not use ``requests`` (Shopify: urllib, HubSpot: urllib3)."""
    answer: dict = {"status": 200, "body": "{}", "headers": {}}
    app = Flask("canned")

    @app.post("/<path:path>")
    def reply(path: str) -> Response:
        return Response(answer["body"], status=answer["status"], headers=answer["headers"],
                        content_type="application/json")

    with served(app) as url:
        yield url, answer


def test_shopify_excerpt_names_the_query_and_keeps_variables_and_answer(canned) -> None:  # noqa: ANN001
    base, answer = canned
    url = f"{base}/admin/api/2025-01/graphql.json"
    answer["body"] = json.dumps({"errors": [{"message": "Access denied", "extensions": {"code": "ACCESS_DENIED"}}]})
    client = ShopifyClient("shop-1.myshopify.com", SECRET, api_url=base)
    with pytest.raises(AuthExpired) as caught:
        client.graphql("query HubOrder($id: ID!) { order(id: $id) { id email } }", {"id": "gid://shopify/Order/1"})
    ex = _assert_clean(caught.value, SECRET)
    assert ex["request"] == {"method": "POST", "url": url,
                             "body": '{"query": "query HubOrder", "variables": {"id": "gid://shopify/Order/1"}}'}
    assert ex["response"]["status"] == 200 and "Access denied" in ex["response"]["body"]

    answer.update(status=429, body='{"errors": "slow down"}', headers={"Retry-After": "3"})
    with pytest.raises(Retryable) as caught:
        client.graphql("query HubOrder($id: ID!) { order(id: $id) { id } }", {"id": "gid://shopify/Order/1"})
    assert caught.value.retry_after == 3.0
    assert _assert_clean(caught.value, SECRET)["response"] == {"status": 429, "body": '{"errors": "slow down"}'}


def test_hubspot_excerpt_is_the_batch_and_the_api_exception_body(canned) -> None:  # noqa: ANN001
    base, answer = canned
    answer.update(status=400, body=json.dumps({"status": "error", "message": "Property values were not valid",
                                               "category": "VALIDATION_ERROR"}))
    client = HubSpotClient(SECRET, api_url=base)
    with pytest.raises(Permanent) as caught:
        client.upsert_contacts([{"email": "ada@example.com", "firstname": "Ada"}])
    ex = _assert_clean(caught.value, SECRET)
    assert (ex["request"]["method"], ex["request"]["url"]) == ("POST", f"{base}/crm/v3/objects/contacts/batch/upsert")
    assert "a***@example.com" in ex["request"]["body"] and "Ada" in ex["request"]["body"]
    assert ex["response"]["status"] == 400 and "VALIDATION_ERROR" in ex["response"]["body"]
    assert caught.value.code == "VALIDATION_ERROR"


@responses.activate
def test_woocommerce_excerpt_comes_from_the_response_without_the_oauth_signature() -> None:
    responses.put("http://store.test/wp-json/wc/v3/orders/7",
                  json={"code": "woocommerce_rest_invalid_email", "message": "Invalid billing email",
                        "data": {"status": 400}}, status=400)
    client = WooCommerceClient("http://store.test", "ck_key_abc", SECRET)
    with pytest.raises(Permanent) as caught:
        client.update_order(7, {"billing": {"email": "ada@example.com"}})
    ex = _assert_clean(caught.value, SECRET, "ck_key_abc")
    assert ex["request"]["method"] == "PUT" and ex["request"]["url"] == "http://store.test/wp-json/wc/v3/orders/7"
    assert "oauth" not in ex["request"]["url"] and "a***@example.com" in ex["request"]["body"]
    assert ex["response"]["status"] == 400 and "woocommerce_rest_invalid_email" in ex["response"]["body"]

    responses.get("http://store.test/wp-json/wc/v3/orders/8", body=requests.ConnectionError("refused"))
    with pytest.raises(Retryable) as caught:
        client.fetch_order(8)
    ex = _assert_clean(caught.value, SECRET, "ck_key_abc")
    assert ex["request"]["url"] == "http://store.test/wp-json/wc/v3/orders/8" and ex["response"]["status"] is None
