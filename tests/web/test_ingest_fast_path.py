"""The Shopify receiver's fast path (``hub.inbox.InboxWriter`` + ``sync.routing``): deliveries sent at once
are each stored exactly once (a duplicate in the same group commit included), an unknown or disconnected
shop stores nothing, and a delivery whose hand-over to the job was lost is routed by the sweeper."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from sqlalchemy import select, update

from hub.inbox import RECEIVED, Delivery
from hub.models import Connection, SyncRun, WebhookEvent, utcnow
from sync import routing
from tests.helpers import an_order, settled, webhook
from web.app import create_app


def _delivery(shop: str, n: int, topic: str = "orders/create") -> Delivery:
    body = an_order(470_000 + n, 4000 + n).webhook_body()
    return Delivery(platform="shopify", delivery_id=f"delivery-{n}", topic=topic, account=shop,
                    payload=json.dumps(body))


def test_deliveries_sent_at_once_are_stored_once_each(make_hub, shop_factory, database_url) -> None:  # noqa: ANN001
    hub = make_hub(database_url)
    shop = shop_factory(hub)
    results: list[tuple[int, int | None]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def send(worker: int) -> None:
        barrier.wait()
        for n in range(10):          # every delivery twice: by this thread and by its neighbour
            number = (worker * 5 + n) % 60
            event_id = hub.inbox.insert(_delivery(shop.domain, number))
            with lock:
                results.append((number, event_id))

    threads = [threading.Thread(target=send, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = {n: e for n, e in results if e is not None}
    assert sorted(stored) == list(range(60))                     # each delivery stored by one sender
    assert sum(1 for _n, e in results if e is None) == 120 - 60  # the other one heard "stored already"
    with hub.session() as s:
        rows = s.execute(select(WebhookEvent.id, WebhookEvent.delivery_id, WebhookEvent.status,
                                WebhookEvent.merchant_id)).all()
    assert sorted(r.id for r in rows) == sorted(stored.values())
    assert {(r.status, r.merchant_id) for r in rows} == {(RECEIVED, shop.merchant_id)}
    assert hub.inbox.known("shopify", shop.domain)


def test_an_unknown_or_disconnected_shop_stores_nothing(make_hub, shop_factory, database_url) -> None:  # noqa: ANN001
    hub = make_hub(database_url)
    shop = shop_factory(hub)
    assert hub.inbox.insert(_delivery("nobody.myshopify.com", 1)) is None
    assert not hub.inbox.known("shopify", "nobody.myshopify.com")
    with hub.session() as s:
        s.execute(update(Connection).where(Connection.account == shop.domain).values(status="disconnected"))
    assert hub.inbox.insert(_delivery(shop.domain, 2)) is None
    assert not hub.inbox.known("shopify", shop.domain)
    client = create_app(hub).test_client()
    body, headers = webhook(an_order(), shop.domain)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 404
    with hub.session() as s:
        assert s.scalars(select(WebhookEvent)).all() == []


def test_a_lost_hand_over_is_routed_by_the_sweeper(make_hub, shop_factory, platforms) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    order = an_order(471_001, 5001)
    platforms.shopify.add_order(shop.domain, order)
    event_id = hub.inbox.insert(Delivery(platform="shopify", delivery_id="lost-1", topic="orders/create",
                                         account=shop.domain, payload=json.dumps(order.webhook_body())))
    assert event_id is not None      # stored, and nobody was told: the nudge or queue message was lost
    with hub.session() as s:
        s.execute(update(WebhookEvent).values(received_at=utcnow() - timedelta(seconds=routing.GRACE + 1)))
    assert hub.dispatcher.sweep() >= 1
    [run] = settled(hub)
    assert (run.status, run.source_id) == ("succeeded", str(order.order_id)), run.reason
    with hub.session() as s:
        event = s.get(WebhookEvent, event_id)
        assert (event.status, event.sync_run_id) == ("queued", run.id)
    assert routing.route_event(hub, event_id) is None            # routed once: a second router finds nothing
    with hub.session() as s:
        assert len(s.scalars(select(SyncRun)).all()) == 1


def test_a_connection_in_use_when_the_postgres_inbox_closes_is_closed_when_given_back(postgres_url) -> None:  # noqa: ANN001
    from hub.inbox import PostgresInbox

    inbox = PostgresInbox(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    idle, busy = inbox._take(), inbox._take()
    inbox._give(idle)
    inbox.close()            # the hub closes while a request still has ``busy``
    inbox._give(busy)
    assert idle.closed and busy.closed and inbox._idle == []   # none left open for the garbage collector
