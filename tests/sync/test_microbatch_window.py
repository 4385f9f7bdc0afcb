"""The micro-batch window (``sync.microbatch``) opens only while a burst is under way: a lone order goes at
once, however long the window; the order runs of a burst wait for each other."""

from __future__ import annotations

from hub.models import Binding, SyncRun, WebhookEvent
from sync import runs
from sync.microbatch import burst_under_way
from tests.helpers import an_order, settled, webhook
from web.app import create_app


def _open(hub, shop, order_ids: list[int]) -> list[int]:  # noqa: ANN001
    ids = []
    with hub.session() as s:
        for order_id in order_ids:
            run, _ = runs.open_run(s, merchant_id=shop.merchant_id, kind="order", platform="shopify",
                                   source_id=str(order_id), source_name=f"#{order_id}", trigger="test")
            ids.append(run.id)
        s.commit()
    return ids


def test_a_lone_order_is_invoiced_without_waiting_for_the_window(make_hub, shop_factory, platforms) -> None:  # noqa: ANN001
    hub = make_hub(O2C_BATCH_WINDOW="120")   # were the window opened, the order would wait two minutes
    shop = shop_factory(hub)
    order = an_order(order_id=470_001, number=4001)
    platforms.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert create_app(hub).test_client().post("/webhooks/shopify", data=body, headers=headers).status_code == 200

    [run] = settled(hub, timeout=60)

    assert run.status == "succeeded", run.reason
    with hub.session() as s:
        invoice = s.query(Binding).filter_by(source_type="order", source_id=str(order.order_id),
                                             target_type="invoice").one()
    assert platforms.quickbooks.objects(shop.realm, "Invoice")[0]["Id"] == invoice.target_id


def test_a_burst_is_told_from_a_lone_order_by_the_runs_waiting(make_hub, shop_factory) -> None:  # noqa: ANN001
    hub = make_hub()
    shop, other = shop_factory(hub), shop_factory(hub)
    assert burst_under_way(hub, shop.merchant_id) is None           # nothing waiting
    ids = _open(hub, shop, [480_001])
    assert burst_under_way(hub, shop.merchant_id) is None           # a lone order
    ids += _open(hub, shop, [480_002, 480_003])
    assert burst_under_way(hub, other.merchant_id) is None          # another merchant's burst is not its own
    with hub.session() as s:
        oldest = min(s.get(SyncRun, i).updated_at for i in ids)
    assert burst_under_way(hub, shop.merchant_id) == oldest         # the window counts from the oldest


def test_the_drainer_routes_its_merchants_stored_webhooks_and_syncs_them_in_its_batch(  # noqa: ANN201
        make_hub, shop_factory, platforms):  # noqa: ANN001
    import json

    from hub.inbox import Delivery
    from sync.microbatch import run

    hub = make_hub()
    shop, other = shop_factory(hub), shop_factory(hub)
    first, waiting, others = (an_order(order_id=495_001 + n, number=4201 + n) for n in range(3))
    for order, where in ((first, shop), (waiting, shop), (others, other)):
        platforms.shopify.add_order(where.domain, order)
    # two webhooks stored by the receivers whose routing jobs still wait for a free worker
    for order, where in ((waiting, shop), (others, other)):
        assert hub.inbox.insert(Delivery(platform="shopify", delivery_id=f"d-{order.order_id}",
                                         topic="orders/create", account=where.domain,
                                         payload=json.dumps(order.webhook_body())))
    [run_id] = _open(hub, shop, [first.order_id])

    assert run(run_id, hub=hub) == "succeeded"

    invoiced = {i["DocNumber"] for i in platforms.quickbooks.objects(shop.realm, "Invoice")}
    assert invoiced == {str(first.number), str(waiting.number)}      # the stored one joined the drain
    assert platforms.quickbooks.objects(other.realm, "Invoice") == []  # another merchant's is left to its job
    with hub.session() as s:
        statuses = {e.account: e.status for e in s.query(WebhookEvent)}
    assert statuses[other.domain] == "received"
