"""Small helpers the end-to-end tests share."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from demo.simulators.shopify import webhook_headers
from demo.simulators.shopify_orders import ShopifyOrder, build_order
from hub.models import SyncRun, WebhookEvent
from hub.runtime import Hub
from tests.conftest import SHOPIFY_SECRET

OPEN = ("pending", "running", "retrying")


def an_order(order_id: int = 450_001, number: int = 1001, *, financial_status: str = "paid",
             email: str | None = "ada@example.com", **kw: Any) -> ShopifyOrder:
    spec: dict[str, Any] = dict(
        lines=[{"sku": "TEE-BLK-M", "title": "Black tee", "quantity": 2, "price": "24.00"},
               {"sku": "MUG-1", "title": "Mug", "quantity": 1, "price": "12.50", "discount": "2.50"}],
        shipping="5.00", order_discount="3.00", tax_rate="0.08",
        customer={"id": 880_001, "first_name": "Ada", "last_name": "Lovelace", "email": email})
    spec.update(kw)
    return build_order(order_id=order_id, number=number, email=email, financial_status=financial_status, **spec)


def webhook(order: ShopifyOrder, shop: str, topic: str = "orders/create", *, webhook_id: str | None = None,
            secret: str = SHOPIFY_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(order.webhook_body()).encode()
    return body, webhook_headers(shop, topic, body, secret, webhook_id=webhook_id)


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def settled(hub: Hub, timeout: float = 30.0) -> list[SyncRun]:
    """Wait until no run is open and no stored webhook waits for its run (``received``: routed by a job in
    ``o2c serve`` and scale-out); returns every run."""
    def done() -> bool:
        with hub.session() as s:
            return not s.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.status.in_(OPEN))) \
                and not s.scalar(select(func.count()).select_from(WebhookEvent).where(
                    WebhookEvent.status == "received"))
    wait_until(done, timeout)
    with hub.session() as s:
        return list(s.scalars(select(SyncRun).order_by(SyncRun.id)))


def count_events(hub: Hub) -> int:
    with hub.session() as s:
        return s.scalar(select(func.count()).select_from(WebhookEvent)) or 0


def count_runs(hub: Hub) -> int:
    with hub.session() as s:
        return s.scalar(select(func.count()).select_from(SyncRun)) or 0


@contextlib.contextmanager
def served(app: Flask) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 over real HTTP (so simulated platforms can call it); yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
