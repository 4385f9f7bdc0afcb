"""Credit limits and holds end to end: a Shopify net-30 order over its customer's limit is held from fulfilment
(each fulfilment order, the hub's own handle), shown in the ledger, the console, HubSpot and the receivables,
and released when a payment made in QuickBooks brings the exposure back within the limit; a retry (or a worker
killed half-way) leaves one hold; a WooCommerce order goes on-hold with one note and is released by an
approver; ``o2c credit set`` is audited; the simulated Shopify refuses what Shopify refuses."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select, update

from cli.main import main as o2c
from connectors.errors import Permanent
from connectors.shopify import ShopifyClient
from connectors.shopify_holds import DOCUMENTS
from demo.simulators.quickbooks_query import COMPANY_TZ
from demo.simulators.shopify import admin_schema
from demo.simulators.shopify_cost import requested_cost
from hub.credit_models import CreditOrder
from hub.models import AuditEntry, SyncRun
from hub.receivables_models import ReceivablesSnapshot
from tests.helpers import an_order, settled, wait_until, webhook
from tests.sync.test_receivables import _order, books  # noqa: F401 - the merchant of both stores (QuickBooks payments come back)
from tests.web.test_api import PASSWORD, add_user
from tests.web.test_console import html, login
from web.app import create_app

NET_30 = {"type": "NET", "due_in_days": 30}


def _cli(*args: str) -> str:
    result = CliRunner().invoke(o2c, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _send(base: str, shop, order, topic: str = "orders/create") -> None:  # noqa: ANN001
    body, headers = webhook(order, shop.domain, topic)
    assert requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


def _holds(platforms, shop, order) -> list:  # noqa: ANN001
    return [h for holds in platforms.shopify.get_order(shop.domain, order.order_id).holds.values() for h in holds]


def _woo(woo, order):  # noqa: ANN001, ANN202 - the simulator's own order (status and notes)
    with woo.lock:
        return woo._store("cafe").orders[order["id"]]


def _hold_calls(platforms) -> int:  # noqa: ANN001
    return sum(1 for op in platforms.shopify.operations if op[1] == "HubFulfillmentOrderHold" and op[3] is None)


def test_a_shopify_order_over_the_limit_is_held_and_a_payment_in_quickbooks_releases_it(books,  # noqa: ANN001, F811
                                                                                       platforms) -> None:
    hub, shop, _, base = books
    qb, hs = platforms.quickbooks, platforms.hubspot
    first = an_order(470_001, 3001, financial_status="pending", payment_terms=NET_30)
    second = an_order(470_002, 3002, financial_status="pending", payment_terms=NET_30, locations=2)
    total = first.total
    limit = (total * Decimal("1.5")).quantize(Decimal("0.01"))      # room for one order, not two
    assert "credit limit of ada@example.com: " + str(limit) in _cli("credit", "set", str(shop.merchant_id),
                                                                     "ada@example.com", "--limit", str(limit))
    marks = {}
    for order in (first, second):
        platforms.shopify.add_order(shop.domain, order)
        marks[order.number] = (len(platforms.shopify.operations), len(qb.calls), len(hs.calls))
        _send(base, shop, order)
        assert [r.status for r in settled(hub)][-1] == "succeeded"
    # what the hold cost: Shopify 1 read + 1 hold per fulfilment order; QuickBooks 1 Customer.Balance;
    # HubSpot 1 write (+1 check and 1 create of the property, the first time)
    shopify_ops, qb_mark, hs_mark = marks[second.number]
    names = [op[1] for op in platforms.shopify.operations[shopify_ops:] if op[1].startswith("HubFulfillment")]
    assert names == ["HubFulfillmentOrders", "HubFulfillmentOrderHold", "HubFulfillmentOrderHold"]
    assert sum(1 for c in qb.calls[qb_mark:] if c.method == "GET" and "/customer/" in c.path) == 1
    assert [(c.method, c.path) for c in hs.calls[hs_mark:] if "o2c_credit_hold" in c.path + c.body.decode()] == [
        ("GET", "/crm/v3/properties/contacts/o2c_credit_hold"), ("POST", "/crm/v3/properties/contacts"),
        ("POST", "/crm/v3/objects/contacts/batch/update")]

    # the first is within the limit; the second would take the exposure to two orders: held on both of its
    # fulfilment orders (two locations), with the hub's handle and reason
    assert _holds(platforms, shop, first) == []
    holds = _holds(platforms, shop, second)
    assert [(h["handle"], h["reason"]) for h in holds] == [("o2c-credit", "AWAITING_PAYMENT")] * 2
    assert f"over their credit limit of {limit}" in holds[0]["reasonNotes"]
    with pytest.raises(ValueError, match="on hold"):                 # the warehouse cannot ship it
        platforms.shopify.get_order(shop.domain, second.order_id).fulfil(second.created_at)
    [contact] = hs.contacts(shop.portal)
    assert hs.contact_properties(shop.portal, contact["id"])["o2c_credit_hold"] == "held: #3002"

    assert f"credit hold: #3002 of ada@example.com (exposure {total * 2} over the limit of {limit})" in _cli(
        "receivables", str(shop.merchant_id))
    view = json.loads(_cli("receivables", str(shop.merchant_id), "--json"))
    assert [{k: h[k] for k in ("customer", "limit", "exposure", "orders")} for h in view["holds"]] == [
        {"customer": "ada@example.com", "limit": str(limit), "exposure": str(total * 2), "orders": ["#3002"]}]
    show = json.loads(_cli("orders", "show", str(shop.merchant_id), "#3002", "--json"))
    assert show["credit_hold"]["status"] == "held"
    assert any(e["text"].startswith("credit.hold: O2C credit hold: order #3002") for e in show["timeline"])
    add_user(hub, "support@example.com")
    console = create_app(hub).test_client()
    assert login(console, "support@example.com", PASSWORD).status_code == 302
    page = html(console.get(f"/console/orders/{shop.merchant_id}/shopify/{second.order_id}"))
    assert "Held from fulfilment" in page
    page = html(console.get(f"/console/receivables/{shop.merchant_id}"))
    assert "Release #3002" in page and "DSO trend" in page

    # a retry of the order (a second webhook) and a worker killed after Shopify held it: still one hold each
    _send(base, shop, second, "orders/updated")
    settled(hub)
    with hub.session() as s:
        s.execute(update(CreditOrder).where(CreditOrder.order_id == str(second.order_id))
                  .values(hold_status="placing"))
        s.commit()
    _send(base, shop, second, "orders/updated")
    settled(hub)
    assert len(_holds(platforms, shop, second)) == 2 and _hold_calls(platforms) == 2
    with hub.session() as s:
        assert s.scalar(select(CreditOrder.hold_status).where(CreditOrder.order_id == str(second.order_id))) == "held"
        holds_audited = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "credit.hold")))
        assert len(holds_audited) == 2          # placed, then finished by the retry after the "kill"

    # the buyer pays the first invoice in QuickBooks: the exposure is back within the limit, the hold goes
    invoice = next(i for i in qb.objects(shop.realm, "Invoice") if i["DocNumber"] == "3001")
    qb.record_payment(shop.realm, invoice["CustomerRef"]["value"], str(total), {invoice["Id"]: str(total)})
    wait_until(lambda: not _holds(platforms, shop, second), timeout=30)
    settled(hub)
    fulfilment_orders = platforms.shopify.get_order(shop.domain, second.order_id)
    assert {fulfilment_orders.fulfillment_order_status(i) for i in range(2)} == {"OPEN"}
    fulfilment_orders.fulfil(second.created_at)                       # it ships now
    assert hs.contact_properties(shop.portal, contact["id"]).get("o2c_credit_hold") in (None, "")   # cleared
    with hub.session() as s:
        released = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit.release"))
        assert released.actor == "credit" and "is within the credit limit" in released.detail["text"]
        payment_run = s.scalar(select(SyncRun).where(SyncRun.kind == "payment"))
        assert payment_run.status == "succeeded", payment_run.reason
    assert json.loads(_cli("receivables", str(shop.merchant_id), "--json"))["holds"] == []


def test_credit_set_is_audited_and_refuses_what_is_not_an_amount(books) -> None:  # noqa: ANN001, F811
    hub, shop, _, _ = books
    m = str(shop.merchant_id)
    _cli("credit", "set", m, "Grace@Example.com", "--limit", "2,500")
    _cli("credit", "set", m, "grace@example.com", "--limit", "3000.50")
    bad = CliRunner().invoke(o2c, ["credit", "set", m, "grace@example.com", "--limit", "lots"])
    assert bad.exit_code == 2 and "'lots' is not an amount" in bad.output
    assert CliRunner().invoke(o2c, ["credit", "set", m, "nobody", "--limit", "5"]).exit_code == 2
    [row] = json.loads(_cli("credit", "list", m, "--json"))
    assert (row["email"], row["limit"], row["updated_by"], row["held"]) == ("grace@example.com", "3000.50", "cli", [])
    _cli("credit", "set", m, "grace@example.com", "--limit", "none")
    assert json.loads(_cli("credit", "list", m, "--json"))[0]["limit"] is None
    with hub.session() as s:
        changes = [(a.actor, a.detail["before"], a.detail["after"]) for a in s.scalars(
            select(AuditEntry).where(AuditEntry.action == "credit.limit").order_by(AuditEntry.id))]
    assert changes == [("cli", None, "2500.00"), ("cli", "2500.00", "3000.50"), ("cli", "3000.50", None)]


def test_a_woocommerce_order_goes_on_hold_once_and_an_approver_releases_it(books, platforms) -> None:  # noqa: ANN001, F811
    hub, shop, woo, base = books
    m = str(shop.merchant_id)
    _cli("credit", "set", m, "late@example.com", "--limit", "100")
    order = _order(woo, 0, "250.00", "late@example.com", status="pending")     # bank transfer: net 30 by rule
    runs = settled(hub)
    assert {r.status for r in runs} == {"succeeded"}, [r.reason for r in runs]
    stored = _woo(woo, order)
    notes = [n.note for n in stored.notes if n.note.startswith("O2C credit hold")]
    assert stored.status == "on-hold" and len(notes) == 1 and "over their credit limit of 100.00" in notes[0]
    settled(hub)                     # the status change comes back as order.updated: no second note or hold
    with hub.session() as s:         # and a worker killed after the store call, before it recorded the hold
        s.execute(update(CreditOrder).where(CreditOrder.order_id == str(order["id"])).values(hold_status="placing"))
        s.commit()
    woo.update_order("cafe", order["id"], customer_note="Deliver to the back door")
    settled(hub)
    assert len([n for n in _woo(woo, order).notes if n.note.startswith("O2C credit hold")]) == 1
    with hub.session() as s:
        assert s.scalar(select(CreditOrder.hold_status).where(CreditOrder.order_id == str(order["id"]))) == "held"

    add_user(hub, "approver@example.com", role="admin")
    console = create_app(hub).test_client()
    assert login(console, "approver@example.com", PASSWORD).status_code == 302
    page = html(console.get(f"/console/receivables/{m}"))
    assert "Release #" + order["number"] in page
    with hub.session() as s:
        hold_id = s.scalar(select(CreditOrder.id).where(CreditOrder.order_id == str(order["id"])))
    token = console.get(f"/console/receivables/{m}")   # the page's CSRF token is in the session
    with console.session_transaction() as sess:
        csrf = sess["csrf"]
    assert token.status_code == 200
    assert console.post(f"/console/receivables/{m}/holds/{hold_id}/release").status_code == 400   # no token
    r = console.post(f"/console/receivables/{m}/holds/{hold_id}/release", data={"csrf_token": csrf})
    assert r.status_code == 302
    stored = _woo(woo, order)
    assert stored.status == "pending"                 # back where it was: not "processing", which would mark it paid
    assert any(n.note.startswith("O2C credit hold released") for n in stored.notes)
    with hub.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit.release"))
        assert entry.actor == "approver@example.com"
    settled(hub)
    assert _woo(woo, order).status == "pending"   # released by a person: not held again

    # the limit is set from the console too; a merchant's own user may not
    r = console.post(f"/console/receivables/{m}/credit", data={"csrf_token": csrf, "customer": "new@example.com",
                                                              "limit": "750"})
    assert r.status_code == 302
    assert {row["email"]: row["limit"] for row in json.loads(_cli("credit", "list", m, "--json"))} == {
        "late@example.com": "100.00", "new@example.com": "750.00"}
    add_user(hub, "owner@example.com", role="merchant", merchant_id=shop.merchant_id)
    own = create_app(hub).test_client()
    assert login(own, "owner@example.com", PASSWORD).status_code == 302
    own.get(f"/console/receivables/{m}")
    with own.session_transaction() as sess:
        own_csrf = sess["csrf"]
    assert own.post(f"/console/receivables/{m}/credit", data={"csrf_token": own_csrf, "customer": "x@example.com",
                                                             "limit": "1"}).status_code == 404


def test_the_simulated_shopify_refuses_what_shopify_refuses(platforms) -> None:  # noqa: ANN001
    """Through the hub's own connector: an unknown fulfilment order, the same handle twice, releasing what is not
    held, holding what is closed; the documents are valid against the schema and each mutation costs 10."""
    import graphql

    sim = platforms.shopify
    sim.add_shop("holds.myshopify.com")
    order = sim.add_order("holds.myshopify.com", an_order(471_001, 3101, financial_status="pending"))
    client = ShopifyClient("holds.myshopify.com", sim.issue_token("holds.myshopify.com"), api_url=sim.url)
    for name, doc in DOCUMENTS.items():
        assert graphql.validate(admin_schema(), graphql.parse(doc)) == [], name
    [fo] = client.fulfillment_orders(str(order.order_id))
    assert (fo["status"], fo["fulfillmentHolds"]) == ("OPEN", [])
    with pytest.raises(Permanent) as unknown:
        client.hold_fulfillment_order("gid://shopify/FulfillmentOrder/1", handle="o2c-credit", reason_notes="x")
    assert unknown.value.code == "FULFILLMENT_ORDER_NOT_FOUND"
    with pytest.raises(Permanent, match="not on hold"):
        client.release_fulfillment_hold(fo["id"], [])
    hold = client.hold_fulfillment_order(fo["id"], handle="o2c-credit", reason_notes="over the limit")
    with pytest.raises(Permanent) as twice:
        client.hold_fulfillment_order(fo["id"], handle="o2c-credit", reason_notes="again")
    assert twice.value.code == "DUPLICATE_FULFILLMENT_HOLD_HANDLE"
    [fo] = client.fulfillment_orders(str(order.order_id))
    assert fo["status"] == "ON_HOLD" and [h["id"] for h in fo["fulfillmentHolds"]] == [hold["id"]]
    with pytest.raises(Permanent, match="could not be found"):
        client.release_fulfillment_hold(fo["id"], ["gid://shopify/FulfillmentHold/1"])
    assert client.release_fulfillment_hold(fo["id"], [hold["id"]])["status"] == "OPEN"
    order.fulfil(order.created_at)
    with pytest.raises(Permanent, match="cannot be placed on hold"):
        client.hold_fulfillment_order(fo["id"], handle="o2c-credit", reason_notes="shipped already")
    costs = {op[1]: op[2] for op in sim.operations}
    schema = admin_schema()
    assert costs["HubFulfillmentOrderHold"] == requested_cost(schema, DOCUMENTS["FULFILLMENT_ORDER_HOLD"], {}) >= 10
    assert requested_cost(schema, DOCUMENTS["FULFILLMENT_ORDERS_QUERY"], {"first": 25}) < 1000


def test_the_receivables_figures_keep_a_daily_history_shown_as_the_dso_trend(books, platforms) -> None:  # noqa: ANN001, F811
    hub, shop, woo, _ = books
    m = str(shop.merchant_id)
    order = _order(woo, 20, "300.00", "dso@example.com")             # net 30 by the bank-transfer rule
    settled(hub)
    today = platforms.quickbooks.clock.today(COMPANY_TZ)
    days = [today - timedelta(days=2), today]
    for day in days:
        _cli("receivables", m, "--as-of", day.isoformat())
    _cli("receivables", m, "--as-of", today.isoformat())              # the same day again: replaced, not added
    with hub.session() as s:
        kept = [(r.day, r.open) for r in s.scalars(select(ReceivablesSnapshot).order_by(ReceivablesSnapshot.day))]
    assert kept == [(days[0], order["total"]), (days[1], order["total"])]
    add_user(hub, "support@example.com")
    console = create_app(hub).test_client()
    assert login(console, "support@example.com", PASSWORD).status_code == 302
    page = html(console.get(f"/console/receivables/{m}?as_of={today.isoformat()}"))
    trend = page.split("DSO trend", 1)[1].split("Credit holds", 1)[0]
    assert trend.index(days[0].isoformat()) < trend.index(days[1].isoformat())
    assert "<td>90.0</td>" in trend                 # all of it open, all of it sold on credit within 90 days
