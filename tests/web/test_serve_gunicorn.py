"""`o2c serve` under gunicorn with several workers: every webhook is stored once and synced once, the jobs
running in the one job process of the embedded mode."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.demo.test_demo_and_serve import _free_port, _healthy
from tests.helpers import an_order, count_events, wait_until, webhook

O2C = str(Path(sys.executable).parent / "o2c")


@pytest.mark.slow
def test_o2c_serve_under_gunicorn_with_two_workers(make_hub, shop_factory, platforms, tmp_path) -> None:  # noqa: ANN001
    hub = make_hub()
    shop = shop_factory(hub)
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([O2C, "serve", "--port", str(port), "--workers", "2"], env=dict(os.environ),
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base), timeout=30)
        orders = [an_order(460_001 + i, 3001 + i, email=f"b{i % 3}@example.com") for i in range(12)]
        for o in orders:
            platforms.shopify.add_order(shop.domain, o)
        deliveries = [webhook(o, shop.domain) for o in orders]
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda d: requests.post(f"{base}/webhooks/shopify", data=d[0], headers=d[1],
                                                             timeout=10).status_code, deliveries))
        assert statuses == [200] * len(orders)
        assert count_events(hub) == len(orders)
        wait_until(lambda: len(platforms.quickbooks.objects(shop.realm, "Payment")) == len(orders), timeout=60)
        docs = sorted(i["DocNumber"] for i in platforms.quickbooks.objects(shop.realm, "Invoice"))
        assert docs == sorted(str(o.number) for o in orders)
        assert len(platforms.quickbooks.objects(shop.realm, "Customer")) == 3
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert "Traceback" not in (tmp_path / "serve.log").read_text(errors="replace")
