"""What a payout was posted as in QuickBooks, from its bindings (source ``(platform, "payout", id)``):

* ``deposit``: its deposit, or part 1 of a split payout; ``data`` records ``parts`` (how many deposits the
  payout takes) and ``transfer`` (a withdrawal's amount moved from the bank, else None);
* ``deposit:<n>``: part ``n`` (2 … ``parts``) of a split payout;
* ``transfer``: a withdrawal's transfer from the bank to the processor's clearing account.

Each part is bound as soon as it is created, so a run resumed after a crash creates only the missing ones.
``sync.deposits`` writes them; ``payouts list``, the API and ``o2c reconcile`` read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Binding
from hub.payout_models import StorePayout
from sync.ledger import store_key

QB = "quickbooks"
DEPOSIT = "deposit"
TRANSFER = "transfer"


def part_kind(number: int) -> str:
    """The binding's ``target_type`` of part ``number`` (1-based)."""
    return DEPOSIT if number == 1 else f"{DEPOSIT}:{number}"


@dataclass
class Posting:
    deposits: dict[int, Binding] = field(default_factory=dict)    # part number → its binding
    transfer: Binding | None = None

    @property
    def parts(self) -> int:
        first = self.deposits.get(1)
        return int((first.data or {}).get("parts") or 1) if first is not None else 0

    @property
    def complete(self) -> bool:
        """Every part bound, and the transfer when the payout is a withdrawal: nothing left to send."""
        first = self.deposits.get(1)
        if first is None or any(n not in self.deposits for n in range(1, self.parts + 1)):
            return False
        return self.transfer is not None or not (first.data or {}).get("transfer")

    @property
    def deposit_ids(self) -> list[str]:
        return [self.deposits[n].target_id for n in sorted(self.deposits)]


def postings(s: Session, payouts: list[StorePayout]) -> dict[int, Posting]:
    """Payout row id → its posting (empty when nothing is bound), in one query."""
    out = {p.id: Posting() for p in payouts}
    if not payouts:
        return out
    by_source = {(p.merchant_id, p.platform, p.payout_id, store_key(p.platform, p.store)): p.id for p in payouts}
    rows = s.scalars(select(Binding).where(
        Binding.merchant_id.in_(sorted({p.merchant_id for p in payouts})), Binding.source_type == "payout",
        Binding.source_id.in_(sorted({p.payout_id for p in payouts})), Binding.target_platform == QB,
        (Binding.target_type == TRANSFER) | Binding.target_type.like(f"{DEPOSIT}%")))
    for b in rows:
        row_id = by_source.get((b.merchant_id, b.source_platform, b.source_id, b.source_store))
        if row_id is None:
            continue
        if b.target_type == TRANSFER:
            out[row_id].transfer = b
        elif b.target_type == DEPOSIT:
            out[row_id].deposits[1] = b
        elif b.target_type.startswith(f"{DEPOSIT}:") and b.target_type[len(DEPOSIT) + 1:].isdigit():
            out[row_id].deposits[int(b.target_type[len(DEPOSIT) + 1:])] = b
    return out
