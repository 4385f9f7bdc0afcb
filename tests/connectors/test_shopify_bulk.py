"""Bulk query operations: the simulator serves them as Shopify does (one at a time per shop, the query checked,
CREATED → RUNNING → COMPLETED, a JSONL file with ``__parentId`` lines) and the hub's connector runs one, takes
over its own, waits for someone else's and puts each order back together, reading the file backwards."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import graphql
import pytest

from connectors import shopify_bulk
from connectors.errors import Permanent
from connectors.shopify import ShopifyClient
from connectors.shopify_bulk import BULK_CURRENT, BULK_RUN, orders_from_jsonl, run_bulk_query
from connectors.shopify_bulk_queries import bulk_orders_query
from demo.simulators.shopify import admin_schema
from mappings.shopify import order_from_graphql
from tests.helpers import an_order

SINCE = "created_at:>='2020-01-01T00:00:00Z'"


@pytest.fixture
def shop(platforms):  # noqa: ANN001, ANN201
    sim = platforms.shopify
    domain = sim.add_shop("bulk.myshopify.com")
    sim.set_throttle(maximum_available=10_000, restore_rate=1_000, currently_available=10_000, domain=domain)
    created = datetime.now(UTC) - timedelta(days=3)
    for i in range(3):
        lines = [{"sku": f"SKU-{n}", "title": f"Item {n}", "quantity": 1, "price": "10.00"} for n in range(1 + 2 * i)]
        order = an_order(700_001 + i, 4001 + i, lines=lines, created_at=created + timedelta(minutes=i),
                         payment_terms={"type": "NET", "due_in_days": 15} if i == 1 else None)
        sim.add_order(domain, order)
    return sim, domain, ShopifyClient(domain, sim.issue_token(domain), api_url=sim.url)


def test_the_hubs_bulk_documents_validate_against_shopifys_schema() -> None:
    for doc in (*shopify_bulk.DOCUMENTS.values(), bulk_orders_query(SINCE)):
        assert graphql.validate(admin_schema(), graphql.parse(doc)) == []


def test_an_operation_runs_one_at_a_time_and_gives_a_jsonl_file_of_flattened_connections(shop) -> None:  # noqa: ANN001
    sim, domain, client = shop
    sim.bulk_run_seconds = 1.0
    started = client.graphql(BULK_RUN, {"query": bulk_orders_query(SINCE)})["bulkOperationRunQuery"]
    assert started["userErrors"] == [] and started["bulkOperation"]["status"] == "CREATED"
    again = client.graphql(BULK_RUN, {"query": bulk_orders_query(SINCE)})["bulkOperationRunQuery"]
    assert again["bulkOperation"] is None
    assert [e["code"] for e in again["userErrors"]] == ["OPERATION_IN_PROGRESS"]
    assert started["bulkOperation"]["id"] in again["userErrors"][0]["message"]
    assert sim.operations[-1][2] >= 10                                   # a mutation's cost, like any other
    seen = set()
    while (op := client.graphql(BULK_CURRENT, {})["currentBulkOperation"])["status"] != "COMPLETED":
        seen.add(op["status"])
    assert seen <= {"CREATED", "RUNNING"} and "RUNNING" in seen
    with urllib.request.urlopen(op["url"]) as response:                 # no token: a signed storage URL
        lines = [json.loads(line) for line in response.read().decode().splitlines()]
    assert int(op["objectCount"]) == len(lines) and int(op["rootObjectCount"]) == 3
    ids = [line["id"] for line in lines]
    for line in lines:
        assert "lineItems" not in line and "shippingLines" not in line   # nested connections: lines of their own
        if "__parentId" in line:
            assert ids.index(line["__parentId"]) < ids.index(line["id"])  # after the order they belong to
    assert sum(1 for line in lines if "/LineItem/" in line["id"]) == 1 + 3 + 5
    assert any("/PaymentSchedule/" in line["id"] for line in lines)


@pytest.mark.parametrize(("query", "says"), [
    ("{ shop { name } }", "at least one connection"),
    ("{ orders { edges { node { id nope } } } }", "Invalid bulk query"),
    ("query ($q: String) { orders(query: $q) { edges { node { id } } } }", "variables"),
    ("{ customers { edges { node { id orders { edges { node { id lineItems { edges { node { id } } } } } } } } } }",
     "more than 2 levels"),
    ("{ orders { edges { node { id refunds { refundLineItems { edges { node { quantity } } } } } } } }",
     "inside a list field"),
    ("{ orders { edges { node { id lineItems { edges { node { id } } } shippingLines { edges { node { id } } } "
     "fulfillmentOrders { edges { node { id } } } returns { edges { node { id } } } "
     "events { edges { node { id } } } } } } }", "more than 5 connections"),
])
def test_shopify_refuses_a_query_bulk_operations_do_not_take(shop, query: str, says: str) -> None:  # noqa: ANN001
    _, _, client = shop
    with pytest.raises(Permanent) as refused:
        run_bulk_query(client.graphql, query, sleep=lambda _s: None)
    assert says in str(refused.value)


def test_the_connector_takes_over_its_own_operation_and_waits_for_anyone_elses(shop) -> None:  # noqa: ANN001
    sim, domain, client = shop
    ours = bulk_orders_query(SINCE)
    client.graphql(BULK_RUN, {"query": ours})              # left running by an interrupted backfill
    done = run_bulk_query(client.graphql, ours, sleep=lambda _s: None)
    assert done["status"] == "COMPLETED" and len(sim.bulk_operations[domain]) == 1   # taken over, not run again
    client.graphql(BULK_RUN, {"query": "{ orders { edges { node { id } } } }"})       # someone else's
    done = run_bulk_query(client.graphql, ours, sleep=lambda _s: None)
    assert done["status"] == "COMPLETED" and done["query"] == ours and len(sim.bulk_operations[domain]) == 3


def test_orders_are_put_back_together_from_lines_in_any_place_after_their_order(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(shopify_bulk, "BLOCK", 64)   # lines cut across blocks when read backwards
    order = an_order(800_001, 5001, payment_terms={"type": "NET", "due_in_days": 30}).graphql()
    lines_of = order["lineItems"](None, first=10)["nodes"]
    terms = order["paymentTerms"]
    schedule = terms["paymentSchedules"](None, first=1)["nodes"][0]
    head = {k: v for k, v in order.items() if not callable(v)}
    head["paymentTerms"] = {k: v for k, v in terms.items() if not callable(v)}
    head["transactions"], head["refunds"], head["fulfillments"] = order["transactions"](None), [], []
    other = {**head, "id": "gid://shopify/Order/800002", "legacyResourceId": "800002", "name": "#5002",
             "paymentTerms": None}
    rows = [head, other, {**lines_of[0], "__parentId": head["id"]},
            {**schedule, "__parentId": terms["id"]},            # the other reading: the object's own id
            {**lines_of[1], "__parentId": head["id"]}]
    path = tmp_path / "result.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    newest, oldest = list(orders_from_jsonl(str(path)))
    assert newest["id"] == other["id"] and newest["lineItems"] == {"nodes": []}
    assert [n["id"] for n in oldest["lineItems"]["nodes"]] == [lines_of[0]["id"], lines_of[1]["id"]]
    mapped = order_from_graphql(oldest)
    assert [ln.sku for ln in mapped.lines] == ["TEE-BLK-M", "MUG-1"]
    assert oldest["paymentTerms"]["paymentSchedules"]["nodes"][0]["dueAt"] == schedule["dueAt"]
