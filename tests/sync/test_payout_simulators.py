"""The simulated platforms behind payouts behave as documented, never more generously: Shopify serves payouts
and balance transactions through ``shopifyPaymentsAccount`` (net = amount − fee, a payout's net the sum of its
transactions, scheduled → paid) within its query cost; QuickBooks refuses the deposits it refuses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connectors import shopify_payouts
from connectors.errors import Permanent
from connectors.quickbooks import QuickBooksClient
from connectors.shopify import ShopifyClient
from demo.simulators.shopify_cost import MAX_QUERY_COST
from tests.helpers import an_order
from tests.sync.test_payout_deposits import PAYOUT_DAY, paid_orders


def test_shopify_serves_payouts_and_their_balance_transactions_within_the_query_cost(platforms, shop_factory,
                                                                                   hub) -> None:  # noqa: ANN001
    shop = shop_factory(hub)
    sim = platforms.shopify
    sim.set_fee_model(shop.domain, rate="0.025", flat="0.25")
    orders = [an_order(470_001 + n, 3001 + n) for n in range(3)]
    for order in orders:
        sim.add_order(shop.domain, order)
        sim.record_order(shop.domain, order.order_id)
    refund = sim.refund_order(shop.domain, orders[0].order_id, {1: 1})
    assert [t.type for t in sim.record_order(shop.domain, orders[0].order_id)] == ["REFUND"]
    assert sim.record_order(shop.domain, orders[0].order_id) == []          # each order transaction once
    sim.add_adjustment(shop.domain, "-2.00", type="SHIPPING_LABEL")
    first = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY)
    sim.add_adjustment(shop.domain, "-50.00", type="RESERVED_FUNDS")        # the next payout: a withdrawal
    second = sim.schedule_payout(shop.domain, issued_at=PAYOUT_DAY.replace(day=29))
    with pytest.raises(ValueError):
        sim.schedule_payout(shop.domain)                                     # nothing left to pay out

    client = ShopifyClient(shop.domain, sim.issue_token(shop.domain), api_url=sim.url)
    listed = list(shopify_payouts.payouts(client.graphql, issued_since="2026-11-01"))
    assert [(p["legacyResourceId"], p["status"], p["transactionType"]) for p in listed] == [
        (str(second.id), "SCHEDULED", "WITHDRAWAL"), (str(first.id), "SCHEDULED", "DEPOSIT")]   # by issue date
    sim.pay_payout(shop.domain, first.id)
    [paid] = [p for p in shopify_payouts.payouts(client.graphql) if p["legacyResourceId"] == str(first.id)]
    assert paid["status"] == "PAID" and Decimal(paid["net"]["amount"]) == first.net

    txns = shopify_payouts.payout_transactions(client.graphql, str(first.id))
    assert len(txns) == 5 and {t["associatedPayout"]["id"] for t in txns} == {
        f"gid://shopify/ShopifyPaymentsPayout/{first.id}"}
    for t in txns:
        assert Decimal(t["net"]["amount"]) == Decimal(t["amount"]["amount"]) - Decimal(t["fee"]["amount"])
    assert sum(Decimal(t["net"]["amount"]) for t in txns) == first.net
    charges = [t for t in txns if t["type"] == "CHARGE"]
    assert [Decimal(t["fee"]["amount"]) for t in charges] == [
        (o.total * Decimal("0.025") + Decimal("0.25")).quantize(Decimal("0.01")) for o in orders]
    [back] = [t for t in txns if t["type"] == "REFUND"]
    assert Decimal(back["amount"]["amount"]) == -refund["amount"] and Decimal(back["fee"]["amount"]) == 0
    assert back["associatedOrder"] == {"id": orders[0].gid, "name": orders[0].name}
    assert second.net == Decimal("-50.00")
    costs = [cost for domain, name, cost, code in sim.operations if name in ("HubPayouts", "HubPayoutTransactions")]
    assert costs and max(costs) <= MAX_QUERY_COST and all(code is None for *_, code in sim.operations)


def _qb(platforms: Any, shop: Any) -> QuickBooksClient:
    return QuickBooksClient(shop.realm, platforms.quickbooks.issue_token(shop.realm), api_url=platforms.quickbooks.url)


def _account(qb: QuickBooksClient, name: str) -> str:
    found = qb.find_one("Account", "Name", name)
    assert found is not None
    return str(found["Id"])


def _linked(payment: dict[str, Any], amount: Any = None) -> dict[str, Any]:
    return {"Amount": payment["TotalAmt"] if amount is None else amount,
            "LinkedTxn": [{"TxnId": payment["Id"], "TxnType": "Payment", "TxnLineId": "0"}]}


def _direct(account_id: str, amount: str) -> dict[str, Any]:
    return {"Amount": Decimal(amount), "DetailType": "DepositLineDetail",
            "DepositLineDetail": {"AccountRef": {"value": account_id}}}


def test_quickbooks_checks_deposits_as_quickbooks_does(hub, shop, client, platforms) -> None:  # noqa: ANN001
    paid_orders(platforms, client, hub, shop, 2)
    qb = _qb(platforms, shop)
    p1, p2 = platforms.quickbooks.objects(shop.realm, "Payment")
    checking, undeposited = _account(qb, "Checking"), _account(qb, "Undeposited Funds")
    fees = qb.create("Account", {"Name": "Processing Fees", "AccountType": "Expense"}, request_id="fees-1")["Id"]

    def refused(lines: list[dict[str, Any]], match: str, bank: str = checking) -> None:
        with pytest.raises(Permanent, match=match):
            qb.create("Deposit", {"DepositToAccountRef": {"value": bank}, "Line": lines},
                      request_id=f"refused-{len(platforms.quickbooks.calls)}")

    refused([_linked(p1)], "bank account", bank=undeposited)
    refused([_linked(p1, Decimal("1.00"))], "amount of payment")
    refused([_linked(p1), _linked(p1)], "already in a deposit")
    refused([_direct(fees, "-5.00")], "cannot be negative")
    refused([{"Amount": Decimal("1.00")}], "AccountRef")

    deposit = qb.create("Deposit", {"DepositToAccountRef": {"value": checking}, "TxnDate": "2026-11-30",
                                    "TotalAmt": 1, "Line": [_linked(p1), _direct(fees, "-1.75")]},
                        request_id="deposit-1")
    assert Decimal(str(deposit["TotalAmt"])) == Decimal(str(p1["TotalAmt"])) - Decimal("1.75")   # sum of the lines
    refused([_linked(p1)], "already in a deposit")            # a payment is linked once
    with pytest.raises(Permanent, match="is in deposit"):     # and locked while deposited
        qb.void("Payment", p1["Id"], p1["SyncToken"])

    # a payment the bookkeeper deposited straight to the bank is not in Undeposited Funds
    invoice = next(i for i in platforms.quickbooks.objects(shop.realm, "Invoice") if i["Id"] != p1["Line"][0][
        "LinkedTxn"][0]["TxnId"])
    qb.void("Payment", p2["Id"], p2["SyncToken"])
    direct = platforms.quickbooks.record_payment(shop.realm, invoice["CustomerRef"]["value"], invoice["TotalAmt"],
                                                 {invoice["Id"]: invoice["TotalAmt"]}, deposit_account="Checking")
    refused([_linked(direct)], "Undeposited Funds")
