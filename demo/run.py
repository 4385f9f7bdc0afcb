"""``o2c demo``: the whole spine on one machine, with no accounts and no Redis.

Starts simulated Shopify, WooCommerce, QuickBooks and HubSpot endpoints. A merchant with a Shopify shop
gets signed order webhooks (with a few duplicates and updates) through the real receiver; a second
merchant's WooCommerce store is connected the way an operator does it (keys checked, webhooks
registered against the served hub) and its orders arrive by the store's own signed webhooks. The real
pipeline syncs both, and the demo prints what each platform now holds.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import click
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from demo.simulators.hubspot import HubSpotSimulator
from demo.simulators.quickbooks import QuickBooksSimulator
from demo.simulators.shopify import ShopifySimulator, webhook_headers
from demo.simulators.shopify_orders import random_order
from demo.simulators.woocommerce import WooCommerceSimulator
from hub.merchants import connect, create_merchant
from hub.models import SyncRun
from hub.runtime import Hub
from hub.settings import Settings
from hub.storefronts import connect_woocommerce
from web.app import create_app

SKUS = [("TEE-BLK-M", "Black tee, M", "24.00"), ("TEE-WHT-L", "White tee, L", "24.00"),
        ("MUG-CLASSIC", "Classic mug", "12.50"), ("CAP-NAVY", "Navy cap", "19.99"),
        ("SOCK-3PK", "Socks (3 pack)", "14.00"), ("POSTER-A2", "Poster A2", "9.95"),
        ("HOODIE-GRY-S", "Grey hoodie, S", "54.00"), ("STICKER", "Sticker", "2.50")]
CUSTOMERS = [("Ada", "Lovelace", "ada@example.com"), ("Grace", "Hopper", "grace@example.com"),
             ("Alan", "Turing", "alan@example.com"), ("Zoë", "Ångström", "zoe@example.com"),
             ("Katherine", "Johnson", "kj@example.com"), ("Linus", "Pauling", None),
             ("Edsger", "Dijkstra", "edsger@example.com"), ("Barbara", "Liskov", "barbara@example.com"),
             ("Ken", "Thompson", "ken@example.com"), ("Radia", "Perlman", "radia@example.com")]
OPEN = ("pending", "running", "retrying")


def _buyer(first: str, last: str, email: str) -> dict[str, str]:
    return {"first_name": first, "last_name": last, "email": email, "address_1": "1 Market St",
            "city": "San Francisco", "state": "CA", "postcode": "94105", "country": "US"}


BEANS = {"name": "Espresso beans 1 kg", "sku": "ESP-1K", "quantity": 2, "price": "29.99"}
MUG = {"name": "Ceramic mug", "sku": "MUG-01", "quantity": 1, "price": "14.95"}
KIT = {"name": "Crème brûlée kit", "sku": "KIT-CB", "quantity": 1, "price": "24.50"}
TEA = {"name": "日本茶 Sencha", "sku": "TEA-SEN", "quantity": 3, "price": "12.00"}
FLAT = [{"method_title": "Flat rate", "cost": "4.99"}]
# a café's WooCommerce store: paid, on hold, a guest without e-mail, coupons, a fee and a checkout that
# pays a pending order (order.created, then order.updated)
WOO_ORDERS: list[dict[str, Any]] = [
    dict(lines=[BEANS, MUG], shipping=FLAT, billing=_buyer("José", "Álvarez", "jose@example.com"),
         status="processing", payment_method="stripe", transaction_id="ch_demo_1"),
    dict(lines=[KIT], billing=_buyer("Walk", "In", ""), status="on-hold", payment_method="bacs"),
    dict(lines=[TEA, MUG], shipping=FLAT, coupons=[{"code": "WELCOME10", "type": "percent", "amount": "10"}],
         billing=_buyer("Siobhán", "O'Brien", "siobhan@example.com"), status="completed", payment_method="paypal"),
    dict(lines=[BEANS], fees=[{"name": "Gift wrap", "amount": "2.50"}],
         coupons=[{"code": "FIVEOFF", "type": "fixed_cart", "amount": "5"}],
         billing=_buyer("José", "Álvarez", "jose@example.com"), status="processing", payment_method="stripe"),
    dict(lines=[MUG, KIT], shipping=[{"method_title": "Free shipping", "method_id": "free_shipping", "cost": "0"}],
         billing=_buyer("Zoë", "Müller", "zoe.m@example.com"), status="processing", payment_method="stripe",
         checkout=True),
    dict(lines=[TEA], billing=_buyer("Grace", "Hopper", "grace@example.com"), status="pending",
         payment_method="cod"),
]


@dataclass
class _Store:
    """One demo store: its platform, the merchant and back office it syncs into, and what it sent."""

    platform: str
    merchant_id: int
    realm: str
    portal: str
    expected: dict[str, Decimal]      # order number → total


def run_demo(*, orders: int = 36, keep_serving: bool = False, seed: int = 7, quiet: bool = False,
             woocommerce_orders: int = len(WOO_ORDERS)) -> dict:
    """Run the demo; returns the summary it prints (``quiet``: print nothing)."""
    rng = random.Random(seed)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the simulators' access logs are noise here
    echo = (lambda *a, **k: None) if quiet else click.echo
    shopify, woo, quickbooks, hubspot = (ShopifySimulator(), WooCommerceSimulator(), QuickBooksSimulator(),
                                         HubSpotSimulator())
    sims = (shopify, woo, quickbooks, hubspot)
    for sim in sims:
        sim.start()
    tag = secrets.token_hex(3)
    shop, realm, portal = f"demo-{tag}.myshopify.com", f"9130{rng.randrange(10**11, 10**12)}", f"demo-{tag}"
    woo_realm, woo_portal, woo_store = f"9140{rng.randrange(10**11, 10**12)}", f"cafe-{tag}", f"cafe-{tag}"
    app_secret = secrets.token_hex(16)
    shopify.add_shop(shop)
    for company in (realm, woo_realm):
        quickbooks.add_company(company)
    quickbooks.register_app("demo-client", "demo-secret")
    hubspot.add_account(portal)
    hubspot.add_account(woo_portal)
    woo.add_store(woo_store)

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
    hub.settings = replace(hub.settings, public_url=url)  # the store registers its webhooks against this hub
    echo(f"O2C Hub demo: hub serving at {url} ({settings.database_url.split('///')[-1]})")
    echo(f"  simulated Shopify {shopify.url}, WooCommerce {woo.url}, QuickBooks {quickbooks.url}, "
         f"HubSpot {hubspot.url}")

    with hub.session() as s:
        merchant = create_merchant(s, f"Demo merchant {tag}")
        connect(s, hub.secrets, merchant, "shopify", shop, {"access_token": shopify.issue_token(shop)})
        # a QuickBooks access token that expires during the demo: the hub refreshes it by itself
        connect(s, hub.secrets, merchant, "quickbooks", realm,
                {"access_token": quickbooks.issue_token(realm, expires_in=3),
                 "refresh_token": quickbooks.issue_refresh_token(realm, "demo-client")})
        connect(s, hub.secrets, merchant, "hubspot", portal, {"access_token": hubspot.issue_token(portal)})
        merchant_id = merchant.id
        cafe = create_merchant(s, f"Demo café {tag}")
        connect(s, hub.secrets, cafe, "quickbooks", woo_realm,
                {"access_token": quickbooks.issue_token(woo_realm, expires_in=3600),
                 "refresh_token": quickbooks.issue_refresh_token(woo_realm, "demo-client")})
        connect(s, hub.secrets, cafe, "hubspot", woo_portal, {"access_token": hubspot.issue_token(woo_portal)})
        cafe_id = cafe.id
    echo(f"  merchant {merchant_id} connected to {shop}, QuickBooks company {realm}, HubSpot {portal}")
    key, key_secret = woo.add_key(woo_store)
    store_conn = connect_woocommerce(hub, str(cafe_id), url=woo.store_url(woo_store), consumer_key=key,
                                     consumer_secret=key_secret)
    hooks = len((store_conn.settings or {}).get("webhook_ids") or [])
    echo(f"  merchant {cafe_id} connected to WooCommerce {woo.store_url(woo_store)} ({hooks} webhooks "
         f"registered), QuickBooks company {woo_realm}, HubSpot {woo_portal}")

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
    # the café's store: each order fires the store's own signed webhooks at the hub
    woo_sent = [woo.add_order(woo_store, **WOO_ORDERS[n % len(WOO_ORDERS)]) for n in range(woocommerce_orders)]
    woo_events = [dl for dl in woo.deliveries if dl.kind == "event"]

    merchants = (merchant_id, cafe_id)

    def settle() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with hub.session() as s:
                open_runs = s.scalars(select(SyncRun.id).where(SyncRun.merchant_id.in_(merchants),
                                                                SyncRun.status.in_(OPEN))).all()
            if not open_runs:
                return
            time.sleep(0.2)

    settle()
    # the warehouse ships the first orders: each fulfilment's webhook puts its tracking on the invoice
    # and moves the order's HubSpot deal to its shipped stage
    shipped = built[:max(1, orders // 3)] if orders else []
    for order in shipped:
        f = order.fulfil(order.created_at + timedelta(days=1), company="UPS", numbers=[f"1Z{order.number:08d}"])
        body = json.dumps(f.webhook_body()).encode()
        requests.post(f"{url}/webhooks/shopify", data=body, timeout=10,
                      headers=webhook_headers(shop, "fulfillments/create", body, secret))
        sent += 1
    settle()
    elapsed = time.monotonic() - started

    with hub.session() as s:
        all_runs = s.scalars(select(SyncRun).where(SyncRun.merchant_id.in_(merchants))).all()
    by_status = dict(sorted(Counter(run.status for run in all_runs).items()))
    stores = {
        "shopify": _report(_Store("shopify", merchant_id, realm, portal, {str(o.number): o.total for o in built}),
                           all_runs, quickbooks),
        "woocommerce": _report(_Store("woocommerce", cafe_id, woo_realm, woo_portal,
                                      {str(o["number"]): Decimal(o["total"]) for o in woo_sent}),
                               all_runs, quickbooks),
    }
    contacts = len(hubspot.contacts(portal)) + len(hubspot.contacts(woo_portal))
    customers_qb = sum(len(quickbooks.objects(r, "Customer")) for r in (realm, woo_realm))
    invoices = sum(st["invoices"] for st in stores.values())
    mismatched = sum(st["invoice_total_mismatches"] for st in stores.values())
    payments = sum(len(quickbooks.objects(r, "Payment")) for r in (realm, woo_realm))
    deals = len(hubspot.deals(portal)) + len(hubspot.deals(woo_portal))
    shipped_invoices = sum(1 for r in (realm, woo_realm) for i in quickbooks.objects(r, "Invoice")
                           if i.get("TrackingNum") or i.get("ShipDate"))
    summary = {
        "merchant": merchant_id, "merchants": list(merchants), "orders": orders + len(woo_sent),
        "webhooks_sent": sent, "webhooks_accepted": accepted, "webhooks_duplicate": duplicates,
        "forged_rejected": forged.status_code == 401, "woocommerce_webhooks_registered": hooks,
        "woocommerce_deliveries": len(woo_events), "woocommerce_deliveries_ok": sum(dl.ok for dl in woo_events),
        "runs": by_status, "stores": stores, "contacts": contacts, "customers": customers_qb,
        "invoices": invoices, "payments": payments, "invoice_total_mismatches": mismatched,
        "deals": deals, "shipped_invoices": shipped_invoices, "orders_shipped": len(shipped),
        "failures": [(r.id, r.source_name, r.reason) for r in all_runs if r.status == "failed"],
        "seconds": round(elapsed, 2), "url": url,
        "api_calls": {"shopify": shopify.count_calls(), "woocommerce": woo.count_calls(),
                      "quickbooks": quickbooks.count_calls(), "hubspot": hubspot.count_calls()},
    }
    _print_summary(echo, summary, orders, len(woo_sent))
    from demo.payout import demo_payout, payout_line  # Shopify Payments pays out: one deposit equal to it

    summary["payout"] = demo_payout(hub, shopify, quickbooks, shop=shop, realm=realm, merchant_id=merchant_id,
                                    orders=built)
    echo(payout_line(summary["payout"]))
    from demo.receivables import demo_receivables, receivables_lines  # an overdue invoice and a credit hold

    summary["receivables"] = demo_receivables(hub, shopify, shop=shop, url=url, secret=secret,
                                              merchant_id=merchant_id, settle=settle)
    for line in receivables_lines(summary["receivables"]):
        echo(line)
    echo(f"Synced in {elapsed:.1f} s. Inspect with: o2c syncs list --merchant {merchant_id} "
         f"(Shopify) or --merchant {cafe_id} (WooCommerce)")
    if keep_serving:
        echo(f"Hub serving at {url} — Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        finally:
            _shutdown(server, hub, sims)
    else:
        echo(f"The hub served at {url} during the demo (add --keep-serving to keep it up).")
        _shutdown(server, hub, sims)
    return summary


def _report(store: _Store, runs: list[SyncRun], quickbooks: QuickBooksSimulator) -> dict[str, Any]:
    """One store's outcome: orders whose last run succeeded, and its invoices checked against its orders
    (one invoice per order, none extra, totals equal to the cent)."""
    last: dict[str, SyncRun] = {}
    for run in sorted(runs, key=lambda r: r.id):
        if run.merchant_id == store.merchant_id and run.source_platform == store.platform and run.kind == "order":
            last[run.source_id] = run
    invoices = quickbooks.objects(store.realm, "Invoice")
    per_number = Counter(str(inv.get("DocNumber")) for inv in invoices)
    mismatched = [inv for inv in invoices
                  if Decimal(str(inv["TotalAmt"])) != store.expected.get(str(inv.get("DocNumber")))]
    return {"orders": len(store.expected), "synced": sum(r.status == "succeeded" for r in last.values()),
            "invoices": len(invoices), "invoiced_once": sum(per_number[n] == 1 for n in store.expected),
            "invoice_total_mismatches": len(mismatched),
            "payments": len(quickbooks.objects(store.realm, "Payment"))}


def _print_summary(echo: Any, summary: dict[str, Any], shopify_orders: int, woo_orders: int) -> None:
    shop, cafe = summary["stores"]["shopify"], summary["stores"]["woocommerce"]
    invoices, mismatched = summary["invoices"], summary["invoice_total_mismatches"]
    echo("")
    echo(f"Orders sent by the stores:  Shopify {shopify_orders} ({summary['webhooks_sent']} webhook deliveries: "
         f"{summary['webhooks_accepted']} accepted, {summary['webhooks_duplicate']} duplicates ignored; "
         f"forged delivery rejected: {summary['forged_rejected']})")
    echo(f"                            WooCommerce {woo_orders} ({summary['woocommerce_deliveries']} signed "
         f"deliveries from the webhooks the hub registered: {summary['woocommerce_deliveries_ok']} accepted)")
    echo(f"Orders synced per store:    Shopify {shop['synced']}/{shop['orders']}, "
         f"WooCommerce {cafe['synced']}/{cafe['orders']}")
    echo("Sync runs:                  " + ", ".join(f"{k} {v}" for k, v in summary["runs"].items()))
    echo(f"HubSpot contacts:           {summary['contacts']}")
    echo(f"QuickBooks customers:       {summary['customers']}")
    echo(f"QuickBooks invoices:        {invoices} (totals equal to the orders' to the cent: "
         f"{invoices - mismatched}/{invoices})")
    echo(f"  exactly one per order:    Shopify {shop['invoiced_once']}/{shop['orders']}, "
         f"WooCommerce {cafe['invoiced_once']}/{cafe['orders']}")
    echo(f"QuickBooks payments:        {summary['payments']}")
    echo(f"Shipped:                    {summary['orders_shipped']} Shopify orders shipped; invoices with ship "
         f"date and tracking: {summary['shipped_invoices']} (WooCommerce completed orders included)")
    echo(f"HubSpot deals:              {summary['deals']} (one per order, stage following the order)")
    echo(f"Failures:                   {len(summary['failures'])}")
    for run_id, name, reason in summary["failures"]:
        echo(f"  run {run_id} {name}: {reason}")
    calls, total = summary["api_calls"], max(1, shopify_orders + woo_orders)
    echo(f"API calls per order:        Shopify {calls['shopify'] / max(1, shopify_orders):.1f}, "
         f"WooCommerce {calls['woocommerce'] / max(1, woo_orders):.1f}, "
         f"QuickBooks {calls['quickbooks'] / total:.1f}, HubSpot {calls['hubspot'] / total:.1f}")
    echo("                            (incl. connecting the store, injected failures, retries, the token refresh)")


def _shutdown(server, hub: Hub, sims) -> None:  # noqa: ANN001
    server.shutdown()
    hub.close()
    for sim in sims:
        sim.stop()
