"""The ``payouts`` section of the mapping rules: where a processor's payout is deposited and which accounts
its fees, refunds, disputes, reserves and adjustments are booked to (``mappings.deposits`` applies them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mappings.rule_fields import ACCOUNT_NAME_MAX, RulesError, choice, mapping, name, qb_name

EXPENSE = "Expense"
ASSET = "Other Current Asset"
_TYPE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,59}$")


MODES = ("lines", "summary")
PROCESSOR_LABELS = {"shopify_payments": "Shopify Payments", "woocommerce_payments": "WooPayments"}
# The hub's assumption of the most lines QuickBooks takes in one transaction (⚠ unverified: Intuit documents no
# number for deposits; the hub splits a larger payout into several deposits that add up to it)
MAX_LINES = 1000
MAX_LINES_RANGE = (2, 100_000)


@dataclass(frozen=True)
class PayoutRules:
    # lines: each charge links its payment (one line per order); summary: one line per day for the charges (and
    # one for the refunds) to the payments' account, for very high volumes (the payments stay listed as
    # undeposited in QuickBooks' deposit screen, the Undeposited Funds balance is cleared)
    mode: str = "lines"
    # processor (shopify_payments, woocommerce_payments) → the bank account its payouts reach
    deposit_accounts: dict[str, str] = field(default_factory=dict)
    default_deposit_account: str = "Checking"
    charge_fees_account: str = "Payment Processing Fees"
    refund_fees_account: str = "Payment Processing Fees"
    adjustment_fees_account: str = "Payment Processing Fees"
    refunds_account: str | None = None          # None: where the refunds were paid from (payments rules)
    disputes_account: str = "Chargebacks"
    reserves_account: str = "Payment Processor Reserve"
    adjustments_account: str = "Payout Adjustments"
    # any other transaction type of the store (SHIPPING_LABEL, BILLING_DEBIT, …) → its account; a type named
    # nowhere holds the payout until it is given one here
    other_types: dict[str, str] = field(default_factory=dict)
    # processor → its clearing account (type Other Current Asset): a withdrawal's deposit draws its offsetting
    # line from it and a transfer from the bank pays it back; default "<processor> clearing"
    clearing_accounts: dict[str, str] = field(default_factory=dict)
    # the most lines one deposit gets; a payout with more is split into deposits that add up to it
    max_lines: int = MAX_LINES

    def clearing_account_for(self, processor: str) -> str:
        return self.clearing_accounts.get(processor) or f"{PROCESSOR_LABELS.get(processor, processor)} clearing"

    def deposit_account_for(self, processor: str) -> str:
        return self.deposit_accounts.get(processor) or self.default_deposit_account

    def account_type(self, account: str) -> str:
        """The type an account of these rules is created with when QuickBooks lacks it."""
        clearing = {self.clearing_account_for(p) for p in (*PROCESSOR_LABELS, *self.clearing_accounts)}
        if account == self.reserves_account or account in clearing:
            return ASSET
        return EXPENSE


def payout_rules(section: dict[str, Any]) -> PayoutRules:
    sec = "payouts"
    deposit = {}
    for processor, account in mapping(section, sec, "deposit_accounts").items():
        deposit[str(processor)] = qb_name(account, f"{sec}.deposit_accounts.{processor}", ACCOUNT_NAME_MAX,
                                          what="account name")
    other = {}
    for type_, account in mapping(section, sec, "other_types").items():
        if not isinstance(type_, str) or not _TYPE_KEY.match(type_):
            raise RulesError(f"{sec}.other_types.{type_}",
                             "keys are the store's transaction types, e.g. SHIPPING_LABEL")
        other[type_] = qb_name(account, f"{sec}.other_types.{type_}", ACCOUNT_NAME_MAX, what="account name")
    clearing = {}
    for processor, account in mapping(section, sec, "clearing_accounts").items():
        clearing[str(processor)] = qb_name(account, f"{sec}.clearing_accounts.{processor}", ACCOUNT_NAME_MAX,
                                           what="account name")
    max_lines = section.get("max_lines", MAX_LINES)
    low, high = MAX_LINES_RANGE
    if isinstance(max_lines, bool) or not isinstance(max_lines, int) or not low <= max_lines <= high:
        raise RulesError(f"{sec}.max_lines", f"must be a whole number of lines from {low} to {high}")

    def account(key: str, default: str | None, optional: bool = False) -> Any:
        return name(section, sec, key, ACCOUNT_NAME_MAX, default=default, optional=optional)

    base = PayoutRules()
    return PayoutRules(
        mode=choice(section, sec, "mode", MODES, default="lines"),
        deposit_accounts=deposit,
        default_deposit_account=account("default_deposit_account", base.default_deposit_account),
        charge_fees_account=account("charge_fees_account", base.charge_fees_account),
        refund_fees_account=account("refund_fees_account", base.refund_fees_account),
        adjustment_fees_account=account("adjustment_fees_account", base.adjustment_fees_account),
        refunds_account=account("refunds_account", None, optional=True),
        disputes_account=account("disputes_account", base.disputes_account),
        reserves_account=account("reserves_account", base.reserves_account),
        adjustments_account=account("adjustments_account", base.adjustments_account),
        other_types=other, clearing_accounts=clearing, max_lines=max_lines)
