"""The dashboard through the real app: its figures match a known ledger (orders received per hour and day
by where they stand now, failure rate, order-to-invoice and order-to-cash percentiles, backlog, open runs),
the chart is a real SVG with its numbers in a table beside it, connections that need a reconnect are
flagged, and a merchant user sees only its own merchant's figures. SQLite and PostgreSQL (percentiles are
computed by each database's own path)."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest

from hub.merchants import create_merchant
from hub.models import Connection, SyncRun, utcnow
from hub.order_models import StoreOrder
from hub.runtime import Hub
from tests.web.test_console import PASSWORD, SUPPORT, add_user, html, login
from web.app import create_app


def _order(merchant_id: int, n: int, received_ago: timedelta, state: str, *, to_invoice: int | None = None,
           to_cash: int | None = None) -> StoreOrder:
    received = utcnow() - received_ago
    return StoreOrder(merchant_id=merchant_id, platform="shopify", store=f"shop-{merchant_id}.example",
                      order_id=str(5000 + n), name=f"#{1000 + n}", currency="USD", total="10.00", state=state,
                      received_at=received, ordered_at=received - timedelta(seconds=30),
                      invoiced_at=received + timedelta(seconds=to_invoice) if to_invoice is not None else None,
                      paid_at=received + timedelta(seconds=to_cash) if to_cash is not None else None,
                      payment_ids=[], refund_ids=[])


@pytest.fixture
def ledger(make_hub, platforms, database_url: str, monkeypatch):  # noqa: ANN001, ANN201
    """Merchant A: 10 orders in the last hours (6 in sync, invoiced 1..6 min after receipt and paid 1..6 h
    later; 3 failing; 1 pending) and 2 in sync from 3 days ago; merchant B: 4 recent orders, 1 failing."""
    monkeypatch.delenv("O2C_SECRET_KEY", raising=False)
    hub: Hub = make_hub(database_url)
    with hub.session() as s:
        a, b = create_merchant(s, "Alpha Goods").id, create_merchant(s, "Beta Wares").id
        recent = timedelta(minutes=20)
        for i in range(6):
            s.add(_order(a, i, recent, "in_sync", to_invoice=60 * (i + 1) + 1, to_cash=3600 * (i + 1)))
        for i in range(6, 9):
            s.add(_order(a, i, recent, "failing"))
        s.add(_order(a, 9, recent, "pending"))
        s.add(_order(a, 10, timedelta(days=3), "in_sync", to_invoice=30))
        s.add(_order(a, 11, timedelta(days=3), "in_sync", to_invoice=30))
        for i in range(4):
            s.add(_order(b, 20 + i, recent, "failing" if i == 0 else "in_sync", to_invoice=10))
        s.add(Connection(merchant_id=a, platform="shopify", account="alpha.myshopify.com", status="active"))
        s.add(Connection(merchant_id=a, platform="quickbooks", account="9130001", status="needs_reconnect",
                         status_reason="QuickBooks refused the refresh token",
                         token_expires_at=utcnow() - timedelta(hours=1)))
        s.add(Connection(merchant_id=b, platform="quickbooks", account="9130002", status="active"))
        s.add(SyncRun(merchant_id=a, kind="payment", source_platform="quickbooks", source_id="p1",
                      status="retrying", attempts=1))
        s.add(SyncRun(merchant_id=b, kind="payment", source_platform="quickbooks", source_id="p2",
                      status="succeeded", attempts=1, finished_at=utcnow() - timedelta(minutes=5)))
        s.commit()
    add_user(hub, SUPPORT)
    add_user(hub, "owner@alpha.example", "merchant", a)
    return hub, create_app(hub), a, b


def _client(app, email: str):  # noqa: ANN001, ANN202
    client = app.test_client()
    assert login(client, email, PASSWORD).status_code == 302
    return client


def _figure(page: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">(.*?)</td>', page, re.S).group(1).split("<span")[0].strip()


def test_figures_match_a_known_ledger_and_the_chart_is_an_svg_with_its_table(ledger) -> None:  # noqa: ANN001
    hub, app, a, b = ledger
    client = _client(app, SUPPORT)
    page = html(client.get(f"/console/dashboard?merchant={a}"))
    assert "Dashboard — Alpha Goods" in page
    assert (_figure(page, "received"), _figure(page, "in_sync"), _figure(page, "failing")) == ("10", "6", "3")
    assert _figure(page, "failure_rate") == "30.0 %"
    # invoiced 61..361 s after receipt: p50 211 s, p95 346 s; paid 1..6 h after receipt (ordered 30 s before)
    assert _figure(page, "to_invoice") == "3.5 min / 5.8 min"
    assert _figure(page, "to_cash") == "3.5 h / 5.8 h"
    assert _figure(page, "backlog") == "1 / 0 / 3"
    assert _figure(page, "runs") == "0 / 0 / 1"
    assert _figure(page, "queue_depth").isdigit()

    # the chart: an SVG drawn on the server, with alt text; every bar's numbers in the table
    src = re.search(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', page)
    svg = base64.b64decode(src.group(1)).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "orders received" in svg
    assert "failing" in svg and "in sync" in svg and not re.search(r'href="https?:', svg)   # nothing fetched
    assert "10 received, 6 now in sync, 3 failing" in src.group(2)
    rows = re.findall(r'<tr data-bucket="[^"]+"><th scope="row">[^<]+</th>\s*<td>(\d+)</td><td>(\d+)</td>'
                      r'<td>(\d+)</td><td>(\d+)</td>', page)
    assert len(rows) == 24 and sorted(rows)[-1] == ("10", "6", "3", "1")
    assert sum(int(r[0]) for r in rows) == 10

    days = html(client.get(f"/console/dashboard?merchant={a}&unit=day"))
    assert _figure(days, "received") == "12" and _figure(days, "in_sync") == "8"
    assert len(re.findall(r'<tr data-bucket=', days)) == 30

    # the quickbooks connection that needs a reconnect is flagged and links to the connections page
    conns = re.findall(r'<tr data-connection="\d+" class="([^"]*)"', page)
    assert conns == ["", "needs-reconnect"]
    assert "Needs reconnect</strong>: QuickBooks refused the refresh token" in page
    assert "(expired)" in page and 'href="/console/connections"' in page


def test_staff_see_every_merchant_and_merchant_users_only_their_own(ledger) -> None:  # noqa: ANN001
    hub, app, a, b = ledger
    staff = html(_client(app, SUPPORT).get("/console/dashboard"))
    assert "Dashboard — all merchants" in staff
    assert (_figure(staff, "received"), _figure(staff, "failing")) == ("14", "4")
    assert _figure(staff, "failure_rate") == "28.6 %"
    assert re.search(rf'<tr data-merchant="{b}">.*?<td>4</td><td>1</td><td>25.0 %</td><td>1</td>', staff, re.S)
    assert "9130002" in staff and "Beta Wares" in staff
    # last success: B's QuickBooks took part in B's succeeded run; A's shop has had none
    beta_qb = re.search(r"<td>9130002</td>.*?</td>\s*<td>(?:<time [^>]+>)?([^<]+)(?:</time>)?</td>", staff,
                        re.S).group(1)
    assert beta_qb.endswith(" UTC") and re.search(r"<td>alpha.myshopify.com</td>.*?<td>never</td>", staff, re.S)

    owner = _client(app, "owner@alpha.example")
    for path in ("/console/dashboard", f"/console/dashboard?merchant={b}"):
        page = html(owner.get(path))
        assert "Dashboard — Alpha Goods" in page and _figure(page, "received") == "10"
        assert "9130002" not in page and "Beta Wares" not in page and "data-merchant=" not in page
    assert _client(app, SUPPORT).get("/console/dashboard?merchant=999999").status_code == 404
    assert _client(app, SUPPORT).get("/console/dashboard?merchant=abc").status_code == 400


def test_queue_depth_is_the_rq_queue_in_scale_out_mode_and_starts_no_runner_when_embedded(
        make_hub, redis_url: str) -> None:  # noqa: ANN001
    embedded = make_hub()
    assert embedded.queue_depth() == 0 and embedded._dispatcher is None   # a page view starts no worker
    scaled = make_hub(redis_url=redis_url)
    assert scaled.queue_depth() == 0
    scaled.dispatcher.dispatch(424242)              # no worker listens: the job waits in the queue
    assert scaled.queue_depth() == 1
