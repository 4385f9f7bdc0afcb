"""The HubSpot simulator over real HTTP, driven through hubspot-api-client."""

from __future__ import annotations

import json
import time

import hubspot
import pytest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)

from demo.simulators.hubspot import HubSpotSimulator

HUB = "4242"


@pytest.fixture(scope="module")
def server():
    s = HubSpotSimulator(search_delay=0.3).start()
    yield s
    s.stop()


@pytest.fixture
def sim(server):
    server.reset()
    server.add_account(HUB)
    return server


def client(sim: HubSpotSimulator, hub: str = HUB) -> hubspot.Client:
    return hubspot.Client.create(access_token=sim.issue_token(hub), host=sim.url)


def upsert(c: hubspot.Client, contacts: list[dict[str, str]]):
    body = BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        SimplePublicObjectBatchInputUpsert(id_property="email", id=p["email"], properties=p) for p in contacts])
    return c.crm.contacts.batch_api.upsert(batch_input_simple_public_object_batch_input_upsert=body)


def test_batch_upsert_creates_then_updates(sim):
    c = client(sim)
    first = upsert(c, [{"email": "Ada@Example.com", "firstname": "Ada"},
                       {"email": "grace@example.com", "firstname": "Grace"}])
    assert first.status == "COMPLETE" and [r.new for r in first.results] == [True, True]
    assert first.results[0].properties["email"] == "ada@example.com"
    assert first.started_at is not None and first.completed_at is not None
    again = upsert(c, [{"email": "ada@example.COM", "lastname": "Lovelace"}])
    assert [r.new for r in again.results] == [False]
    assert again.results[0].id == first.results[0].id
    stored = {x["properties"]["email"]: x for x in sim.contacts(HUB)}
    assert len(stored) == 2
    assert stored["ada@example.com"]["properties"]["firstname"] == "Ada"
    assert stored["ada@example.com"]["properties"]["lastname"] == "Lovelace"
    # another portal does not see these contacts
    assert upsert(client(sim, "777"), [{"email": "ada@example.com"}]).results[0].new is True


def test_batch_upsert_validation(sim):
    c = client(sim)
    with pytest.raises(ApiException) as info:
        upsert(c, [{"email": f"u{i}@example.com"} for i in range(101)])
    assert info.value.status == 400 and json.loads(info.value.body)["category"] == "VALIDATION_ERROR"
    with pytest.raises(ApiException) as info:
        upsert(c, [{"email": "ok@example.com"}, {"email": "not-an-email"}])
    body = json.loads(info.value.body)
    assert info.value.status == 400 and body["category"] == "VALIDATION_ERROR" and "INVALID_EMAIL" in body["message"]
    assert sim.contacts(HUB) == []  # the whole batch was refused
    assert len(upsert(c, [{"email": f"u{i}@example.com"} for i in range(100)]).results) == 100


def test_create_conflict_get_patch_and_read(sim):
    c = client(sim)
    basic = c.crm.contacts.basic_api
    created = basic.create(simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
        properties={"email": "ada@example.com", "firstname": "Ada"}))
    with pytest.raises(ApiException) as info:
        basic.create(simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
            properties={"email": "ADA@example.com"}))
    body = json.loads(info.value.body)
    assert info.value.status == 409 and body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {created.id}"
    got = basic.get_by_id("ada@example.com", id_property="email", properties=["firstname", "lastname"])
    assert got.id == created.id and got.properties["firstname"] == "Ada"
    basic.update(created.id, simple_public_object_input=SimplePublicObjectInput(properties={"lastname": "L"}))
    assert basic.get_by_id(created.id, properties=["lastname"]).properties["lastname"] == "L"
    with pytest.raises(ApiException) as info:
        basic.get_by_id("999999")
    assert info.value.status == 404
    read = c.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
        id_property="email", inputs=[SimplePublicObjectId(id="ada@example.com")], properties=["email"]))
    assert [r.id for r in read.results] == [created.id]


def test_search_lags_behind_writes(sim):
    c = client(sim)
    upsert(c, [{"email": "new@example.com"}])
    request = PublicObjectSearchRequest(filter_groups=[{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "new@example.com"}]}])
    assert c.crm.contacts.search_api.do_search(public_object_search_request=request).total == 0
    time.sleep(0.35)
    found = c.crm.contacts.search_api.do_search(public_object_search_request=request)
    assert found.total == 1 and found.results[0].properties["email"] == "new@example.com"


def test_rate_limit_per_account(sim):
    sim.rate_limit = 5
    c = client(sim)
    seen = []
    for _ in range(5):
        seen.append(upsert(c, [{"email": "a@example.com"}]).status)
    assert seen == ["COMPLETE"] * 5
    with pytest.raises(ApiException) as info:
        upsert(c, [{"email": "a@example.com"}])
    exc = info.value
    assert exc.status == 429
    assert json.loads(exc.body) | {"correlationId": None} == {
        "status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING",
        "message": "You have reached your ten_secondly_rolling limit.", "correlationId": None}
    assert exc.headers["X-HubSpot-RateLimit-Max"] == "5"
    assert exc.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert exc.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    # the limit is per account
    assert upsert(client(sim, "9999"), [{"email": "a@example.com"}]).status == "COMPLETE"


def test_expired_and_unknown_tokens(sim):
    c = client(sim)
    upsert(c, [{"email": "a@example.com"}])
    sim.expire_tokens()
    with pytest.raises(ApiException) as info:
        upsert(c, [{"email": "a@example.com"}])
    assert info.value.status == 401
    assert json.loads(info.value.body)["category"] == "EXPIRED_AUTHENTICATION"
    stranger = hubspot.Client.create(access_token="made-up", host=sim.url)
    with pytest.raises(ApiException) as info:
        upsert(stranger, [{"email": "a@example.com"}])
    body = json.loads(info.value.body)
    assert info.value.status == 401 and body["status"] == "error"
    assert body["message"].startswith("Authentication credentials not found")


def test_oauth_refresh_keeps_the_refresh_token(sim):
    sim.register_app("client-1", "secret-1")
    refresh = sim.issue_refresh_token(HUB)
    oauth = hubspot.Client.create(host=sim.url).oauth.tokens_api
    tokens = oauth.create(grant_type="refresh_token", client_id="client-1", client_secret="secret-1",
                          refresh_token=refresh)
    assert tokens.refresh_token == refresh and tokens.expires_in == 1800
    assert sim.token_account(tokens.access_token) == HUB
    fresh = hubspot.Client.create(access_token=tokens.access_token, host=sim.url)
    assert upsert(fresh, [{"email": "a@example.com"}]).status == "COMPLETE"
    with pytest.raises(Exception) as info:
        oauth.create(grant_type="refresh_token", client_id="client-1", client_secret="secret-1",
                     refresh_token="unknown")
    assert info.value.status == 400
    with pytest.raises(Exception) as info:
        oauth.create(grant_type="refresh_token", client_id="client-1", client_secret="wrong",
                     refresh_token=refresh)
    assert info.value.status == 400


def test_injected_fault(sim):
    c = client(sim)
    sim.fail_next(503, path_contains="/batch/upsert")
    with pytest.raises(ApiException) as info:
        upsert(c, [{"email": "a@example.com"}])
    assert info.value.status == 503
    assert upsert(c, [{"email": "a@example.com"}]).results[0].new is True
