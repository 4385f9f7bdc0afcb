"""The mapping corpus: every order in ``tests/fixtures/corpus`` maps to the invoice written down with it, whose
total is the order's to the cent, or fails with the ``MappingError`` written down (rule and message) and
nothing else. The fixtures are Shopify orders as ``ORDER_QUERY`` returns them; see ``_generate.py`` there.

The test resolves QuickBooks ids the way the pipeline does, with each object's name standing in for its
id: so ``ItemRef`` and ``TaxCodeRef`` read as the names the rules chose.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mappings.hubspot import explain_contact
from mappings.model import MappingError, cents
from mappings.quickbooks import (
    check_invoice_total,
    customer_payload,
    explain_invoice,
    explain_payment,
    invoice_currency,
    invoice_payload,
    invoice_total,
    payment_splits,
    required_items,
    required_tax_codes,
)
from mappings.rules import load_rules
from mappings.shopify import order_from_graphql

CORPUS = Path(__file__).parents[1] / "fixtures" / "corpus"
NAMES = sorted(p.stem for p in CORPUS.glob("*.json"))
TRACED = ("Amount", "UnitPrice", "Qty", "TaxCodeRef")


def _load(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))


def _build(fx: dict[str, Any]):
    """(order, rules, the invoice_payload keywords) for a fixture, resolving ids as the pipeline does."""
    order = order_from_graphql(fx["order"], fx["extra_line_nodes"])
    rules = load_rules(fx["rules"])
    targets = required_items(order, rules)
    special = {k: targets.pop(k).name for k in ("shipping", "tip", "fee") if k in targets}
    kwargs = dict(customer_id="C-1", item_ids={key: t.name for key, t in targets.items()},
                  shipping_item_id=special.get("shipping"), tip_item_id=special.get("tip"),
                  fee_item_id=special.get("fee"), tax_code_ids={n: n for n in required_tax_codes(order, rules)},
                  home_currency=fx["home_currency"])
    return order, rules, kwargs


def test_corpus_is_large_and_covers_every_mode():
    assert len(NAMES) >= 60
    fixtures = [_load(n) for n in NAMES]
    rules = [json.dumps(f["rules"]) for f in fixtures]
    for needle in ("unit_price", "line_tax_codes", "fallback", "patterns", "\"map\"", "deposit_accounts",
                   "multi_currency"):
        assert any(needle in r for r in rules), needle
    assert sum("error" in f for f in fixtures) >= 5


@pytest.mark.parametrize("name", NAMES)
def test_corpus_order(name):
    fx = _load(name)
    if "error" in fx:
        with pytest.raises(MappingError) as info:
            order, rules, kwargs = _build(fx)
            payload = invoice_payload(order, rules=rules, **kwargs)
            check_invoice_total(order, payload)
        assert info.value.rule == fx["error"]["rule"], str(info.value)
        assert fx["error"]["message"] in str(info.value)
        return
    exp = fx["expect"]
    order, rules, kwargs = _build(fx)
    payload, traces = explain_invoice(order, rules, **kwargs)
    assert payload == invoice_payload(order, rules=rules, **kwargs)

    # the invariant: the invoice's total is the order's, to the cent
    q = cents(order.currency)
    assert order.total == Decimal(exp["total"])
    assert invoice_total(payload) == Decimal(exp["total"]).quantize(q)
    check_invoice_total(order, payload)

    # the invoice as written down
    sales = [ln for ln in payload["Line"] if ln["DetailType"] == "SalesItemLineDetail"]
    for line in sales:
        d = line["SalesItemLineDetail"]
        assert line["Amount"] == d["Qty"] * d["UnitPrice"], line
        assert line["Amount"] == line["Amount"].quantize(q)
    if exp["lines"] is not None:
        got = [[ln["SalesItemLineDetail"]["ItemRef"]["value"], ln["Description"], ln["SalesItemLineDetail"]["Qty"],
                ln["SalesItemLineDetail"]["UnitPrice"], ln["Amount"], ln["SalesItemLineDetail"]["TaxCodeRef"]["value"]]
               for ln in sales]
        assert len(got) == len(exp["lines"])
        for g, e in zip(got, exp["lines"], strict=True):
            assert g[:3] == e[:3], (g, e)
            assert (g[3], g[4]) == (Decimal(e[3]), Decimal(e[4])), (g, e)
            if len(e) > 5:
                assert g[5] == e[5], (g, e)
    discounts = [ln["Amount"] for ln in payload["Line"] if ln["DetailType"] == "DiscountLineDetail"]
    assert sum(discounts, Decimal("0")) == Decimal(exp["discount"])
    assert payload["TxnTaxDetail"]["TotalTax"] == Decimal(exp["tax"])
    assert (payload.get("GlobalTaxCalculation") == "TaxInclusive") == bool(exp.get("tax_inclusive"))
    assert payload["CurrencyRef"] == {"value": exp.get("currency", order.currency)}
    rate = exp.get("exchange_rate")
    assert payload.get("ExchangeRate") == (Decimal(rate) if rate else None)
    if "order_exchange_rate" in exp:
        assert [str(order.exchange_rate), order.exchange_rate_currency] == exp["order_exchange_rate"]
    if "refunded" in exp:
        assert order.total_refunded == Decimal(exp["refunded"])
    json.dumps(payload, default=str)

    # every amount is traced to the order fields it came from
    paths = {t.path for t in traces}
    for i, line in enumerate(payload["Line"]):
        assert f"Line[{i}].Amount" in paths
        if line["DetailType"] == "SalesItemLineDetail":
            assert all(f"Line[{i}].SalesItemLineDetail.{k}" in paths for k in TRACED[1:])
    assert "TxnTaxDetail.TotalTax" in paths
    assert all(t.source for t in traces)

    # payments: one per deposit account, adding up to what was paid
    paid = order.total if order.is_paid else order.amount_paid
    splits = payment_splits(order, rules, paid) if paid > 0 else []
    if "payments" in exp:
        assert [[s.account, str(s.amount)] for s in splits] == exp["payments"]
    assert sum((s.amount for s in splits), Decimal("0")) == (paid if paid > 0 else 0)
    for s in splits:
        p, ptraces = explain_payment(order, customer_id="C-1", invoice_id="I-1", amount=s.amount,
                                     deposit_account_id=s.account, rules=rules, home_currency=fx["home_currency"])
        assert p["TotalAmt"] == s.amount and p["DepositToAccountRef"] == {"value": s.account}
        assert p.get("ExchangeRate") == payload.get("ExchangeRate")
        assert {"TotalAmt", "DepositToAccountRef"} <= {t.path for t in ptraces}

    # the customer carries the invoice's currency when it is foreign
    currency = invoice_currency(order, rules, fx["home_currency"])
    cust = customer_payload(order.customer, currency=currency)
    assert cust.get("CurrencyRef") == ({"value": currency} if currency else None)
    props, ptraces = explain_contact(order.customer, order, rules)
    assert {t.path for t in ptraces} == set(props)
