"""A tied-out deposit plan as the QuickBooks deposits (and transfer) that post it (pure: no I/O).

QuickBooks refuses a deposit whose total is below zero and, as the hub assumes, one with more lines than
``payouts.max_lines``. So:

* a payout that fits is one deposit; a **withdrawal** (net below zero: refunds and fees exceed the charges)
  gets one more direct line of +|net| drawn from the processor's clearing account, so its deposit totals 0.00,
  and a **transfer** of |net| from the bank to that clearing account is what the bank feed matches;
* a payout with more lines is **split** into ``k`` deposits of at most ``max_lines`` lines each (one kept free
  per part): the positive lines are dealt largest first to the part with the smallest total, the negative ones
  most negative first to the part with the largest, each part keeping its lines in the plan's order, and each
  linked payment lands in exactly one part. A part that still totals below zero gets a balancing line from
  the clearing account, taken back from the parts with the most (those lines sum to 0.00, so the parts add up
  to the payout to the cent); a split withdrawal's parts are each balanced to 0.00, and their clearing lines
  sum to |net|, the transfer.

The split depends only on the plan, so a run resumed after a crash makes the very same parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mappings.deposits import ZERO, DepositPlan


@dataclass
class DepositPart:
    number: int                    # 1-based
    parts: int
    lines: list[dict[str, Any]] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)   # the orders whose payments (or day lines) it carries
    total: Decimal = ZERO


@dataclass
class PostingPlan:
    parts: list[DepositPart]
    transfer: Decimal = ZERO       # > 0: a withdrawal, moved from the bank to the clearing account

    @property
    def total(self) -> Decimal:
        return sum((p.total for p in self.parts), ZERO)


def split_plan(plan: DepositPlan, net: Decimal, *, max_lines: int, clearing_account_id: str,
               payout_label: str) -> PostingPlan:
    """The deposits for a plan that balances ``net``; ``payout_label`` (``payout 123``) goes in the clearing
    lines' descriptions."""
    if max_lines < 2:
        raise ValueError("a deposit part needs room for at least two lines")
    n = len(plan.lines)
    withdrawal = net < 0
    if n + (1 if withdrawal else 0) <= max_lines:
        groups = [list(range(n))]
    else:
        groups = _deal(plan, -(-n // (max_lines - 1)), max_lines - 1)
    k = len(groups)
    parts = []
    for number, group in enumerate(groups, 1):
        part = DepositPart(number, k)
        for i in sorted(group):
            part.lines.append(plan.lines[i])
            part.order_ids += plan.line_orders[i] if i < len(plan.line_orders) else []
            part.total += Decimal(plan.lines[i]["Amount"])
        parts.append(part)
    targets = _targets([p.total for p in parts], withdrawal)
    transfer = ZERO
    for part, target in zip(parts, targets, strict=True):
        offset = target - part.total
        if offset == 0:
            continue
        text = (f"Withdrawal of {payout_label}: drawn from the clearing account, repaid by the transfer from the bank"
                if withdrawal else
                f"Balances {payout_label} part {part.number} of {k} against its other parts (nets to 0.00)")
        part.lines.append({"Amount": offset, "DetailType": "DepositLineDetail", "Description": text,
                           "DepositLineDetail": {"AccountRef": {"value": clearing_account_id}}})
        part.total += offset
        transfer += offset
    return PostingPlan(parts, transfer)


def _deal(plan: DepositPlan, k: int, room: int) -> list[list[int]]:
    groups: list[list[int]] = [[] for _ in range(k)]
    totals = [ZERO] * k
    amounts = [Decimal(line["Amount"]) for line in plan.lines]
    positives = sorted((i for i, a in enumerate(amounts) if a > 0), key=lambda i: (-amounts[i], i))
    others = sorted((i for i, a in enumerate(amounts) if a <= 0), key=lambda i: (amounts[i], i))
    for i in positives:
        g = min((g for g in range(k) if len(groups[g]) < room), key=lambda g: (totals[g], g))
        groups[g].append(i)
        totals[g] += amounts[i]
    for i in others:
        g = max((g for g in range(k) if len(groups[g]) < room), key=lambda g: (totals[g], -g))
        groups[g].append(i)
        totals[g] += amounts[i]
    return groups


def _targets(totals: list[Decimal], withdrawal: bool) -> list[Decimal]:
    """What each part is balanced to: 0.00 for a withdrawal; else its own total, a negative one raised to 0.00
    and the difference taken from the parts with the most."""
    if withdrawal:
        return [ZERO] * len(totals)
    targets = [max(t, ZERO) for t in totals]
    owed = sum(targets, ZERO) - sum(totals, ZERO)
    for g in sorted(range(len(targets)), key=lambda g: (-targets[g], g)):
        if owed <= 0:
            break
        taken = min(targets[g], owed)
        targets[g] -= taken
        owed -= taken
    return targets


def transfer_payload(amount: Decimal, *, bank_account_id: str, clearing_account_id: str, txn_date: str,
                     memo: str) -> dict[str, Any]:
    """The QuickBooks Transfer that shows a withdrawal in the bank: from the bank to the clearing account."""
    return {"FromAccountRef": {"value": bank_account_id}, "ToAccountRef": {"value": clearing_account_id},
            "Amount": amount, "TxnDate": txn_date, "PrivateNote": memo[:4000]}


def transfer_memo(processor_label: str, payout_id: str, issued: str) -> str:
    return f"{processor_label} payout {payout_id} of {issued}: withdrawal from the bank (O2C Hub)"
