"""``o2c demo``: the whole spine on one machine, with no accounts and no Redis.

Starts simulated Shopify, QuickBooks and HubSpot endpoints, connects a new merchant to them, sends
signed order webhooks (with a few duplicates and updates) through the real receiver, lets the real
pipeline sync them, and prints what each platform now holds.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from decimal import Decimal

import click
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from hub.app import create_app
from hub.merchants import connect, create_merchant
from hub.models import SyncRun
from hub.runtime import Hub
from hub.settings import Settings
from simulators.hubspot import HubSpotSimulator
from simulators.quickbooks import QuickBooksSimulator
from simulators.shopify import ShopifySimulator, webhook_headers
from simulators.shopify_orders import random_order

SKUS = [("TEE-BLK-M", "Black tee, M", "24.00"), ("TEE-WHT-L", "White tee, L", "24.00"),
        ("MUG-CLASSIC", "Classic mug", "12.50"), ("CAP-NAVY", "Navy cap", "19.99"),
        ("SOCK-3PK", "Socks (3 pack)", "14.00"), ("POSTER-A2", "Poster A2", "9.95"),
        ("HOODIE-GRY-S", "Grey hoodie, S", "54.00"), ("STICKER", "Sticker", "2.50")]
CUSTOMERS = [("Ada", "Lovelace", "ada@example.com"), ("Grace", "Hopper", "grace@example.com"),
             ("Alan", "Turing", "alan@example.com"), ("Zoë", "Ångström", "zoe@example.com"),
             ("Katherine", "Johnson", "kj@example.com"), ("Linus", "Pauling", None),
             ("Edsger", "Dijkstra", "edsger@example.com"), ("Barbara", "Liskov", "barbara@example.com"),
             ("Ken", "Thompson", "ken@example.com"), ("Radia", "Perlman", "radia@example.com")]


def run_demo(*, orders: int = 36, keep_serving: bool = False, seed: int = 7, quiet: bool = False) -> dict:
    rng = random.Random(seed)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the simulators' access logs are noise here
    echo = (lambda *a, **k: None) if quiet else click.echo
    shopify, quickbooks, hubspot = ShopifySimulator(), QuickBooksSimulator(), HubSpotSimulator()
    for sim in (shopify, quickbooks, hubspot):
        sim.start()
    tag = secrets.token_hex(3)
    shop, realm, portal = f"demo-{tag}.myshopify.com", f"9130{rng.randrange(10**11, 10**12)}", f"demo-{tag}"
    app_secret = secrets.token_hex(16)
    shopify.add_shop(shop)
    quickbooks.add_company(realm)
    quickbooks.register_app("demo-client", "demo-secret")
    hubspot.add_account(portal)

    base = Settings.from_env()
    settings = Settings.from_env(
        shopify_api_secret=base.shopify_api_secret or app_secret,
        shopify_api_url=shopify.url, quickbooks_api_url=quickbooks.url, quickbooks_oauth_url=quickbooks.url,
        hubspot_api_url=hubspot.url, quickbooks_client_id="demo-client", quickbooks_client_secret="demo-secret",
        redis_url=None, backoff_base=0.5, backoff_cap=5.0, sweep_interval=0.5)
    hub = Hub(settings)
    app = create_app(hub)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="o2c-demo-web", daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    echo(f"O2C Hub demo: hub serving at {url} ({settings.database_url.split('///')[-1]})")
    echo(f"  simulated Shopify {shopify.url}, QuickBooks {quickbooks.url}, HubSpot {hubspot.url}")

    with hub.session() as s:
        merchant = create_merchant(s, f"Demo merchant {tag}")
        connect(s, hub.secrets, merchant, "shopify", shop, {"access_token": shopify.issue_token(shop)})
        # a QuickBooks access token that expires during the demo: the hub refreshes it by itself
        connect(s, hub.secrets, merchant, "quickbooks", realm,
                {"access_token": quickbooks.issue_token(realm, expires_in=3),
                 "refresh_token": quickbooks.issue_refresh_token(realm, "demo-client")})
        connect(s, hub.secrets, merchant, "hubspot", portal, {"access_token": hubspot.issue_token(portal)})
        merchant_id = merchant.id
    echo(f"  merchant {merchant_id} connected to {shop}, QuickBooks company {realm}, HubSpot {portal}")

    # a flaky day at the platforms: the hub retries with backoff
    quickbooks.fail_next(503, 2, path_contains="/invoice")
    hubspot.fail_next(429, 1, retry_after=1)

    secret = settings.shopify_api_secret or app_secret
    customers = [{"id": 7_000_000 + i, "first_name": f, "last_name": ln, "email": e}
                 for i, (f, ln, e) in enumerate(CUSTOMERS)]
    sent = accepted = duplicates = 0
    built = []
    started = time.monotonic()
    for n in range(orders):
        order = random_order(rng, 5_000_000_000 + n, 1001 + n, skus=SKUS, customers=customers)
        shopify.add_order(shop, order)
        built.append(order)
        deliveries = [("orders/create", None)]
        if n % 9 == 4:  # Shopify delivers at least once: the same delivery again
            deliveries.append(("orders/create", "same"))
        if n % 7 == 3:
            deliveries.append(("orders/updated", None))
        webhook_id = None
        for topic, again in deliveries:
            body = json.dumps(order.webhook_body()).encode()
            webhook_id = webhook_id if again else secrets.token_hex(8)
            headers = webhook_headers(shop, topic, body, secret, webhook_id=webhook_id)
            r = requests.post(f"{url}/webhooks/shopify", data=body, headers=headers, timeout=10)
            sent += 1
            status = r.json().get("status") if r.ok else None
            accepted += status == "accepted"
            duplicates += status == "duplicate"
    # and one hostile delivery: a forged signature is refused, nothing is stored
    forged = requests.post(f"{url}/webhooks/shopify", data=b'{"id": 1}', timeout=10,
                           headers={"X-Shopify-Hmac-Sha256": "Zm9yZ2Vk", "X-Shopify-Shop-Domain": shop,
                                    "X-Shopify-Topic": "orders/create", "Content-Type": "application/json"})

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with hub.session() as s:
            open_runs = s.scalars(select(SyncRun.id).where(SyncRun.merchant_id == merchant_id,
                                                            SyncRun.status.in_(("pending", "running", "retrying")))
                                  ).all()
        if not open_runs:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started

    with hub.session() as s:
        all_runs = s.scalars(select(SyncRun).where(SyncRun.merchant_id == merchant_id)).all()
    by_status: dict[str, int] = {}
    for run in all_runs:
        by_status[run.status] = by_status.get(run.status, 0) + 1
    invoices = quickbooks.objects(realm, "Invoice")
    payments = quickbooks.objects(realm, "Payment")
    customers_qb = quickbooks.objects(realm, "Customer")
    contacts = hubspot.contacts(portal)
    expected = {str(o.number): o.total for o in built}
    mismatched = [inv for inv in invoices if Decimal(str(inv["TotalAmt"])) != expected.get(inv.get("DocNumber"))]
    summary = {
        "merchant": merchant_id, "orders": orders, "webhooks_sent": sent, "webhooks_accepted": accepted,
        "webhooks_duplicate": duplicates, "forged_rejected": forged.status_code == 401,
        "runs": by_status, "contacts": len(contacts), "customers": len(customers_qb),
        "invoices": len(invoices), "payments": len(payments), "invoice_total_mismatches": len(mismatched),
        "failures": [(r.id, r.source_name, r.reason) for r in all_runs if r.status == "failed"],
        "seconds": round(elapsed, 2), "url": url,
        "api_calls": {"shopify": shopify.count_calls(), "quickbooks": quickbooks.count_calls(),
                      "hubspot": hubspot.count_calls()},
    }
    echo("")
    echo(f"Orders sent by the store:   {orders} ({sent} webhook deliveries: {accepted} accepted, "
         f"{duplicates} duplicates ignored; forged delivery rejected: {summary['forged_rejected']})")
    echo("Sync runs:                  " + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())))
    echo(f"HubSpot contacts:           {len(contacts)}")
    echo(f"QuickBooks customers:       {len(customers_qb)}")
    echo(f"QuickBooks invoices:        {len(invoices)} (totals equal to the orders' to the cent: "
         f"{len(invoices) - len(mismatched)}/{len(invoices)})")
    echo(f"QuickBooks payments:        {len(payments)}")
    echo(f"Failures:                   {len(summary['failures'])}")
    for run_id, name, reason in summary["failures"]:
        echo(f"  run {run_id} {name}: {reason}")
    calls = summary["api_calls"]
    echo("API calls per order:        " + ", ".join(f"{k} {v / orders:.1f}" for k, v in calls.items())
         + " (incl. injected failures, retries and the token refresh)")
    echo(f"Synced in {elapsed:.1f} s. Inspect with: o2c syncs list --merchant {merchant_id}")
    if keep_serving:
        echo(f"Hub serving at {url} — Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        finally:
            _shutdown(server, hub, (shopify, quickbooks, hubspot))
    else:
        echo(f"The hub served at {url} during the demo (add --keep-serving to keep it up).")
        _shutdown(server, hub, (shopify, quickbooks, hubspot))
    return summary


def _shutdown(server, hub: Hub, sims) -> None:  # noqa: ANN001
    server.shutdown()
    hub.close()
    for sim in sims:
        sim.stop()
