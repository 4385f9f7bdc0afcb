"""What a newcomer runs first: ``o2c demo``; and ``o2c serve`` as an operator starts it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests

from demo.run import run_demo
from tests.helpers import an_order, wait_until, webhook

O2C = str(Path(sys.executable).parent / "o2c")


def test_demo_syncs_every_order_exactly_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2C_INSTANCE_PATH", str(tmp_path))
    for var in ("O2C_DATABASE_URL", "O2C_REDIS_URL", "SHOPIFY_API_SECRET", "O2C_ENCRYPTION_KEY"):
        monkeypatch.delenv(var, raising=False)
    summary = run_demo(orders=12, quiet=True, seed=3)
    shop, cafe = summary["stores"]["shopify"], summary["stores"]["woocommerce"]
    assert summary["failures"] == []
    assert set(summary["runs"]) == {"succeeded"} and summary["runs"]["succeeded"] >= 12 + cafe["orders"]
    assert (shop["orders"], shop["synced"], shop["invoices"], shop["invoiced_once"]) == (12, 12, 12, 12)
    assert summary["invoices"] == 12 + cafe["orders"] and summary["invoice_total_mismatches"] == 0
    assert 0 < summary["payments"] <= summary["invoices"]
    assert summary["webhooks_duplicate"] >= 1 and summary["forged_rejected"]
    assert summary["contacts"] >= 1 and summary["customers"] >= summary["contacts"]
    # the WooCommerce store, connected by the hub, sent its orders by its own signed webhooks: each order
    # is invoiced exactly once (a checkout's order.updated included), at the order's total
    assert summary["woocommerce_webhooks_registered"] == 4
    assert summary["woocommerce_deliveries"] > cafe["orders"] >= 6
    assert summary["woocommerce_deliveries_ok"] == summary["woocommerce_deliveries"]
    assert cafe["synced"] == cafe["invoices"] == cafe["invoiced_once"] == cafe["orders"]
    assert cafe["invoice_total_mismatches"] == 0 and 0 < cafe["payments"] < cafe["orders"]
    # the first third of the Shopify orders shipped: their invoices carry the tracking; one deal per order
    assert summary["orders_shipped"] == 4 and summary["shipped_invoices"] >= 4
    assert 12 <= summary["deals"] <= 12 + cafe["orders"]   # every order whose buyer has an e-mail
    assert summary["seconds"] < 60  # the demo runs in CI: it must stay quick (about 15 s here)
    # Shopify Payments pays the captured orders out: one deposit equal to the payout to the cent
    payout = summary["payout"]
    assert payout["deposit_id"] and payout["tied_out"] and payout["deposit_total"] == payout["net"]
    # the receivables scene: the wholesale buyer's overdue invoice is chased, their next order held
    scene = summary["receivables"]
    assert scene["overdue"]["days"] == 15 and scene["overdue"]["stage"] == "overdue"
    assert scene["shopify_on_hold"] and [h["orders"] for h in scene["holds"]] == [["#1902"]]


@pytest.mark.slow
def test_o2c_demo_on_a_bare_machine(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("O2C_", "SHOPIFY_", "QUICKBOOKS_", "HUBSPOT_"))}
    done = subprocess.run([O2C, "demo", "--orders", "8"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "QuickBooks invoices:        14 (totals equal to the orders' to the cent: 14/14)" in out
    assert "exactly one per order:    Shopify 8/8, WooCommerce 6/6" in out
    assert "Orders synced per store:    Shopify 8/8, WooCommerce 6/6" in out
    assert "Failures:                   0" in out
    assert "http://127.0.0.1:" in out
    # the receivables scene: two more Shopify orders of a buyer on net 30, one overdue, the other held
    assert "days overdue (420.00; dunning stage overdue)" in out
    assert "Credit hold:                #1902 held from fulfilment in Shopify (on hold: True)" in out
    assert (tmp_path / "instance" / "o2c.sqlite3").exists()
    assert (tmp_path / "instance" / "encryption.key").stat().st_mode & 0o777 == 0o600
    listed = subprocess.run([O2C, "syncs", "list", "--json"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0
    runs = json.loads(listed.stdout)
    sources = {(r["source"]["platform"], r["source"]["id"]) for r in runs}
    assert sorted(Counter(platform for platform, _ in sources).items()) == [("shopify", 8 + 2), ("woocommerce", 6)]
    assert {r["status"] for r in runs} == {"succeeded"}
    ledger = subprocess.run([O2C, "orders", "list", "--json"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert ledger.returncode == 0, ledger.stderr
    orders = json.loads(ledger.stdout)
    assert sorted(Counter(o["platform"] for o in orders).items()) == [("shopify", 8 + 2), ("woocommerce", 6)]
    assert {o["state"] for o in orders} == {"in_sync"} and all(o["quickbooks"]["invoice_id"] for o in orders)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_o2c_serve_receives_and_syncs_in_embedded_mode(make_hub, shop_factory, platforms, tmp_path) -> None:  # noqa: ANN001
    hub = make_hub()  # sets the operator's environment (monkeypatched) and prepares the database
    shop = shop_factory(hub)
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    server = subprocess.Popen([O2C, "serve", "--port", str(port)], env=dict(os.environ), stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base), timeout=30)
        order = an_order()
        platforms.shopify.add_order(shop.domain, order)
        body, headers = webhook(order, shop.domain)
        r = requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10)
        assert r.status_code == 200    # answered once stored; the job process syncs it afterwards
        wait_until(lambda: platforms.quickbooks.objects(shop.realm, "Payment"), timeout=60)
        assert len(platforms.quickbooks.objects(shop.realm, "Invoice")) == 1
        assert requests.get(base + "/", timeout=10).status_code == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:   # a loaded machine: it must still not outlive the test
            server.kill()
            server.wait(timeout=10)
        log.close()


def _healthy(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=2).json()["status"] == "ok"
    except requests.RequestException:
        return False
