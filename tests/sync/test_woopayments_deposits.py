"""WooPayments: a store's deposit becomes one QuickBooks deposit equal to it, linking the payments the hub made
for the store's orders (delivered by the store's signed webhooks to the served hub) with the refund, the fees
and an adjustment on their own lines; posted once."""

from __future__ import annotations

import json
from decimal import Decimal

from click.testing import CliRunner

from cli.main import main as o2c
from connectors import woopayments
from tests.helpers import settled
from tests.sync.test_woocommerce import LINES, store  # noqa: F401 - the connected-store fixture


def test_a_woopayments_deposit_is_one_quickbooks_deposit_equal_to_it(store, platforms) -> None:  # noqa: ANN001, F811
    hub, _base, shop, woo, _conn_id, _ = store
    orders = [woo.add_order("cafe", lines=LINES, billing={"first_name": "Zoë", "last_name": f"B{n}",
                                                          "email": f"zoe{n}@example.com", "country": "US"},
                            status="processing", payment_method="woocommerce_payments",
                            transaction_id=f"pi_{n:04d}") for n in range(4)]
    runs = settled(hub)
    assert all(r.status == "succeeded" for r in runs), [r.reason for r in runs]
    woo.add_refund("cafe", orders[1]["id"], "5.00", reason="chipped mug")
    assert all(r.status in ("succeeded", "skipped") for r in settled(hub))
    for o in orders:
        woo.record_wcpay_order("cafe", o["id"])
    adjustment = woo.add_wcpay_adjustment("cafe", "-1.50", type="adjustment")
    deposit = woo.schedule_wcpay_deposit("cafe")
    assert deposit.amount == sum((t.net for t in deposit.transactions), Decimal("0"))

    def sync() -> None:
        result = CliRunner().invoke(o2c, ["payouts", "sync", "--merchant", str(shop.merchant_id)])
        assert result.exit_code == 0, result.output

    sync()
    assert platforms.quickbooks.objects(shop.realm, "Deposit") == []   # pending at WooPayments: not posted
    woo.pay_wcpay_deposit("cafe", deposit.id)
    sync()
    sync()
    [posted] = platforms.quickbooks.objects(shop.realm, "Deposit")
    assert Decimal(str(posted["TotalAmt"])) == deposit.amount
    linked = {ln["LinkedTxn"][0]["TxnId"] for ln in posted["Line"] if ln.get("LinkedTxn")}
    assert linked == {p["Id"] for p in platforms.quickbooks.objects(shop.realm, "Payment")} and len(linked) == 4
    direct = sorted(Decimal(str(ln["Amount"])) for ln in posted["Line"] if not ln.get("LinkedTxn"))
    fees = sum((t.fees for t in deposit.transactions), Decimal("0"))
    assert direct == sorted([Decimal("-5.00"), adjustment.amount, -fees])
    assert f"WooPayments payout {deposit.id} " in posted["PrivateNote"]
    [row] = json.loads(CliRunner().invoke(o2c, ["payouts", "list", "--json"]).output)
    assert (row["platform"], row["payout_id"], row["status"], row["net"], row["currency"], row["deposit_id"]) == (
        "woocommerce", deposit.id, "posted", str(deposit.amount), "USD", posted["Id"])
    assert woopayments.amount(1999) == Decimal("19.99")
