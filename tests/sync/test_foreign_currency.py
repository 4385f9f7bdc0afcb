"""Orders in another currency than the QuickBooks company's: invoiced in the order's currency, at the rate
the rule ``currency.exchange_rate`` picks (the store's, so the books match the payout, else QuickBooks' own
rate for the order's day), the payment at the invoice's rate; a company without multi-currency, or without
a rate, fails the order with the fix named and creates nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from hub.mapping_rules import save_overrides
from tests.helpers import an_order, settled, webhook

ORDERED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def sync(hub: Any, client: Any, platforms: Any, shop: Any, **order: Any) -> Any:
    placed = an_order(created_at=ORDERED, **order)
    platforms.shopify.add_order(shop.domain, placed)
    body, headers = webhook(placed, shop.domain)
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    [run] = settled(hub)
    return placed, run


def company(platforms: Any, shop: Any, *, shop_currency: str, multicurrency: bool = True) -> None:
    platforms.shopify.add_shop(shop.domain, currency=shop_currency)
    platforms.quickbooks.add_company(shop.realm, currency="USD", multi_currency=multicurrency)


@pytest.mark.parametrize(("shop_currency", "fx"), [("EUR", "1.08"), ("JPY", "0.0066")])
def test_an_order_in_the_shops_currency_is_invoiced_in_it_at_the_stores_rate(shop_currency: str, fx: str, hub,  # noqa: ANN001
                                                                            client, shop, platforms) -> None:
    company(platforms, shop, shop_currency=shop_currency)
    platforms.quickbooks.set_exchange_rate(shop.realm, shop_currency, "9", as_of="2026-01-01")  # not used
    lines = [{"sku": "TEE", "title": "Tee", "quantity": 3, "price": "1517" if shop_currency == "JPY" else "24.35"}]
    order, run = sync(hub, client, platforms, shop, currency=shop_currency, presentment_currency="USD", fx=fx,
                      lines=lines, shipping="0", order_discount="0", tax_rate="0")
    assert run.status == "succeeded", run.reason
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    [payment] = platforms.quickbooks.objects(shop.realm, "Payment")
    # the store's rate: USD the buyer paid per unit of the shop's currency (what the payout is worth)
    usd = sum((Decimal(m["presentmentMoney"]["amount"]) for m in [order.bag(order.total)]), Decimal("0"))
    rate = Decimal(str(invoice["ExchangeRate"]))
    assert invoice["CurrencyRef"]["value"] == shop_currency == payment["CurrencyRef"]["value"]
    assert Decimal(str(invoice["TotalAmt"])) == order.total == Decimal(str(payment["TotalAmt"]))
    assert rate == (usd / order.total).quantize(Decimal("0.00000001"))
    assert Decimal(str(payment["ExchangeRate"])) == rate
    assert abs(order.total * rate - usd) < Decimal("0.01")
    if shop_currency == "JPY":
        assert Decimal(str(invoice["TotalAmt"])) == Decimal(str(invoice["TotalAmt"])).to_integral_value()


def test_without_a_store_rate_quickbooks_rate_for_the_orders_day_is_used(hub, client, shop, platforms) -> None:  # noqa: ANN001
    company(platforms, shop, shop_currency="EUR")
    qb = platforms.quickbooks
    qb.set_exchange_rate(shop.realm, "EUR", "1.0500", as_of="2026-11-01")
    qb.set_exchange_rate(shop.realm, "EUR", "1.0975", as_of="2026-11-20")   # the order's day
    qb.set_exchange_rate(shop.realm, "EUR", "1.2000", as_of="2026-11-25")
    order, run = sync(hub, client, platforms, shop, currency="EUR")         # the buyer paid in euros too
    assert run.status == "succeeded", run.reason
    [invoice] = qb.objects(shop.realm, "Invoice")
    [payment] = qb.objects(shop.realm, "Payment")
    assert invoice["CurrencyRef"]["value"] == "EUR" and Decimal(str(invoice["TotalAmt"])) == order.total
    assert Decimal(str(invoice["ExchangeRate"])) == Decimal("1.0975") == Decimal(str(payment["ExchangeRate"]))
    assert any(c.path.endswith("/exchangerate") and "asofdate=2026-11-20" in c.query for c in qb.calls)


def test_the_rule_can_take_quickbooks_rate_even_when_the_store_has_one(hub, client, shop, platforms) -> None:  # noqa: ANN001
    company(platforms, shop, shop_currency="EUR")
    platforms.quickbooks.set_exchange_rate(shop.realm, "EUR", "1.0975", as_of="2026-11-20")
    with hub.session() as s:
        save_overrides(s, shop.merchant_id, {"currency": {"exchange_rate": "quickbooks"}})
        s.commit()
    order, run = sync(hub, client, platforms, shop, currency="EUR", presentment_currency="USD", fx="1.08")
    assert run.status == "succeeded", run.reason
    [invoice] = platforms.quickbooks.objects(shop.realm, "Invoice")
    assert Decimal(str(invoice["ExchangeRate"])) == Decimal("1.0975")


def test_a_company_without_multicurrency_fails_the_order_with_the_fix_named(hub, client, shop, platforms) -> None:  # noqa: ANN001
    company(platforms, shop, shop_currency="EUR", multicurrency=False)
    order, run = sync(hub, client, platforms, shop, currency="EUR", presentment_currency="USD", fx="1.08")
    assert run.status == "failed"
    assert "turn on multi-currency in QuickBooks" in run.reason and "EUR" in run.reason, run.reason
    assert platforms.quickbooks.objects(shop.realm, "Customer") == []
    assert platforms.quickbooks.objects(shop.realm, "Invoice") == []


def test_no_rate_anywhere_fails_the_order_naming_the_day_to_enter(hub, client, shop, platforms) -> None:  # noqa: ANN001
    company(platforms, shop, shop_currency="EUR")
    order, run = sync(hub, client, platforms, shop, currency="EUR")
    assert run.status == "failed"
    assert "2026-11-20" in run.reason and "QuickBooks" in run.reason, run.reason
    assert run.error_code == "currency.exchange_rate"
    assert platforms.quickbooks.objects(shop.realm, "Invoice") == []
