"""A tied-out deposit plan as the deposits QuickBooks takes: every part within the line cap and not below zero,
the parts adding up to the payout to the cent, each payment linked once; a withdrawal as parts of 0.00 and a
transfer of what leaves the bank."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from mappings.deposit_parts import split_plan
from mappings.deposits import DepositPlan
from mappings.payout_rules import PayoutRules, payout_rules
from mappings.rule_fields import RulesError

CLEARING = "77"


def plan_of(amounts: list[str]) -> DepositPlan:
    """Positive amounts link a payment each (its order ``o<n>``); the others are direct lines (fees, refunds)."""
    plan = DepositPlan()
    for n, text in enumerate(amounts):
        amount = Decimal(text)
        if amount > 0 and n % 2 == 0:
            plan.lines.append({"Amount": amount, "LinkedTxn": [{"TxnId": f"p{n}", "TxnType": "Payment"}]})
            plan.line_orders.append([f"o{n}"])
        else:
            plan.lines.append({"Amount": amount, "DetailType": "DepositLineDetail",
                               "DepositLineDetail": {"AccountRef": {"value": "5"}}})
            plan.line_orders.append([])
        plan.total += amount
    return plan


def check(plan: DepositPlan, max_lines: int) -> None:
    net = plan.total
    posting = split_plan(plan, net, max_lines=max_lines, clearing_account_id=CLEARING, payout_label="payout 9")
    assert all(len(p.lines) <= max_lines and p.total >= 0 for p in posting.parts)
    assert all(p.total == sum((Decimal(ln["Amount"]) for ln in p.lines), Decimal("0")) for p in posting.parts)
    assert posting.total - posting.transfer == net                     # what the bank shows, to the cent
    assert posting.transfer == (-net if net < 0 else 0)
    if net < 0:
        assert all(p.total == 0 for p in posting.parts)
    linked = [ln["LinkedTxn"][0]["TxnId"] for p in posting.parts for ln in p.lines if ln.get("LinkedTxn")]
    assert sorted(linked) == sorted(ln["LinkedTxn"][0]["TxnId"] for ln in plan.lines if ln.get("LinkedTxn"))
    assert sorted(o for p in posting.parts for o in p.order_ids) == sorted(o for os in plan.line_orders for o in os)
    clearing = [Decimal(ln["Amount"]) for p in posting.parts for ln in p.lines
                if (ln.get("DepositLineDetail") or {}).get("AccountRef", {}).get("value") == CLEARING]
    assert sum(clearing, Decimal("0")) == posting.transfer
    again = split_plan(plan, net, max_lines=max_lines, clearing_account_id=CLEARING, payout_label="payout 9")
    assert [p.lines for p in again.parts] == [p.lines for p in posting.parts]   # a resumed run splits alike
    assert {(p.number, p.parts) for p in posting.parts} == {(n, len(posting.parts))
                                                            for n in range(1, len(posting.parts) + 1)}


def test_a_payout_that_fits_is_one_deposit_and_a_withdrawal_gets_one_offsetting_line() -> None:
    [one] = split_plan(plan_of(["10.00", "-0.59"]), Decimal("9.41"), max_lines=5, clearing_account_id=CLEARING,
                       payout_label="payout 9").parts
    assert (one.total, len(one.lines), one.parts) == (Decimal("9.41"), 2, 1)
    withdrawal = split_plan(plan_of(["10.00", "-25.00"]), Decimal("-15.00"), max_lines=5,
                            clearing_account_id=CLEARING, payout_label="payout 9")
    [zero] = withdrawal.parts
    assert zero.total == 0 and withdrawal.transfer == Decimal("15.00")
    assert zero.lines[-1]["Amount"] == Decimal("15.00")
    assert zero.lines[-1]["DepositLineDetail"]["AccountRef"]["value"] == CLEARING


@pytest.mark.parametrize("seed", range(40))
def test_any_plan_splits_into_parts_quickbooks_takes_that_add_up_to_the_payout(seed: int) -> None:
    rnd = random.Random(seed)
    amounts = [f"{rnd.randint(1, 20000) / 100:.2f}" for _ in range(rnd.randint(3, 60))]
    negatives = [f"-{rnd.randint(1, 90000) / 100:.2f}" for _ in range(rnd.randint(0, 12))]   # refunds, big fees
    lines = amounts + negatives
    rnd.shuffle(lines)
    check(plan_of(lines), rnd.choice([2, 3, 5, 8, 1000]))


def test_a_summary_plan_whose_fees_outweigh_a_part_is_balanced_through_the_clearing_account() -> None:
    # per-day charge lines and one large fee line: the part holding the fee would be negative on its own
    check(plan_of(["100.00", "100.00", "100.00", "100.00", "100.00", "-390.00"]), 2)


def test_max_lines_is_a_rule_with_a_documented_default() -> None:
    assert PayoutRules().max_lines == 1000 and payout_rules({"max_lines": 5}).max_lines == 5
    for bad in (1, 0, "5", 2.5, True):
        with pytest.raises(RulesError, match="max_lines"):
            payout_rules({"max_lines": bad})
    assert PayoutRules().clearing_account_for("shopify_payments") == "Shopify Payments clearing"
    assert PayoutRules().account_type("Shopify Payments clearing") == "Other Current Asset"
