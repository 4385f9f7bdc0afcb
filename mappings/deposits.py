"""A store payout as one QuickBooks Deposit (pure: no I/O), and the tie-out that decides whether it may be posted.

Each charge links the hub's QuickBooks payment for it (``LinkedTxn``, the payment's whole amount); refunds,
disputes, reserves and adjustments are direct lines to the accounts the ``payouts`` rules name, one line each
(naming the order); fees are summed into one line per kind (charge fees, refund fees, adjustment fees), each
negative. A transaction that explains nothing (a charge without an order or without a payment, a payment not in
Undeposited Funds, a type no rule names) is left out and listed; the payout may be posted only when nothing is
unexplained and the lines add up to the payout's net to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mappings.payout_rules import PROCESSOR_LABELS, PayoutRules

if TYPE_CHECKING:
    from mappings.deposit_parts import DepositPart

ZERO = Decimal("0.00")
KINDS = ("charge", "refund", "dispute", "reserve", "adjustment", "transfer", "other")
_DISPUTE_TYPES = {"DISPUTE", "DISPUTE_WITHDRAWAL", "DISPUTE_REVERSAL", "CHARGEBACK_HOLD", "CHARGEBACK_HOLD_RELEASE",
                  "CHARGEBACK_FEE", "CHARGEBACK_FEE_REFUND"}
_RESERVE_TYPES = {"RESERVED_FUNDS", "RESERVED_FUNDS_WITHDRAWAL", "RESERVED_FUNDS_REVERSAL"}


def transaction_kind(type_: str | None, source_type: str | None = None) -> str:
    """What a store's balance transaction is, by its type (Shopify ``ShopifyPaymentsTransactionType``)."""
    t, src = (type_ or "").upper(), (source_type or "").upper()
    if t == "CHARGE":
        return "charge"
    if t in ("REFUND", "REFUND_FAILURE"):
        return "refund"
    if t in _DISPUTE_TYPES or src == "DISPUTE":
        return "dispute"
    if t in _RESERVE_TYPES:
        return "reserve"
    if t == "ADJUSTMENT":
        return "adjustment"
    if t.startswith("TRANSFER"):
        return "transfer"
    return "other"


@dataclass(frozen=True)
class Txn:
    """One balance transaction as the hub stored it."""

    id: str
    kind: str
    type: str
    amount: Decimal
    fee: Decimal
    net: Decimal
    order_id: str | None = None
    order_name: str | None = None
    capture_id: str | None = None
    day: str | None = None          # YYYY-MM-DD of the transaction (summary mode sums per day)


@dataclass(frozen=True)
class LinkablePayment:
    """The hub's QuickBooks payment for a charge, as QuickBooks shows it now."""

    id: str
    amount: Decimal
    undeposited: bool          # deposited to Undeposited Funds: linkable


@dataclass
class DepositPlan:
    lines: list[dict[str, Any]] = field(default_factory=list)
    total: Decimal = ZERO
    unexplained: list[dict[str, Any]] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)       # the orders whose payments the deposit links
    line_orders: list[list[str]] = field(default_factory=list)   # per line: the orders it carries (split parts)
    accounts: list[str] = field(default_factory=list)        # the account names the lines use

    def difference(self, net: Decimal) -> Decimal:
        return net - self.total

    def balances(self, net: Decimal) -> bool:
        return not self.unexplained and self.total == net


def account_names(txns: list[Txn], rules: PayoutRules, refunds_default: str) -> dict[str, str | None]:
    """Transaction id → the account its direct line goes to (None: no rule names one)."""
    out: dict[str, str | None] = {}
    for t in txns:
        if t.kind == "refund":
            out[t.id] = rules.refunds_account or refunds_default
        elif t.kind == "dispute":
            out[t.id] = rules.disputes_account
        elif t.kind == "reserve":
            out[t.id] = rules.reserves_account
        elif t.kind == "adjustment":
            out[t.id] = rules.adjustments_account
        elif t.kind == "other":
            out[t.id] = rules.other_types.get(t.type)
    return out


def plan_deposit(txns: list[Txn], payments: dict[str, LinkablePayment | str], accounts: dict[str, str],
                 rules: PayoutRules, refunds_default: str) -> DepositPlan:
    """The deposit's lines. ``payments``: charge id → its payment, or the reason it has none; ``accounts``:
    account name → QuickBooks id (every name ``account_names`` and the fee rules give, and in summary mode
    ``refunds_default``: the account the payments were deposited to, which the day's charge lines draw from)."""
    plan = DepositPlan()
    named = account_names(txns, rules, refunds_default)
    fees = {"charge": ZERO, "refund": ZERO, "other": ZERO}
    linked: set[str] = set()
    days: dict[tuple[str, str], Decimal] = {}     # summary mode: (charge | refund, day) → sum
    day_orders: dict[str, list[str]] = {}         # summary mode: day → the orders of its charge line

    def unexplained(t: Txn, cause: str) -> None:
        plan.unexplained.append({"transaction": t.id, "kind": t.kind, "type": t.type, "order": t.order_name,
                                 "order_id": t.order_id, "net": str(t.net), "cause": cause})

    def direct(amount: Decimal, account: str, description: str, orders: list[str] | None = None) -> None:
        if amount == 0:
            return
        plan.lines.append({"Amount": amount, "DetailType": "DepositLineDetail", "Description": description[:4000],
                           "DepositLineDetail": {"AccountRef": {"value": accounts[account]}}})
        plan.line_orders.append(orders or [])
        plan.accounts.append(account)
        plan.total += amount

    for t in txns:
        if t.kind == "transfer":
            continue
        if t.kind == "charge":
            found = payments.get(t.id)
            if t.order_id is None:
                unexplained(t, "a charge with no store order")
                continue
            if not isinstance(found, LinkablePayment):
                unexplained(t, found or f"order {t.order_name or t.order_id} has no QuickBooks payment")
                continue
            if not found.undeposited:
                unexplained(t, f"payment {found.id} of order {t.order_name} is not in Undeposited Funds "
                               "(payments.deposit_accounts sends it elsewhere)")
                continue
            if found.id not in linked:
                linked.add(found.id)
                plan.order_ids.append(t.order_id)
                if rules.mode == "summary":
                    days[("charge", t.day or "")] = days.get(("charge", t.day or ""), ZERO) + found.amount
                    day_orders.setdefault(t.day or "", []).append(t.order_id)
                else:
                    plan.lines.append({"Amount": found.amount,
                                       "LinkedTxn": [{"TxnId": found.id, "TxnType": "Payment", "TxnLineId": "0"}]})
                    plan.line_orders.append([t.order_id])
                    plan.total += found.amount
            fees["charge"] += t.fee
            continue
        account = named.get(t.id)
        if account is None:
            unexplained(t, f"no account for transaction type {t.type}: name one in payouts.other_types.{t.type}")
            continue
        if rules.mode == "summary" and t.kind == "refund":
            days[("refund", t.day or "")] = days.get(("refund", t.day or ""), ZERO) + t.amount
            fees["refund"] += t.fee
            continue
        label = {"refund": "Refund", "dispute": "Dispute", "reserve": "Reserve", "adjustment": "Adjustment"}.get(
            t.kind, t.type.replace("_", " ").title())
        direct(t.amount, account, f"{label}{' of order ' + t.order_name if t.order_name else ''} ({t.type} {t.id})")
        fees["refund" if t.kind == "refund" else "other"] += t.fee
    for (kind, day), total in sorted(days.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if kind == "charge":   # the payments' account (Undeposited Funds): the day's payments leave it
            direct(total, refunds_default, f"Charges of {day or 'the payout'}", day_orders.get(day))
        else:
            direct(total, rules.refunds_account or refunds_default, f"Refunds of {day or 'the payout'}")
    for kind, account, text in (("charge", rules.charge_fees_account, "Charge fees"),
                                ("refund", rules.refund_fees_account, "Refund fees"),
                                ("other", rules.adjustment_fees_account, "Adjustment fees")):
        direct(-fees[kind], account, text)
    return plan


def fee_accounts(rules: PayoutRules) -> list[str]:
    return list(dict.fromkeys([rules.charge_fees_account, rules.refund_fees_account, rules.adjustment_fees_account]))


def deposit_payload(plan: DepositPlan | DepositPart, *, bank_account_id: str, txn_date: str, memo: str,
                    currency: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"DepositToAccountRef": {"value": bank_account_id}, "TxnDate": txn_date,
                               "PrivateNote": memo[:4000], "Line": plan.lines}
    if currency:
        payload["CurrencyRef"] = {"value": currency}
    return payload


def deposit_memo(processor: str, payout_id: str, issued: str, part: int = 1, parts: int = 1) -> str:
    """Names the payout (``payout <id>``) as the bank statement's reference, so support and look-ups find it; a
    split payout's deposits say which part they are (``payout <id> part 2 of 3``)."""
    label = f" part {part} of {parts}," if parts > 1 else ""
    return f"{PROCESSOR_LABELS.get(processor, processor)} payout {payout_id}{label} of {issued} (O2C Hub)"
