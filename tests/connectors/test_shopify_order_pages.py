"""Reading a whole Shopify order when it does not fit one query: ``ShopifyClient.fetch_order`` over real
HTTP against the simulator, which prices every query by Shopify's rules and refuses one over 1,000
points, and ``complete_order`` on the connections the simulator cannot produce."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connectors import shopify_queries as q
from connectors.errors import Permanent, Retryable
from connectors.shopify import ShopifyClient
from connectors.shopify_order_pages import complete_order
from demo.simulators.shopify import ShopifySimulator
from demo.simulators.shopify_cost import MAX_QUERY_COST
from demo.simulators.shopify_orders import build_order
from mappings.shopify import order_from_graphql

SHOP = "pages-store.myshopify.com"
CUSTOMER = {"id": 77, "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com"}


@pytest.fixture(scope="module")
def server():
    s = ShopifySimulator().start()
    yield s
    s.stop()


@pytest.fixture
def sim(server: ShopifySimulator) -> ShopifySimulator:
    server.reset()
    server.add_shop(SHOP)
    return server


def client(sim: ShopifySimulator) -> ShopifyClient:
    return ShopifyClient(SHOP, sim.issue_token(SHOP), api_url=sim.url, timeout=10)


def big_order(sim: ShopifySimulator) -> Any:
    """130 lines, 24 transactions, 5 refunds (one of 12 lines): more of everything than ORDER_QUERY holds."""
    lines = [{"sku": f"SKU-{i}", "title": f"Item {i}", "quantity": 3, "price": "4.00"} for i in range(130)]
    order = sim.add_order(SHOP, build_order(order_id=4242, number=4242, customer=CUSTOMER, lines=lines,
                                            shipping="6.00", tax_rate="0.05"))
    for _ in range(q.TRANSACTIONS_PAGE_SIZE + 2):
        order.add_transaction("AUTHORIZATION", Decimal("1.00"), status="FAILURE")
    sim.refund_order(SHOP, 4242, {i: 1 for i in range(q.REFUND_LINES_PAGE_SIZE + 2)}, note="first")
    for k in range(1, 5):
        sim.refund_order(SHOP, 4242, {20 + k: 2}, shipping=(k == 4))
    return order


def test_an_order_larger_than_one_query_is_read_whole(sim: ShopifySimulator) -> None:
    sim.set_throttle(maximum_available=20_000, currently_available=20_000, domain=SHOP)  # pages back to back
    order = big_order(sim)
    fetched = client(sim).fetch_order("4242")
    assert fetched is not None
    mapped = order_from_graphql(*fetched)
    assert [ln.sku for ln in mapped.lines] == [f"SKU-{i}" for i in range(130)]
    raw = fetched[0]
    assert len(raw["transactions"]) == len(order.transactions) > q.TRANSACTIONS_PAGE_SIZE
    assert [r.note for r in mapped.refunds] == ["first", None, None, None, None]
    assert [len(r.lines) for r in mapped.refunds] == [q.REFUND_LINES_PAGE_SIZE + 2, 1, 1, 1, 1]
    assert mapped.refunds[-1].shipping > 0
    assert sum((r.amount for r in mapped.refunds), Decimal("0")) == order.refunded
    # every query the hub sent was priced under Shopify's ceiling, and the follow-ups were the cheap ones
    sent = [(name, cost, code) for shop, name, cost, code in sim.operations if shop == SHOP]
    assert all(cost <= MAX_QUERY_COST and code is None for _, cost, code in sent), sent
    names = [name for name, _, _ in sent]
    assert names[0] == "HubOrder"
    assert names.count("HubOrderLines") == -(-(130 - q.LINES_PAGE_SIZE) // q.MORE_LINES_PAGE_SIZE)
    assert names.count("HubOrderTransactions") == 1 and names.count("HubOrderRefunds") == 1
    assert names.count("HubRefund") == 5 - q.REFUNDS_PAGE_SIZE   # the refunds ORDER_QUERY did not hold
    assert names.count("HubRefundLines") == 1                    # the rest of the first refund's lines


def test_a_small_order_takes_one_query(sim: ShopifySimulator) -> None:
    sim.add_order(SHOP, build_order(order_id=5, number=1005, customer=CUSTOMER,
                                    lines=[{"sku": "MUG", "title": "Mug", "quantity": 1, "price": "9.00"}]))
    order, extra = client(sim).fetch_order("5")
    assert extra == [] and order_from_graphql(order).total == Decimal("9.00")
    assert [name for _, name, _, _ in sim.operations] == ["HubOrder"]


def test_a_throttled_follow_up_page_waits_instead_of_failing_the_order(sim: ShopifySimulator) -> None:
    # a bucket smaller than the order's pages together: they can only pass one after another. It restores
    # 200 points/s, so the last page, sent within ~1.6 s of the one before, finds the bucket short (at
    # 2,000/s it refilled in 0.25 s: a page sent that late on a loaded machine was never THROTTLED)
    sim.set_throttle(maximum_available=1200, restore_rate=200)
    lines = [{"sku": f"S{i}", "title": f"Item {i}", "quantity": 1, "price": "1.00"} for i in range(150)]
    sim.add_order(SHOP, build_order(order_id=6, number=1006, lines=lines))
    fetched = client(sim).fetch_order("6")
    assert fetched is not None and len(order_from_graphql(*fetched).lines) == 150
    codes = [code for _, name, _, code in sim.operations]
    assert "THROTTLED" in codes and codes[-1] is None


def test_a_query_over_the_ceiling_is_a_permanent_error(sim: ShopifySimulator) -> None:
    with pytest.raises(Permanent) as info:
        client(sim).graphql("query HubTooBig { orders(first: 250) { nodes { "
                            "lineItems(first: 250) { nodes { id } } } } }")
    assert info.value.code == "MAX_COST_EXCEEDED"
    assert str(info.value).startswith("shopify: Query cost is 63252, which exceeds the single query max cost limit")


def test_summaries_pages_are_capped_to_fit(sim: ShopifySimulator) -> None:
    for i in range(3):
        sim.add_order(SHOP, build_order(order_id=10 + i, number=1010 + i,
                                        lines=[{"sku": "X", "title": "X", "quantity": 1, "price": "1.00"}]))
    nodes, after = client(sim).order_summaries_page(query=None, after=None, first=250)
    assert len(nodes) == 3 and after is None
    assert [c for _, _, c, _ in sim.operations] == [3 + 100 * 7]


# -- connections and limits the simulator does not produce -------------------------------------------
def page(nodes: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
    return {"nodes": nodes, "pageInfo": {"hasNextPage": cursor is not None, "endCursor": cursor}}


class FakeShop:
    """Answers the follow-up documents from canned pages, and records what was asked."""

    def __init__(self, answers: dict[tuple[str, str | None], dict[str, Any]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, Any]] = []

    def __call__(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        name = query.split("(")[0].split()[-1]
        self.asked.append((name, variables.get("after")))
        return self.answers[(name, variables.get("after"))]


def test_shipping_lines_and_refund_shipping_lines_are_paged() -> None:
    order = {"id": "gid://shopify/Order/1", "lineItems": page([{"id": "l1"}], None),
             "shippingLines": page([{"title": "A"}], "s1"), "transactions": [],
             "refunds": [{"id": "gid://shopify/Refund/9", "refundLineItems": page([], None),
                          "refundShippingLines": page([{"n": 1}], "r1")}]}
    shop = FakeShop({
        ("HubOrderShippingLines", "s1"): {"order": {"shippingLines": page([{"title": "B"}], "s2")}},
        ("HubOrderShippingLines", "s2"): {"order": {"shippingLines": page([{"title": "C"}], None)}},
        ("HubRefundShippingLines", "r1"): {"refund": {"refundShippingLines": page([{"n": 2}], None)}},
    })
    assert complete_order(shop, order, "order 1") == []
    assert [s["title"] for s in order["shippingLines"]["nodes"]] == ["A", "B", "C"]
    assert order["shippingLines"]["pageInfo"]["hasNextPage"] is False
    assert [s["n"] for s in order["refunds"][0]["refundShippingLines"]["nodes"]] == [1, 2]
    assert [a for a, _ in shop.asked] == ["HubOrderShippingLines", "HubOrderShippingLines", "HubRefundShippingLines"]


def test_more_than_the_hub_can_read_is_refused_not_cut_short() -> None:
    order = {"id": "gid://shopify/Order/1", "lineItems": page([], None), "shippingLines": page([], None),
             "transactions": [{}] * q.TRANSACTIONS_PAGE_SIZE, "refunds": []}
    shop = FakeShop({("HubOrderTransactions", None): {"order": {"transactions": [{}] * q.TRANSACTIONS_MAX}}})
    with pytest.raises(Permanent, match="transactions"):
        complete_order(shop, order, "order 1")
    endless = {"id": "gid://shopify/Order/1", "lineItems": page([], "c"), "shippingLines": page([], None),
               "transactions": [], "refunds": []}
    loop = FakeShop({("HubOrderLines", "c"): {"order": {"lineItems": page([{"id": "x"}], "c")}}})
    with pytest.raises(Permanent, match="lineItems"):
        complete_order(loop, endless, "order 1")


def test_throttling_is_waited_out_a_bounded_number_of_times() -> None:
    waits: list[float] = []
    order = {"id": "gid://shopify/Order/1", "lineItems": page([], "c"), "shippingLines": page([], None),
             "transactions": [], "refunds": []}

    def always_throttled(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        raise Retryable("Shopify throttled the query", platform="shopify", code="THROTTLED", retry_after=3.0)

    with pytest.raises(Retryable):
        complete_order(always_throttled, order, "order 1", sleep=waits.append)
    assert waits == [3.0] * 4
