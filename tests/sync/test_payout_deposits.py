"""Shopify Payments payouts become one QuickBooks deposit each, equal to the payout to the cent: it links the
very payments the hub created for the orders (through the real webhook path), carries refunds, fees and
adjustments on their own lines, is posted once, and a payout that does not tie out is held with its
difference until the cause is fixed."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from demo.simulators.shopify_orders import ShopifyOrder
from hub.mapping_rules import save_overrides
from tests.helpers import an_order, settled, webhook

PAYOUT_DAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def deliver(client: Any, order: ShopifyOrder, shop: Any, topic: str = "orders/create") -> None:
    body, headers = webhook(order, shop.domain, topic)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200


def refund_webhook(client: Any, shop: Any, order_id: int, refund: dict) -> None:
    from demo.simulators.shopify import webhook_headers
    from tests.conftest import SHOPIFY_SECRET

    body = json.dumps({"id": refund["id"], "order_id": order_id, "note": None}).encode()
    headers = webhook_headers(shop.domain, "refunds/create", body, SHOPIFY_SECRET, webhook_id=f"refund-{refund['id']}")
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200


def paid_orders(platforms: Any, client: Any, hub: Any, shop: Any, count: int, start: int = 0) -> list[ShopifyOrder]:
    # a Shopify Plus shop (1,000 points/s): this test is about payouts, not about Shopify's cost bucket
    platforms.shopify.set_throttle(maximum_available=10_000, restore_rate=1_000, domain=shop.domain)
    orders = []
    for n in range(start, start + count):
        order = an_order(460_001 + n, 2001 + n, email=f"buyer{n % 7}@example.com",
                         created_at=PAYOUT_DAY - timedelta(days=2, minutes=n))
        platforms.shopify.add_order(shop.domain, order)
        if count <= 40:   # each by its webhook; a larger history as a backfill would take it, in batches
            deliver(client, order, shop)
        orders.append(order)
    if count > 40:
        from click.testing import CliRunner

        from cli.main import main as o2c

        since = (PAYOUT_DAY - timedelta(days=3)).date().isoformat()
        done = CliRunner().invoke(o2c, ["backfill", str(shop.merchant_id), "--since", since])
        assert done.exit_code == 0, done.output
    runs = settled(hub, timeout=300)
    assert all(r.status == "succeeded" for r in runs), [r.reason for r in runs if r.status != "succeeded"]
    return orders


def refund_first_and_pay_out(platforms: Any, client: Any, hub: Any, shop: Any, orders: list[ShopifyOrder],
                             adjustment: str) -> dict:
    """A refund of the first order (synced), every order in the balance, an adjustment, then a paid payout;
    returns the refund."""
    sim = platforms.shopify
    refund = sim.refund_order(shop.domain, orders[0].order_id, {1: 1})
    refund_webhook(client, shop, orders[0].order_id, refund)
    settled(hub)
    for order in orders:
        sim.record_order(shop.domain, order.order_id)
    sim.add_adjustment(shop.domain, adjustment)
    sim.pay_payout(shop.domain, sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY).id)
    return refund


def payouts_json(runner: Any, shop: Any) -> list[dict[str, Any]]:
    result = runner.invoke(["payouts", "list", "--merchant", str(shop.merchant_id), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def sync(runner: Any, shop: Any) -> str:
    result = runner.invoke(["payouts", "sync", "--merchant", str(shop.merchant_id)])
    assert result.exit_code == 0, result.output
    return result.output


def writes(platforms: Any, realm: str) -> list[tuple[str, str]]:
    """The QuickBooks writes (method, path) made so far."""
    return [(c.method, c.path) for c in platforms.quickbooks.calls if c.method == "POST" and "/query" not in c.path
            and c.path.rstrip("/").rsplit("/", 1)[-1] in ("deposit", "account")]


@pytest.mark.parametrize("count", [40, pytest.param(200, marks=pytest.mark.slow)])
def test_a_payout_of_many_orders_with_refunds_fees_and_an_adjustment_is_one_deposit_equal_to_it(
        hub, shop, client, runner, platforms, count) -> None:  # noqa: ANN001
    sim = platforms.shopify
    orders = paid_orders(platforms, client, hub, shop, count)
    refunded = orders[::25]                    # a refund on every 25th order, synced as refund receipts
    for order in refunded:
        refund = sim.refund_order(shop.domain, order.order_id, {1: 1})
        refund_webhook(client, shop, order.order_id, refund)
    assert all(r.status in ("succeeded", "skipped") for r in settled(hub, timeout=120))
    for order in orders:
        sim.record_order(shop.domain, order.order_id)
    adjustment = sim.add_adjustment(shop.domain, "-4.20", reason="chargeback protection correction")
    payout = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    charges = [t for t in payout.transactions if t.type == "CHARGE"]
    assert len(charges) == count and payout.net == sum((t.net for t in payout.transactions), Decimal("0"))
    assert all(t.fee == (t.amount * Decimal("0.029") + Decimal("0.30")).quantize(Decimal("0.01")) for t in charges)

    sync(runner, shop)   # scheduled: read, nothing posted
    [row] = payouts_json(runner, shop)
    assert (row["status"], row["deposit_id"], row["net"]) == ("scheduled", None, str(payout.net))
    assert platforms.quickbooks.objects(shop.realm, "Deposit") == []

    sim.pay_payout(shop.domain, payout.id)
    sync(runner, shop)
    [deposit] = platforms.quickbooks.objects(shop.realm, "Deposit")
    assert Decimal(str(deposit["TotalAmt"])) == payout.net
    checking = next(a for a in platforms.quickbooks.objects(shop.realm, "Account") if a["Name"] == "Checking")
    assert deposit["DepositToAccountRef"]["value"] == checking["Id"]
    assert deposit["TxnDate"] == "2026-11-30" and f"payout {payout.id} " in deposit["PrivateNote"]
    linked = [ln["LinkedTxn"][0]["TxnId"] for ln in deposit["Line"] if ln.get("LinkedTxn")]
    hub_payments = {p["Id"] for p in platforms.quickbooks.objects(shop.realm, "Payment")}
    assert len(linked) == count and set(linked) == hub_payments
    direct = [ln for ln in deposit["Line"] if not ln.get("LinkedTxn")]
    names = {a["Id"]: a["Name"] for a in platforms.quickbooks.objects(shop.realm, "Account")}
    by_account: dict[str, Decimal] = {}
    for ln in direct:
        name = names[ln["DepositLineDetail"]["AccountRef"]["value"]]
        by_account[name] = by_account.get(name, Decimal("0")) + Decimal(str(ln["Amount"]))
    refunds = sum((r["amount"] for o in refunded for r in o.refunds), Decimal("0"))
    assert by_account == {"Undeposited Funds": -refunds, "Payout Adjustments": adjustment.amount,
                          "Payment Processing Fees": -sum((t.fee for t in charges), Decimal("0"))}
    assert {a["Name"]: a["AccountType"] for a in platforms.quickbooks.objects(shop.realm, "Account")
            if a["Name"] in by_account} == {"Undeposited Funds": "Other Current Asset",
                                            "Payout Adjustments": "Expense", "Payment Processing Fees": "Expense"}
    [row] = payouts_json(runner, shop)
    assert (row["status"], row["deposit_id"], row["difference"], row["reason"]) == (
        "posted", deposit["Id"], "0.00", None)
    assert row["issued_at"].startswith("2026-11-30T09:00:00")

    # the order ledger shows each order's deposit
    ledger = json.loads(runner.invoke(["orders", "list", "--json"]).output)
    assert {o["quickbooks"]["deposit_id"] for o in ledger} == {deposit["Id"]}
    assert all(o["deposited_at"] for o in ledger)

    # re-running asks QuickBooks nothing and creates nothing
    before = len(platforms.quickbooks.calls)
    sync(runner, shop)
    sync(runner, shop)
    assert platforms.quickbooks.objects(shop.realm, "Deposit") == [deposit]
    assert len(platforms.quickbooks.calls) == before
    # a deposited payment is locked in QuickBooks
    from connectors.quickbooks import QuickBooksClient
    qb = QuickBooksClient(shop.realm, platforms.quickbooks.issue_token(shop.realm), api_url=platforms.quickbooks.url)
    payment = qb.get("Payment", linked[0])
    with pytest.raises(Exception, match="is in deposit"):
        qb.void("Payment", payment["Id"], payment["SyncToken"])


def test_an_unexplained_adjustment_holds_the_payout_with_its_difference_until_a_rule_explains_it(
        hub, shop, client, runner, platforms) -> None:  # noqa: ANN001
    sim = platforms.shopify
    orders = paid_orders(platforms, client, hub, shop, 3)
    for order in orders:
        sim.record_order(shop.domain, order.order_id)
    label = sim.add_adjustment(shop.domain, "-7.35", type="SHIPPING_LABEL", fee="0.15", reason="label #88")
    payout = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    sim.pay_payout(shop.domain, payout.id)

    sync(runner, shop)
    [row] = payouts_json(runner, shop)
    assert row["status"] == "held" and row["deposit_id"] is None
    assert Decimal(row["difference"]) == label.net == Decimal("-7.50")
    assert "payouts.other_types.SHIPPING_LABEL" in row["reason"]
    [why] = row["unexplained"]
    assert (why["type"], Decimal(why["net"])) == ("SHIPPING_LABEL", Decimal("-7.50"))
    assert platforms.quickbooks.objects(shop.realm, "Deposit") == []
    sync(runner, shop)   # still unexplained: still held, still nothing posted
    assert payouts_json(runner, shop)[0]["status"] == "held"
    assert platforms.quickbooks.objects(shop.realm, "Deposit") == []

    with hub.session() as s:   # the merchant names an account for shipping labels
        save_overrides(s, shop.merchant_id, {"payouts": {"other_types": {"SHIPPING_LABEL": "Shipping Labels"}}})
        s.commit()
    sync(runner, shop)
    [deposit] = platforms.quickbooks.objects(shop.realm, "Deposit")
    assert Decimal(str(deposit["TotalAmt"])) == payout.net
    [row] = payouts_json(runner, shop)
    assert (row["status"], row["deposit_id"], row["difference"], row["unexplained"]) == (
        "posted", deposit["Id"], "0.00", [])
    labels = next(a for a in platforms.quickbooks.objects(shop.realm, "Account") if a["Name"] == "Shipping Labels")
    assert [Decimal(str(ln["Amount"])) for ln in deposit["Line"]
            if (ln.get("DepositLineDetail") or {}).get("AccountRef", {}).get("value") == labels["Id"]] == [label.amount]
    sync(runner, shop)
    assert len(platforms.quickbooks.objects(shop.realm, "Deposit")) == 1


def test_a_charge_of_an_order_the_hub_never_heard_of_holds_the_payout_until_the_order_syncs(
        hub, shop, client, runner, platforms) -> None:  # noqa: ANN001
    sim = platforms.shopify
    orders = paid_orders(platforms, client, hub, shop, 2)
    late = an_order(469_001, 2901, email="late@example.com", created_at=PAYOUT_DAY - timedelta(days=3))
    sim.add_order(shop.domain, late)          # its webhook was lost
    for order in [*orders, late]:
        sim.record_order(shop.domain, order.order_id)
    payout = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    sim.pay_payout(shop.domain, payout.id)

    sync(runner, shop)
    [row] = payouts_json(runner, shop)
    late_charge = next(t for t in payout.transactions if t.order_id == late.order_id)
    assert row["status"] == "held" and Decimal(row["difference"]) == late_charge.net
    assert [u["order"] for u in row["unexplained"]] == ["#2901"] and "no QuickBooks payment" in row["reason"]

    runs = settled(hub)                       # the hub syncs the order it never heard of (invoice, payment) ...
    assert (runs[-1].source_id, runs[-1].trigger, runs[-1].status) == (str(late.order_id), "payout", "succeeded")
    sync(runner, shop)                        # ... and the payout posts on the next pass
    [deposit] = platforms.quickbooks.objects(shop.realm, "Deposit")
    assert Decimal(str(deposit["TotalAmt"])) == payout.net
    assert payouts_json(runner, shop)[0]["status"] == "posted"


def test_a_worker_killed_between_the_deposit_create_and_the_binding_leaves_one_deposit(
        hub, shop, client, runner, platforms, monkeypatch) -> None:  # noqa: ANN001
    from sync.ledger import Ledger

    sim = platforms.shopify
    for order in paid_orders(platforms, client, hub, shop, 2):
        sim.record_order(shop.domain, order.order_id)
    payout = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    sim.pay_payout(shop.domain, payout.id)
    real_bind = Ledger.bind

    def killed(self, source, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if source.type == "payout":
            raise SystemExit("worker killed")
        return real_bind(self, source, *args, **kwargs)

    monkeypatch.setattr(Ledger, "bind", killed)
    result = runner.invoke(["payouts", "sync", "--merchant", str(shop.merchant_id)])
    assert result.exit_code != 0
    assert len(platforms.quickbooks.objects(shop.realm, "Deposit")) == 1
    monkeypatch.setattr(Ledger, "bind", real_bind)
    sync(runner, shop)
    [deposit] = platforms.quickbooks.objects(shop.realm, "Deposit")
    assert payouts_json(runner, shop)[0]["deposit_id"] == deposit["Id"]


def test_payouts_are_served_by_the_api(hub, shop, client, runner, platforms) -> None:  # noqa: ANN001
    from hub.users import create_user
    from web.api.tokens import create_token

    with hub.session() as s:
        create_user(s, "support@example.com", "correct horse battery", "support")
        s.commit()
        token = create_token(s, "support@example.com", "payouts")[1]
        s.commit()
    sim = platforms.shopify
    for order in paid_orders(platforms, client, hub, shop, 1):
        sim.record_order(shop.domain, order.order_id)
    payout = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    sim.pay_payout(shop.domain, payout.id)
    sync(runner, shop)
    answer = client.get(f"/api/v1/payouts?merchant={shop.merchant_id}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    [row] = answer.get_json()["payouts"]
    assert set(row) >= {"merchant", "platform", "payout_id", "status", "currency", "net", "issued_at", "deposit_id",
                        "difference", "reason"}
    assert (row["payout_id"], row["status"], row["net"]) == (str(payout.id), "posted", str(payout.net))
    assert "/payouts" in client.get("/api/v1/openapi.json").get_json()["paths"]


def test_the_catch_up_pass_polls_payouts_hourly_and_posts_the_paid_ones(hub, shop, client, runner,  # noqa: ANN001
                                                                       platforms) -> None:
    from sqlalchemy import update

    from hub.models import Connection
    from sync.catchup import _due_pass, _running

    sim = platforms.shopify
    for order in paid_orders(platforms, client, hub, shop, 2):
        sim.record_order(shop.domain, order.order_id)
    payout = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    sim.pay_payout(shop.domain, payout.id)

    def polls() -> int:
        return sum(1 for _, name, *_ in sim.operations if name == "HubPayouts")

    def catch_up_pass() -> None:
        assert _running.acquire(blocking=False)
        _due_pass(hub, 0.0)

    catch_up_pass()        # connected just now: the first look is an hour after connecting
    assert polls() == 0 and platforms.quickbooks.objects(shop.realm, "Deposit") == []
    with hub.session() as s:
        s.execute(update(Connection).where(Connection.merchant_id == shop.merchant_id).values(
            created_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2)))
        s.commit()
    catch_up_pass()
    [deposit] = platforms.quickbooks.objects(shop.realm, "Deposit")
    assert Decimal(str(deposit["TotalAmt"])) == payout.net and polls() == 1
    catch_up_pass()        # looked at a moment ago: not again within the hour
    assert polls() == 1 and payouts_json(runner, shop)[0]["status"] == "posted"



def test_a_held_payout_is_alerted_once_and_a_withdrawal_that_ties_out_is_posted_unalerted(  # noqa: ANN001
        make_hub, shop_factory, platforms) -> None:
    from tests.conftest import O2CRunner
    from web.app import create_app

    alerts: list[dict[str, Any]] = []

    @Request.application
    def app(request: Request) -> Response:   # the operator's alert webhook
        alerts.append(json.loads(request.get_data(as_text=True)))
        return Response("{}", 200, mimetype="application/json")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hub = make_hub(O2C_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{server.server_port}/alerts")
        shop = shop_factory(hub)
        client, runner, sim = create_app(hub).test_client(), O2CRunner(), platforms.shopify
        [order] = paid_orders(platforms, client, hub, shop, 1)
        sim.record_order(shop.domain, order.order_id)
        sim.add_adjustment(shop.domain, "-3.10", type="BILLING_DEBIT")
        first = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
        sim.pay_payout(shop.domain, first.id)
        sim.add_adjustment(shop.domain, "-25.00", type="RESERVED_FUNDS")
        withdrawal = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY + timedelta(days=1))
        sim.pay_payout(shop.domain, withdrawal.id)

        sync(runner, shop)
        sync(runner, shop)   # held again: no second alert within the hour
        rows = {r["payout_id"]: r for r in payouts_json(runner, shop)}
        assert (rows[str(first.id)]["status"], rows[str(withdrawal.id)]["status"]) == ("held", "posted")
        assert rows[str(withdrawal.id)]["net"] == "-25.00" and rows[str(withdrawal.id)]["transfer_id"]
        [deposit] = platforms.quickbooks.objects(shop.realm, "Deposit")   # the withdrawal's, of 0.00
        assert Decimal(str(deposit["TotalAmt"])) == 0
        assert sorted(b["cause"] for b in alerts) == [f"payout.held:shopify:{first.id}"]
        [alert] = [b for b in alerts if b["payout"]["payout_id"] == str(first.id)]
        assert alert["event"] == "payout.held" and alert["payout"]["difference"] == "-3.10"
        assert "BILLING_DEBIT" in alert["message"] and alert["merchant"]["id"] == shop.merchant_id
    finally:
        server.shutdown()
        server.server_close()


def test_reconcile_reports_held_payouts_and_a_deposit_deleted_in_quickbooks_which_is_not_posted_again(
        hub, shop, client, runner, platforms) -> None:  # noqa: ANN001
    sim = platforms.shopify
    orders = paid_orders(platforms, client, hub, shop, 2)
    for order in orders:
        sim.record_order(shop.domain, order.order_id)
    posted = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY - timedelta(days=1))
    sim.pay_payout(shop.domain, posted.id)
    late = an_order(469_501, 2951, email="late@example.com", financial_status="authorized",
                    created_at=PAYOUT_DAY - timedelta(days=1))
    sim.add_order(shop.domain, late)
    deliver(client, late, shop)        # invoiced, nothing captured yet ...
    assert settled(hub)[-1].status == "succeeded"
    late.capture(late.total, PAYOUT_DAY - timedelta(hours=20))   # ... then captured, the update webhook lost
    sim.record_order(shop.domain, late.order_id)
    held = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    sim.pay_payout(shop.domain, held.id)
    sync(runner, shop)
    [deposit] = platforms.quickbooks.objects(shop.realm, "Deposit")
    assert [r.source_id for r in settled(hub)].count(str(late.order_id)) == 1   # a known order: no run opened

    def report() -> dict[str, Any]:
        result = runner.invoke(["reconcile", str(shop.merchant_id), "--json"])
        assert result.exit_code == 0, result.output
        return {r["kind"]: r for r in json.loads(result.output)["discrepancies"]}

    rows = report()
    assert set(rows) == {"paid_payout_without_deposit", "payout_charge_without_payment", "paid_order_without_payment"}
    assert rows["paid_payout_without_deposit"]["order"]["id"] == str(held.id)
    assert rows["payout_charge_without_payment"]["order"]["name"] == "#2951"

    platforms.quickbooks.delete(shop.realm, "Deposit", deposit["Id"])   # a bookkeeper deletes the deposit
    sync(runner, shop)                                                   # not silently re-posted ...
    assert platforms.quickbooks.objects(shop.realm, "Deposit") == []
    rows = report()                                                      # ... but reported
    assert rows["deposit_missing"]["quickbooks"]["id"] == deposit["Id"]
    assert rows["deposit_missing"]["order"]["id"] == str(posted.id)


def test_a_payout_costs_three_quickbooks_calls_once_its_accounts_are_known(hub, shop, client, runner,  # noqa: ANN001
                                                                           platforms) -> None:
    sim, qb = platforms.shopify, platforms.quickbooks
    for order in paid_orders(platforms, client, hub, shop, 3):
        sim.record_order(shop.domain, order.order_id)
    sim.add_adjustment(shop.domain, "-1.00")
    sim.pay_payout(shop.domain, sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY).id)
    before = len(qb.calls)
    sync(runner, shop)
    first = [(c.method, c.path.rsplit("/", 1)[-1], c.query[:90]) for c in qb.calls[before:]]
    for order in paid_orders(platforms, client, hub, shop, 30, start=3):
        sim.record_order(shop.domain, order.order_id)
    sim.add_adjustment(shop.domain, "2.50")
    second = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY + timedelta(days=1))
    sim.pay_payout(shop.domain, second.id)
    before = len(qb.calls)
    sync(runner, shop)
    calls = [(c.method, c.path.rsplit("/", 1)[-1]) for c in qb.calls[before:]]
    # the payments (one IN query), the day's deposits (the look-up before the create), the create
    assert calls == [("POST", "query"), ("POST", "query"), ("POST", "deposit")], calls
    # the first payout also finds (and creates) its rule accounts, each then remembered as a binding
    assert [p for _, p, _ in first].count("account") == 2 and len(first) == 11, first
    assert len(qb.objects(shop.realm, "Deposit")) == 2
    assert Decimal(str(qb.objects(shop.realm, "Deposit")[1]["TotalAmt"])) == second.net


def test_summary_mode_posts_one_line_per_day_and_still_ties_out_to_the_cent(hub, shop, client, runner,  # noqa: ANN001
                                                                            platforms) -> None:
    sim = platforms.shopify
    with hub.session() as s:
        save_overrides(s, shop.merchant_id, {"payouts": {"mode": "summary"}})
        s.commit()
    orders = []
    for n in range(9):   # three days of orders
        order = an_order(465_001 + n, 2501 + n, created_at=PAYOUT_DAY - timedelta(days=1 + n % 3, minutes=n))
        sim.add_order(shop.domain, order)
        deliver(client, order, shop)
        orders.append(order)
    assert all(r.status == "succeeded" for r in settled(hub))
    refund = refund_first_and_pay_out(platforms, client, hub, shop, orders, "-0.99")
    payout = sim.payments_accounts[shop.domain].payouts[-1]
    sync(runner, shop)
    [deposit] = platforms.quickbooks.objects(shop.realm, "Deposit")
    assert Decimal(str(deposit["TotalAmt"])) == payout.net
    assert not any(ln.get("LinkedTxn") for ln in deposit["Line"])
    charges = sorted(ln["Description"] for ln in deposit["Line"] if ln["Description"].startswith("Charges of"))
    assert charges == ["Charges of 2026-11-27", "Charges of 2026-11-28", "Charges of 2026-11-29"]
    by_day: dict[str, Decimal] = {}
    for order in orders:
        day = order.created_at.date().isoformat()
        by_day[day] = by_day.get(day, Decimal("0")) + order.total
    assert {ln["Description"][-10:]: Decimal(str(ln["Amount"])) for ln in deposit["Line"]
            if ln["Description"].startswith("Charges of")} == by_day
    assert [Decimal(str(ln["Amount"])) for ln in deposit["Line"] if ln["Description"].startswith("Refunds of")] == [
        -refund["amount"]]
    assert len(deposit["Line"]) == 3 + 1 + 1 + 1   # three days of charges, the refunds, the adjustment, the fees
    assert payouts_json(runner, shop)[0]["status"] == "posted"


def test_the_console_board_shows_a_held_payout_with_its_cause_and_re_try_posts_it(hub, shop, client, runner,  # noqa: ANN001
                                                                                 platforms) -> None:
    from hub.users import create_user
    from tests.web.test_console import html, login, post

    with hub.session() as s:
        create_user(s, "support@example.com", "correct horse battery", "support")
        s.commit()
    sim = platforms.shopify
    for order in paid_orders(platforms, client, hub, shop, 2):
        sim.record_order(shop.domain, order.order_id)
    sim.add_adjustment(shop.domain, "-3.10", type="BILLING_DEBIT")
    payout = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    sync(runner, shop)
    assert login(client, "support@example.com", "correct horse battery").status_code == 302
    page = html(client.get("/console/payouts"))
    assert f'data-payout="{payout.id}" data-status="scheduled"' in page and "Re-try" not in page
    sim.pay_payout(shop.domain, payout.id)
    sync(runner, shop)
    page = html(client.get("/console/payouts"))
    assert f'data-payout="{payout.id}" data-status="held"' in page and "difference -3.10" in page
    assert "payouts.other_types.BILLING_DEBIT" in page

    with hub.session() as s:
        save_overrides(s, shop.merchant_id, {"payouts": {"other_types": {"BILLING_DEBIT": "Shopify Bills"}}})
        s.commit()
    answer = post(client, f"/console/payouts/shopify/{payout.id}/retry")
    assert answer.status_code == 302
    [deposit] = platforms.quickbooks.objects(shop.realm, "Deposit")
    page = html(client.get("/console/payouts"))
    assert f'data-payout="{payout.id}" data-status="posted"' in page and f"deposit {deposit['Id']}" in page
    post(client, f"/console/payouts/shopify/{payout.id}/retry")   # again: the binding answers, nothing new
    assert platforms.quickbooks.objects(shop.realm, "Deposit") == [deposit]
    assert post(client, "/console/payouts/shopify/999999/retry").status_code == 404


def accounts_by_name(platforms: Any, shop: Any) -> dict[str, dict[str, Any]]:
    return {a["Name"]: a for a in platforms.quickbooks.objects(shop.realm, "Account")}


def kill_once(monkeypatch: Any, target_type: str) -> None:
    """The worker dies right after QuickBooks created the object bound as ``target_type``, before the binding."""
    from sync.ledger import Ledger

    real_bind = Ledger.bind
    killed: list[str] = []

    def bind(self, source, target_platform, kind, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if source.type == "payout" and kind == target_type and not killed:
            killed.append(kind)
            raise SystemExit("worker killed")
        return real_bind(self, source, target_platform, kind, *args, **kwargs)

    monkeypatch.setattr(Ledger, "bind", bind)


def test_a_withdrawal_is_a_deposit_of_zero_and_one_transfer_equal_to_what_leaves_the_bank(  # noqa: ANN001
        hub, shop, client, runner, platforms, monkeypatch) -> None:
    sim, qb = platforms.shopify, platforms.quickbooks
    orders = paid_orders(platforms, client, hub, shop, 3)
    for order in orders:
        sim.record_order(shop.domain, order.order_id)
    sim.pay_payout(shop.domain, sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY - timedelta(days=1)).id)
    sync(runner, shop)
    [first] = qb.objects(shop.realm, "Deposit")
    for order in orders[:2]:   # next day: two refunds and a fee correction, no sale: money leaves the bank
        refund_webhook(client, shop, order.order_id, sim.refund_order(shop.domain, order.order_id, {1: 1}))
        settled(hub)
        sim.record_order(shop.domain, order.order_id)
    sim.add_adjustment(shop.domain, "-1.50")
    withdrawal = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    sim.pay_payout(shop.domain, withdrawal.id)
    assert withdrawal.net < 0

    kill_once(monkeypatch, "transfer")   # killed between the transfer's create and its binding ...
    assert runner.invoke(["payouts", "sync", "--merchant", str(shop.merchant_id)]).exit_code != 0
    sync(runner, shop)                   # ... the next pass finds it by its note
    deposits = [d for d in qb.objects(shop.realm, "Deposit") if d["Id"] != first["Id"]]
    [zero], [transfer] = deposits, qb.objects(shop.realm, "Transfer")
    names = accounts_by_name(platforms, shop)
    clearing = names["Shopify Payments clearing"]
    assert clearing["AccountType"] == "Other Current Asset"
    assert Decimal(str(zero["TotalAmt"])) == 0 and zero["TxnDate"] == "2026-11-30"
    assert zero["DepositToAccountRef"]["value"] == names["Checking"]["Id"]
    offset = [ln for ln in zero["Line"] if ln["DepositLineDetail"]["AccountRef"]["value"] == clearing["Id"]]
    assert [Decimal(str(ln["Amount"])) for ln in offset] == [-withdrawal.net]
    assert (transfer["FromAccountRef"]["value"], transfer["ToAccountRef"]["value"]) == (names["Checking"]["Id"],
                                                                                       clearing["Id"])
    assert Decimal(str(transfer["Amount"])) == -withdrawal.net and transfer["TxnDate"] == "2026-11-30"
    assert f"payout {withdrawal.id} " in transfer["PrivateNote"]
    # what the bank shows: the deposit less the transfer is the payout, to the cent
    assert Decimal(str(zero["TotalAmt"])) - Decimal(str(transfer["Amount"])) == withdrawal.net
    row = next(r for r in payouts_json(runner, shop) if r["payout_id"] == str(withdrawal.id))
    assert (row["status"], row["deposit_ids"], row["transfer_id"], row["difference"]) == (
        "posted", [zero["Id"]], transfer["Id"], "0.00")

    before = len(qb.calls)   # re-running asks QuickBooks nothing and creates nothing
    sync(runner, shop)
    assert len(qb.calls) == before and len(qb.objects(shop.realm, "Transfer")) == 1
    result = runner.invoke(["reconcile", str(shop.merchant_id), "--json"])
    kinds = {r["kind"] for r in json.loads(result.output)["discrepancies"]}
    assert not kinds & {"deposit_missing", "transfer_missing", "deposit_total_differs",
                        "paid_payout_without_deposit"}, kinds
    qb.delete(shop.realm, "Transfer", transfer["Id"])   # a bookkeeper deletes the transfer: reported
    result = runner.invoke(["reconcile", str(shop.merchant_id), "--json"])
    [gone] = [r for r in json.loads(result.output)["discrepancies"] if r["kind"] == "transfer_missing"]
    assert gone["quickbooks"] == {"type": "Transfer", "id": transfer["Id"]}


def test_a_payout_of_more_lines_than_a_deposit_takes_is_split_into_parts_that_add_up_to_it(  # noqa: ANN001
        hub, shop, client, runner, platforms, monkeypatch) -> None:
    sim, qb = platforms.shopify, platforms.quickbooks
    qb.max_deposit_lines = 5                      # QuickBooks refuses a sixth line ...
    with hub.session() as s:                      # ... and the rules know it
        save_overrides(s, shop.merchant_id, {"payouts": {"max_lines": 5}})
        s.commit()
    orders = paid_orders(platforms, client, hub, shop, 12)
    refund_first_and_pay_out(platforms, client, hub, shop, orders, "-4.20")
    payout = sim.payments_accounts[shop.domain].payouts[-1]

    kill_once(monkeypatch, "deposit:2")   # killed between part 2's create and its binding ...
    assert runner.invoke(["payouts", "sync", "--merchant", str(shop.merchant_id)]).exit_code != 0
    assert len(qb.objects(shop.realm, "Deposit")) == 2
    sync(runner, shop)                    # ... resumed: part 2 found by its memo, the others created
    parts = qb.objects(shop.realm, "Deposit")
    k = len(parts)
    assert k == 4   # 12 linked payments, a refund, the adjustment and the fees: 15 lines, 4 a part + 1 spare
    assert sum((Decimal(str(d["TotalAmt"])) for d in parts), Decimal("0")) == payout.net
    memos = sorted(d["PrivateNote"] for d in parts)
    assert all(f"payout {payout.id} part {n} of {k}," in memo for n, memo in enumerate(memos, 1)), memos
    assert all(len(d["Line"]) <= 5 and Decimal(str(d["TotalAmt"])) >= 0 and d["TxnDate"] == "2026-11-30"
               for d in parts)
    linked = [ln["LinkedTxn"][0]["TxnId"] for d in parts for ln in d["Line"] if ln.get("LinkedTxn")]
    assert sorted(linked) == sorted(p["Id"] for p in qb.objects(shop.realm, "Payment"))   # each in one part
    row = payouts_json(runner, shop)[0]
    by_part = {int(d["PrivateNote"].split(" part ")[1].split(" ")[0]): d["Id"] for d in parts}
    assert (row["status"], row["difference"], row["transfer_id"]) == ("posted", "0.00", None)
    assert row["deposit_ids"] == [by_part[n] for n in range(1, k + 1)] and row["deposit_id"] == by_part[1]
    payment_of = {str(p["Id"]): p for p in qb.objects(shop.realm, "Payment")}
    deposit_of = {ln["LinkedTxn"][0]["TxnId"]: d["Id"] for d in parts for ln in d["Line"] if ln.get("LinkedTxn")}
    ledger = json.loads(runner.invoke(["orders", "list", "--json"]).output)
    assert {o["quickbooks"]["deposit_id"] for o in ledger} == set(by_part.values())
    for o in ledger:   # each order shows the part that links its payment
        assert {deposit_of[p] for p in o["quickbooks"]["payment_ids"]} == {o["quickbooks"]["deposit_id"]}, o
    assert len(payment_of) == 12

    before = len(qb.calls)
    sync(runner, shop)
    assert len(qb.calls) == before and len(qb.objects(shop.realm, "Deposit")) == k
    result = runner.invoke(["reconcile", str(shop.merchant_id), "--json"])
    kinds = {r["kind"] for r in json.loads(result.output)["discrepancies"]}
    assert not kinds & {"deposit_missing", "deposit_total_differs", "paid_payout_without_deposit"}, kinds


def test_quickbooks_refuses_a_negative_deposit_one_over_its_line_cap_and_a_bad_transfer(  # noqa: ANN001
        shop, platforms) -> None:
    from connectors.quickbooks import QuickBooksClient

    sim = platforms.quickbooks
    qb = QuickBooksClient(shop.realm, sim.issue_token(shop.realm), api_url=sim.url)
    names = accounts_by_name(platforms, shop)
    bank, undeposited = names["Checking"]["Id"], names["Undeposited Funds"]["Id"]
    income = names["Sales of Product Income"]["Id"]

    def deposit(*amounts: str) -> dict[str, Any]:
        return {"DepositToAccountRef": {"value": bank}, "TxnDate": "2026-11-30",
                "Line": [{"Amount": a, "DetailType": "DepositLineDetail",
                          "DepositLineDetail": {"AccountRef": {"value": undeposited}}} for a in amounts]}

    zero = qb.create("Deposit", deposit("10.00", "-10.00"), request_id="zero-deposit")
    assert Decimal(str(zero["TotalAmt"])) == 0                       # 0.00 is a deposit QuickBooks takes
    with pytest.raises(Exception, match="cannot be negative"):
        qb.create("Deposit", deposit("10.00", "-10.01"), request_id="negative-deposit")
    sim.max_deposit_lines = 3
    with pytest.raises(Exception, match="at most 3 lines"):
        qb.create("Deposit", deposit("1.00", "1.00", "1.00", "1.00"), request_id="long-deposit")
    assert len(sim.objects(shop.realm, "Deposit")) == 1

    def transfer(from_: str | None, to: str | None, amount: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"TxnDate": "2026-11-30"}
        if from_:
            body["FromAccountRef"] = {"value": from_}
        if to:
            body["ToAccountRef"] = {"value": to}
        if amount is not None:
            body["Amount"] = amount
        return body

    for n, (body, why) in enumerate([(transfer(bank, undeposited, "0.00"), "more than zero"),
                                     (transfer(bank, undeposited, "-5.00"), "more than zero"),
                                     (transfer(bank, bank, "5.00"), "two different accounts"),
                                     (transfer(bank, "999999", "5.00"), "Invalid Reference"),
                                     (transfer(bank, income, "5.00"), "asset accounts"),
                                     (transfer(None, undeposited, "5.00"), "FromAccountRef"),
                                     (transfer(bank, undeposited, None), "Amount")]):
        with pytest.raises(Exception, match=why):
            qb.create("Transfer", body, request_id=f"bad-transfer-{n}")
    assert sim.objects(shop.realm, "Transfer") == []
    made = qb.create("Transfer", transfer(bank, undeposited, "5.00"), request_id="good-transfer")
    assert qb.get("Transfer", made["Id"])["Amount"] in (5, Decimal("5.00"), 5.0)
    assert [t["Id"] for t in qb.query("SELECT * FROM Transfer WHERE TxnDate = '2026-11-30'")] == [made["Id"]]
    assert qb.create("Transfer", transfer(bank, undeposited, "5.00"), request_id="good-transfer")["Id"] == made["Id"]


def test_the_rules_check_warns_of_payments_kept_from_payouts_and_a_payout_bank_that_is_no_bank(  # noqa: ANN001
        hub, shop) -> None:
    from mappings.rules import load_rules
    from sync.rules_check import check_rules

    def payout_notes(notes: list[str]) -> list[str]:
        return [n for n in notes if n.startswith(("payments.", "payouts."))]

    assert payout_notes(check_rules(hub, shop.merchant_id, load_rules()).notes) == []   # defaults: all post
    rules = load_rules({"payments": {"deposit_accounts": {"shopify_payments": "Checking"}},
                        "payouts": {"deposit_accounts": {"woocommerce_payments": "Undeposited Funds"}}})
    report = check_rules(hub, shop.merchant_id, rules)
    assert report.missing == [], report
    [payments, bank] = payout_notes(report.notes)
    assert payments.startswith("payments.deposit_accounts.shopify_payments: Shopify Payments payments go to "
                               "'Checking', not to Undeposited Funds")
    assert bank.startswith("payouts.deposit_accounts.woocommerce_payments: 'Undeposited Funds' is Other Current "
                           "Asset, not a bank account")
