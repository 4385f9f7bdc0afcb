"""Scale-out mode: PostgreSQL, a real Redis and real `o2c worker` processes, including the races that
must still end with exactly one contact, customer, invoice and payment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from hub.models import Binding, SyncRun
from tests.helpers import an_order, count_events, settled, wait_until, webhook
from web.app import create_app

pytestmark = pytest.mark.slow
O2C = str(Path(sys.executable).parent / "o2c")


class Workers:
    """`o2c worker` processes started the way an operator starts them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []
        self._logs: list = []

    def start(self, *args: str) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed in stop_all
        self._logs.append(log)
        # its own process group: rq's scheduler runs in a child process, which a kill must take along
        proc = subprocess.Popen([O2C, "worker", *args], env=dict(os.environ), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """The worker dies at once, as a host that loses power: the whole process group, no clean-up."""
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)   # whatever of the group is left (rq's scheduler child)
            proc.wait(timeout=10)
        for log in self._logs:
            log.close()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("worker-*.log")))


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def scale_out(make_hub, shop_factory, platforms, postgres_url, redis_url, tmp_path) -> Iterator[tuple]:  # noqa: ANN001
    hub = make_hub(database_url=postgres_url, redis_url=redis_url)
    assert hub.settings.scale_out
    shop = shop_factory(hub)
    client = create_app(hub).test_client()
    workers = Workers(tmp_path)
    yield hub, client, shop, platforms, workers
    workers.stop_all()


def _one_of_each(p, shop, order) -> dict:  # noqa: ANN001
    [contact] = p.hubspot.contacts(shop.portal)
    [customer] = p.quickbooks.objects(shop.realm, "Customer")
    [invoice] = p.quickbooks.objects(shop.realm, "Invoice")
    [payment] = p.quickbooks.objects(shop.realm, "Payment")
    assert Decimal(str(invoice["TotalAmt"])) == order.total
    return {"contact": contact, "customer": customer, "invoice": invoice, "payment": payment}


def _post_at_once(client, deliveries: list[tuple[bytes, dict]]) -> list[int]:  # noqa: ANN001
    barrier = threading.Barrier(len(deliveries))
    statuses: list[int] = []

    def post(body: bytes, headers: dict) -> None:
        barrier.wait()
        statuses.append(client.post("/webhooks/shopify", data=body, headers=headers).status_code)

    threads = [threading.Thread(target=post, args=d) for d in deliveries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def test_an_order_syncs_through_rq_and_a_worker_process(scale_out) -> None:  # noqa: ANN001
    hub, client, shop, p, workers = scale_out
    order = an_order()
    p.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    queued = redis.Redis.from_url(hub.settings.redis_url).llen(f"rq:queue:{hub.settings.queue_name}")
    assert queued == 1  # the web app only enqueued: the work happens in the worker process
    workers.start()
    [run] = settled(hub, timeout=60)
    assert run.status == "succeeded", (run.reason, workers.logs())
    _one_of_each(p, shop, order)


def test_same_order_delivered_three_times_at_once_to_two_workers(scale_out) -> None:  # noqa: ANN001
    hub, client, shop, p, workers = scale_out
    p.quickbooks.latency = 0.02  # widen every race window a little
    order = an_order()
    p.shopify.add_order(shop.domain, order)
    workers.start()
    workers.start()
    first = webhook(order, shop.domain, webhook_id="delivery-1")
    deliveries = [first, first, webhook(order, shop.domain, webhook_id="delivery-2"),
                  webhook(order, shop.domain, "orders/paid", webhook_id="delivery-3")]
    assert _post_at_once(client, deliveries) == [200, 200, 200, 200]
    runs = settled(hub, timeout=60)
    assert {r.status for r in runs} == {"succeeded"}, [(r.status, r.reason) for r in runs]
    assert count_events(hub) == 3
    _one_of_each(p, shop, order)


def test_orders_updated_racing_orders_create(scale_out) -> None:  # noqa: ANN001
    hub, client, shop, p, workers = scale_out
    order = an_order(financial_status="pending")
    p.shopify.add_order(shop.domain, order)
    workers.start()
    workers.start()
    created = webhook(order, shop.domain, "orders/create")
    p.shopify.update_order(shop.domain, order.order_id, financial_status="paid")
    updated = webhook(p.shopify.get_order(shop.domain, order.order_id), shop.domain, "orders/updated")
    assert _post_at_once(client, [updated, created]) == [200, 200]
    runs = settled(hub, timeout=60)
    assert {r.status for r in runs} == {"succeeded"}, [(r.status, r.reason) for r in runs]
    _one_of_each(p, shop, order)


def test_worker_killed_between_the_quickbooks_create_and_the_commit(scale_out) -> None:  # noqa: ANN001
    hub, client, shop, p, workers = scale_out
    order = an_order()
    p.shopify.add_order(shop.domain, order)
    # QuickBooks creates the invoice, then takes 8 s to answer: the worker dies in that window
    p.quickbooks.hold_response_next(8, path_contains="/invoice")
    doomed = workers.start()
    body, headers = webhook(order, shop.domain)
    client.post("/webhooks/shopify", data=body, headers=headers)
    wait_until(lambda: p.quickbooks.objects(shop.realm, "Invoice"), timeout=60)
    workers.kill(doomed)
    with hub.session() as s:
        run = s.scalar(select(SyncRun))
        assert run.status == "running"
        assert s.scalar(select(Binding).where(Binding.target_type == "invoice")) is None

    workers.start()  # its sweeper finds the run whose lease lapsed
    [run] = settled(hub, timeout=60)
    assert run.status == "succeeded", (run.reason, workers.logs())
    assert run.attempts == 2
    made = _one_of_each(p, shop, order)
    with hub.session() as s:
        bound = s.scalar(select(Binding).where(Binding.target_type == "invoice"))
        assert bound.target_id == made["invoice"]["Id"]


def test_a_lost_queue_message_is_recovered_by_the_sweeper(scale_out) -> None:  # noqa: ANN001
    hub, client, shop, p, workers = scale_out
    order = an_order()
    p.shopify.add_order(shop.domain, order)
    body, headers = webhook(order, shop.domain)
    client.post("/webhooks/shopify", data=body, headers=headers)
    r = redis.Redis.from_url(hub.settings.redis_url)
    r.flushdb()  # Redis restarted without persistence: the queued job is gone
    workers.start()
    [run] = settled(hub, timeout=60)
    assert run.status == "succeeded", (run.reason, workers.logs())
    _one_of_each(p, shop, order)
