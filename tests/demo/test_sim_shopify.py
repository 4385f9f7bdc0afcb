"""The Shopify simulator over real HTTP, driven through the ShopifyAPI SDK."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import shopify

from connectors import shopify_bulk_queries, shopify_queries
from demo.simulators.shopify import GRAPHQL_PATH, ShopifySimulator, sign_webhook, webhook_headers
from demo.simulators.shopify_cost import MAX_QUERY_COST
from demo.simulators.shopify_orders import build_order, random_order

SHOP = "demo-store.myshopify.com"
OTHER = "other-store.myshopify.com"
CUSTOMER = {"id": 501, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}


@pytest.fixture(scope="module")
def server():
    s = ShopifySimulator().start()
    yield s
    s.stop()


@pytest.fixture
def sim(server):
    server.reset()
    server.add_shop(SHOP)
    server.add_shop(OTHER, currency="EUR")
    return server


def gql(sim: ShopifySimulator, token: str, query: str, variables: dict | None = None) -> dict:
    session = shopify.Session(SHOP, "2025-01", token)
    shopify.ShopifyResource.activate_session(session)
    try:
        shopify.ShopifyResource.set_site(sim.url + "/admin/api/2025-01")
        return json.loads(shopify.GraphQL().execute(query, variables))
    finally:
        shopify.ShopifyResource.clear_session()


def raw_post(sim: ShopifySimulator, token: str | None, query: str) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Shopify-Access-Token"] = token
    req = urllib.request.Request(sim.url + GRAPHQL_PATH, json.dumps({"query": query}).encode(), headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def http_error(sim: ShopifySimulator, token: str, query: str) -> urllib.error.HTTPError:
    with pytest.raises(urllib.error.HTTPError) as info:
        gql(sim, token, query)
    return info.value


def amount(bag: dict) -> Decimal:
    return Decimal(bag["shopMoney"]["amount"])


def sample_orders() -> list:
    return [
        build_order(order_id=1, number=1001, customer=CUSTOMER, lines=[
            {"sku": "MUG", "title": "Mug", "quantity": 3, "price": "9.99", "discount": "1.00"},
            {"sku": "TEE", "title": "T-shirt", "quantity": 1, "price": "20.00"}],
            shipping="5.00", order_discount="3.33", tax_rate="0.0825"),
        build_order(order_id=2, number=1002, email="vat@example.com", lines=[
            {"sku": "BOOK", "title": "Book", "quantity": 2, "price": "12.50", "taxable": False},
            {"sku": "PEN", "title": "Pen", "quantity": 7, "price": "1.19"}],
            shipping="7.50", shipping_discount="7.50", order_discount="2.00", tax_rate="0.2",
            taxes_included=True, currency="EUR", financial_status="pending", gateway="manual"),
        build_order(order_id=3, number=1003, customer=CUSTOMER, lines=[
            {"sku": "A", "title": "A", "quantity": 1, "price": "0.99"},
            {"sku": "B", "title": "B", "quantity": 1, "price": "0.99"},
            {"sku": "C", "title": "C", "quantity": 1, "price": "0.99"}],
            order_discount="0.10", tax_rate="0.07", financial_status="partially_paid"),
    ]


def check_totals(o: dict) -> None:
    lines = o["lineItems"]["nodes"]
    ships = o["shippingLines"]["nodes"]
    gross = sum(amount(ln["originalUnitPriceSet"]) * ln["quantity"] for ln in lines)
    line_disc = sum(amount(a["allocatedAmountSet"]) for ln in lines for a in ln["discountAllocations"])
    ship_disc = sum(amount(a["allocatedAmountSet"]) for s in ships for a in s["discountAllocations"])
    shipping = sum(amount(s["originalPriceSet"]) for s in ships)
    tax = sum(amount(t["priceSet"]) for ln in lines for t in ln["taxLines"]) + sum(
        amount(t["priceSet"]) for s in ships for t in s["taxLines"])
    for ln in lines:
        assert amount(ln["totalDiscountSet"]) == sum(amount(a["allocatedAmountSet"])
                                                     for a in ln["discountAllocations"])
    assert amount(o["totalTaxSet"]) == tax == sum(amount(t["priceSet"]) for t in o["taxLines"])
    assert amount(o["totalDiscountsSet"]) == line_disc + ship_disc
    assert amount(o["subtotalPriceSet"]) == gross - line_disc
    added_tax = Decimal(0) if o["taxesIncluded"] else tax
    assert amount(o["totalPriceSet"]) == gross - line_disc - ship_disc + shipping + added_tax
    assert amount(o["totalOutstandingSet"]) == amount(o["totalPriceSet"]) - amount(o["totalReceivedSet"])
    assert o["fullyPaid"] == (amount(o["totalOutstandingSet"]) == 0)


def test_hub_order_query_returns_consistent_orders(sim):
    for order in sample_orders():
        sim.add_order(SHOP, order)
    token = sim.issue_token(SHOP)
    statuses = {}
    for oid in (1, 2, 3):
        body = gql(sim, token, shopify_queries.ORDER_QUERY, {"id": f"gid://shopify/Order/{oid}", "linesAfter": None})
        assert "errors" not in body, body
        order = body["data"]["order"]
        check_totals(order)
        statuses[oid] = order["displayFinancialStatus"]
        cost = body["extensions"]["cost"]
        assert cost["requestedQueryCost"] >= cost["actualQueryCost"] > 0
        assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
    assert statuses == {1: "PAID", 2: "PENDING", 3: "PARTIALLY_PAID"}
    o1 = gql(sim, token, shopify_queries.ORDER_QUERY, {"id": "gid://shopify/Order/1", "linesAfter": None})
    o1 = o1["data"]["order"]
    # 3×9.99 + 20 − 1 − 3.33 = 45.64; tax 2.23 + 1.54 on the lines, 0.41 on shipping
    assert o1["totalPriceSet"]["shopMoney"] == {"amount": "54.82", "currencyCode": "USD"}
    assert o1["totalTaxSet"]["shopMoney"]["amount"] == "4.18"
    assert o1["customer"]["displayName"] == "Ada Lovelace"
    assert o1["transactions"][0]["kind"] == "SALE" and o1["transactions"][0]["status"] == "SUCCESS"
    o2 = gql(sim, token, shopify_queries.ORDER_QUERY, {"id": "gid://shopify/Order/2", "linesAfter": None})
    o2 = o2["data"]["order"]
    assert o2["taxesIncluded"] is True and o2["currencyCode"] == "EUR"
    assert o2["transactions"] == [] and o2["totalOutstandingSet"]["shopMoney"]["amount"] == o2[
        "totalPriceSet"]["shopMoney"]["amount"]


def test_random_orders_are_consistent_in_both_renderings():
    rng = random.Random(7)
    skus = [("SKU-1", "One", "19.99"), ("SKU-2", "Two", "5.00"), ("SKU-3", "Three", "0.35"),
            ("SKU-4", "Four", "129.00"), ("SKU-5", "Five", "3.33"), ("SKU-6", "Six", "12.10")]
    statuses = set()
    for i in range(200):
        order = random_order(rng, 100 + i, 2000 + i, skus=skus, customers=[CUSTOMER])
        g = order.graphql()
        g["lineItems"] = g["lineItems"](None, first=250)
        g["shippingLines"] = g["shippingLines"](None, first=10)
        check_totals(g)
        w = order.webhook_body()
        gross = sum(Decimal(li["price"]) * li["quantity"] for li in w["line_items"])
        assert gross == Decimal(w["total_line_items_price"])
        tax = sum(Decimal(t["price"]) for li in w["line_items"] for t in li["tax_lines"]) + sum(
            Decimal(t["price"]) for s in w["shipping_lines"] for t in s["tax_lines"])
        assert Decimal(w["total_tax"]) == tax
        disc = sum(Decimal(a["amount"]) for li in w["line_items"] for a in li["discount_allocations"]) + sum(
            Decimal(a["amount"]) for s in w["shipping_lines"] for a in s["discount_allocations"])
        assert Decimal(w["total_discounts"]) == disc
        shipping = sum(Decimal(s["price"]) for s in w["shipping_lines"])
        added = Decimal(0) if w["taxes_included"] else tax
        assert Decimal(w["total_price"]) == gross - disc + shipping + added
        assert w["total_price"] == f"{Decimal(g['totalPriceSet']['shopMoney']['amount']):.2f}"
        statuses.add(w["financial_status"])
    assert {"paid", "pending"} <= statuses


def test_webhook_body_shape_and_signature():
    order = sample_orders()[0]
    w = order.webhook_body()
    assert w["id"] == 1 and w["name"] == "#1001" and w["order_number"] == 1001
    assert w["admin_graphql_api_id"] == "gid://shopify/Order/1"
    assert w["total_price"] == "54.82" and w["subtotal_price"] == "45.64" and w["total_discounts"] == "4.33"
    assert datetime.fromisoformat(w["updated_at"]).tzinfo is not None
    assert w["customer"]["email"] == "ada@example.com" and w["payment_gateway_names"] == ["shopify_payments"]
    assert w["line_items"][0]["discount_allocations"][0]["amount"] == "1.00"
    body = json.dumps(w).encode()
    headers = webhook_headers(SHOP, "orders/create", body, "s3cret", webhook_id="wh-1")
    assert headers["X-Shopify-Hmac-Sha256"] == sign_webhook(body, "s3cret")
    assert headers["X-Shopify-Webhook-Id"] == "wh-1" and headers["X-Shopify-Topic"] == "orders/create"
    assert {"X-Shopify-Shop-Domain", "X-Shopify-API-Version", "X-Shopify-Event-Id",
            "X-Shopify-Triggered-At"} <= set(headers)


def test_order_with_260_lines_pages(sim):
    sim.set_throttle(maximum_available=20_000, currently_available=20_000, domain=SHOP)  # full pages back to back
    lines = [{"sku": f"S{i}", "title": f"Item {i}", "quantity": 1, "price": "1.10"} for i in range(260)]
    sim.add_order(SHOP, build_order(order_id=9, number=1009, lines=lines, order_discount="2.60", tax_rate="0.1"))
    token = sim.issue_token(SHOP)
    body = gql(sim, token, shopify_queries.ORDER_QUERY, {"id": "gid://shopify/Order/9", "linesAfter": None})
    order = body["data"]["order"]
    nodes = list(order["lineItems"]["nodes"])
    info = order["lineItems"]["pageInfo"]
    pages = 1
    while info["hasNextPage"]:
        more = gql(sim, token, shopify_queries.ORDER_LINES_QUERY, {"id": order["id"], "after": info["endCursor"]})
        assert "errors" not in more, more
        nodes += more["data"]["order"]["lineItems"]["nodes"]
        info = more["data"]["order"]["lineItems"]["pageInfo"]
        pages += 1
    assert pages == 1 + -(-(260 - shopify_queries.LINES_PAGE_SIZE) // shopify_queries.MORE_LINES_PAGE_SIZE)
    assert [n["sku"] for n in nodes] == [f"S{i}" for i in range(260)]
    order["lineItems"]["nodes"] = nodes
    check_totals(order)


def test_invalid_field_and_bad_input_answer_errors(sim):
    token = sim.issue_token(SHOP)
    body = gql(sim, token, '{ order(id: "gid://shopify/Order/1") { id bogusField } }')
    assert "data" not in body and "bogusField" in body["errors"][0]["message"]
    body = gql(sim, token, "query { shop { name ")
    assert body["errors"][0]["message"].startswith("Syntax Error")
    body = gql(sim, token, '{ order(id: "not-a-gid") { id } }')
    assert body["data"] == {"order": None} and "Invalid global id" in body["errors"][0]["message"]


def test_shop_isolation_and_shop_query(sim):
    sim.add_order(OTHER, sample_orders()[1])
    token = sim.issue_token(SHOP)
    body = gql(sim, token, '{ shop { name currencyCode myshopifyDomain } order(id: "gid://shopify/Order/2") { id } }')
    assert body["data"]["shop"] == {"name": "Demo Store", "currencyCode": "USD", "myshopifyDomain": SHOP}
    assert body["data"]["order"] is None
    other = gql(sim, sim.issue_token(OTHER), '{ order(id: "gid://shopify/Order/2") { id } }')
    assert other["data"]["order"] == {"id": "gid://shopify/Order/2"}


def test_orders_listing_filters_and_pages(sim):
    base = datetime(2024, 5, 1, tzinfo=UTC)
    for i in range(7):
        sim.add_order(SHOP, build_order(order_id=10 + i, number=1010 + i, created_at=base + timedelta(days=i),
                                        lines=[{"sku": "X", "title": "X", "quantity": 1, "price": "1.00"}]))
    sim.update_order(SHOP, 10, note="changed")      # oldest order, now the most recently updated
    token = sim.issue_token(SHOP)
    seen, after = [], None
    while True:
        body = gql(sim, token, shopify_queries.ORDERS_PAGE_QUERY,
                   {"first": 2, "after": after, "query": "updated_at:>=2024-05-03"})
        page = body["data"]["orders"]
        seen += [int(n["legacyResourceId"]) for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [12, 13, 14, 15, 16, 10]
    body = gql(sim, token, '{ orders(first: 10, query: "created_at:<2024-05-03", reverse: true) '
                           "{ nodes { legacyResourceId } } }")
    assert [n["legacyResourceId"] for n in body["data"]["orders"]["nodes"]] == ["11", "10"]


def test_mark_as_paid(sim):
    sim.add_order(SHOP, sample_orders()[1])  # pending
    token = sim.issue_token(SHOP)
    before = sim.get_order(SHOP, 2).updated_at
    variables = {"input": {"id": "gid://shopify/Order/2"}}
    result = gql(sim, token, shopify_queries.ORDER_MARK_AS_PAID, variables)["data"]["orderMarkAsPaid"]
    assert result["userErrors"] == []
    assert result["order"]["displayFinancialStatus"] == "PAID" and result["order"]["fullyPaid"] is True
    assert result["order"]["totalOutstandingSet"]["shopMoney"]["amount"] == "0.0"
    order = sim.get_order(SHOP, 2)
    assert order.updated_at > before and order.transactions[-1].amount == order.total
    again = gql(sim, token, shopify_queries.ORDER_MARK_AS_PAID, variables)["data"]["orderMarkAsPaid"]
    assert again["userErrors"] and again["userErrors"][0]["message"]


def test_throttling_with_cost_extensions(sim):
    sim.set_throttle(maximum_available=100, restore_rate=1)
    lines = [{"sku": f"S{i}", "title": "x", "quantity": 1, "price": "1.00"} for i in range(30)]
    sim.add_order(SHOP, build_order(order_id=5, number=1005, lines=lines))
    token = sim.issue_token(SHOP)
    query = '{ order(id: "gid://shopify/Order/5") { id lineItems(first: 30) { nodes { id variant { id } } } } }'
    first = gql(sim, token, query)
    cost = first["extensions"]["cost"]
    # the order 1, the connection 2 + 30 × (line item 1 + variant 1)
    assert cost["requestedQueryCost"] == cost["actualQueryCost"] == 63
    assert "errors" not in first and cost["throttleStatus"]["currentlyAvailable"] == 37
    throttled = gql(sim, token, query)
    assert throttled["errors"] == [{"message": "Throttled", "extensions": {
        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}]
    status = throttled["extensions"]["cost"]["throttleStatus"]
    assert status["currentlyAvailable"] < throttled["extensions"]["cost"]["requestedQueryCost"]
    assert status["maximumAvailable"] == 100.0 and status["restoreRate"] == 1.0
    sim.set_throttle(currently_available=100)
    assert "errors" not in gql(sim, token, query)


def test_auth_and_injected_faults(sim):
    err = http_error(sim, "wrong-token", "{ shop { name } }")
    assert err.code == 401
    err.close()
    invalid = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    assert raw_post(sim, None, "{ shop { name } }") == (401, invalid)
    assert raw_post(sim, "nope", "{ shop { name } }") == (401, invalid)
    token = sim.issue_token(SHOP, expires_in=60)
    sim.fail_next(429, retry_after=2, path_contains="graphql.json")
    err = http_error(sim, token, "{ shop { name } }")
    assert err.code == 429 and err.headers["Retry-After"] == "2"
    err.close()
    sim.fail_next(503)
    err = http_error(sim, token, "{ shop { name } }")
    assert err.code == 503
    err.close()
    assert gql(sim, token, "{ shop { name } }")["data"]["shop"]["name"] == "Demo Store"
    sim.expire_tokens()
    err = http_error(sim, token, "{ shop { name } }")
    assert err.code == 401
    err.close()


def test_update_order_bumps_updated_at_and_keeps_totals(sim):
    sim.add_order(SHOP, sample_orders()[2])  # partially paid
    before = sim.get_order(SHOP, 3).updated_at
    order = sim.update_order(SHOP, 3, financial_status="paid", email="new@example.com", shipping="4.00")
    assert order.updated_at > before and order.financial_status == "paid" and order.outstanding == 0
    g = gql(sim, sim.issue_token(SHOP), shopify_queries.ORDER_QUERY,
            {"id": "gid://shopify/Order/3", "linesAfter": None})["data"]["order"]
    check_totals(g)
    assert g["email"] == "new@example.com" and g["displayFinancialStatus"] == "PAID"


def test_a_query_over_1000_points_is_refused_whole_and_charges_nothing(sim):
    sim.add_order(SHOP, sample_orders()[0])
    token = sim.issue_token(SHOP)
    # 2 + 250 × (order 1 + lineItems 2 + 250 × line 1): far over the ceiling, though the shop has one order
    query = "{ orders(first: 250) { nodes { id lineItems(first: 250) { nodes { id } } } } }"
    body = gql(sim, token, query)
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] == 2 + 250 * (1 + 2 + 250) and error["extensions"]["maxCost"] == 1000
    assert error["message"].startswith(f"Query cost is {2 + 250 * 253}, which exceeds the single query max cost "
                                       "limit (1000).")
    status = body["extensions"]["cost"]["throttleStatus"]
    assert status["currentlyAvailable"] == status["maximumAvailable"] == 2000.0   # nothing was charged
    # the same shape one page smaller fits, runs and is charged
    small = "{ orders(first: 3) { nodes { id lineItems(first: 100) { nodes { id } } } } }"
    assert gql(sim, token, small)["extensions"]["cost"]["requestedQueryCost"] == 2 + 3 * 103 <= MAX_QUERY_COST


def test_the_bucket_pays_the_requested_cost_and_is_refunded_to_the_actual(sim):
    sim.set_throttle(maximum_available=1000, restore_rate=0.001)
    sim.add_order(SHOP, sample_orders()[0])   # two lines
    token = sim.issue_token(SHOP)
    query = '{ order(id: "gid://shopify/Order/1") { id lineItems(first: 30) { nodes { id variant { id } } } } }'
    cost = gql(sim, token, query)["extensions"]["cost"]
    # requested: the order 1 + 2 + 30 × 2; actual: the order 1 + 2 + 2 lines × (line 1 + variant 1)
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (63, 7)
    assert cost["throttleStatus"]["currentlyAvailable"] == 1000 - 7
    # a query the bucket cannot pay up front is throttled, although it would actually cost little
    sim.set_throttle(currently_available=50)
    assert gql(sim, token, query)["errors"][0]["extensions"]["code"] == "THROTTLED"


def test_the_hubs_largest_batch_fits_and_one_more_order_does_not(sim):
    for i in range(shopify_bulk_queries.BY_ID_MAX + 1):
        sim.add_order(SHOP, build_order(order_id=100 + i, number=2000 + i, customer=CUSTOMER,
                                        lines=[{"sku": "X", "title": "X", "quantity": 1, "price": "2.00"}]))
    token = sim.issue_token(SHOP)
    n = shopify_bulk_queries.BY_ID_MAX
    body = gql(sim, token, shopify_bulk_queries.orders_by_id_query(n),
               {f"id{i}": f"gid://shopify/Order/{100 + i}" for i in range(n)})
    assert "errors" not in body, body
    assert [body["data"][f"o{i}"]["legacyResourceId"] for i in range(n)] == [str(100 + i) for i in range(n)]
    assert body["extensions"]["cost"]["requestedQueryCost"] == n * shopify_bulk_queries.ORDER_COST
    # the same document with one more alias is over Shopify's ceiling
    params = ", ".join(f"$id{i}: ID!" for i in range(n + 1))
    fields = " ".join(f"o{i}: order(id: $id{i}) {{ ...HubOrderFields }}" for i in range(n + 1))
    over = f"query HubOrdersById({params}) {{ {fields} }}" + shopify_bulk_queries.ORDER_FIELDS
    body = gql(sim, token, over, {f"id{i}": f"gid://shopify/Order/{100 + i}" for i in range(n + 1)})
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


def test_refunds_are_served_with_paged_lines(sim):
    lines = [{"sku": f"S{i}", "title": f"Item {i}", "quantity": 2, "price": "3.00"} for i in range(12)]
    order = sim.add_order(SHOP, build_order(order_id=7, number=1007, customer=CUSTOMER, lines=lines))
    refund = sim.refund_order(SHOP, 7, {i: 1 for i in range(12)}, note="damaged")
    token = sim.issue_token(SHOP)
    gid = f"gid://shopify/Refund/{refund['id']}"
    body = gql(sim, token, f'{{ refund(id: "{gid}") {{ id note refundLineItems(first: 5) {{ pageInfo {{ '
                           "hasNextPage endCursor } nodes { quantity lineItem { id } } } } }")
    got = body["data"]["refund"]
    assert got["id"] == gid and got["note"] == "damaged"
    page = got["refundLineItems"]
    assert len(page["nodes"]) == 5 and page["pageInfo"]["hasNextPage"] is True
    more = gql(sim, token, shopify_queries.REFUND_LINES_QUERY, {"id": gid, "after": page["pageInfo"]["endCursor"]})
    rest = more["data"]["refund"]["refundLineItems"]
    assert len(rest["nodes"]) == 7 and rest["pageInfo"]["hasNextPage"] is False
    assert {n["lineItem"]["id"] for n in page["nodes"] + rest["nodes"]} == {
        f"gid://shopify/LineItem/{ln.id}" for ln in order.lines}
    assert gql(sim, token, '{ refund(id: "gid://shopify/Refund/1") { id } }')["data"] == {"refund": None}
