"""What ``o2c reconcile`` adds for payouts (reading only; ``sync.reconcile`` calls ``payout_discrepancies``):

- ``paid_payout_without_deposit``: the store paid the payout out, QuickBooks has no deposit for it (held, or not
  looked at yet: ``o2c payouts sync``);
- ``deposit_total_differs``: the payout's deposits (all parts of a split payout, less a withdrawal's transfer)
  no longer total the payout's net (edited in QuickBooks);
- ``deposit_missing`` / ``transfer_missing``: a deposit (or part) of the payout, or a withdrawal's transfer,
  was deleted in QuickBooks. The hub does not post it again by itself (a deleted deposit may be a bookkeeper's
  decision): this row is how support learns of it;
- ``payout_charge_without_payment``: a charge in a payout whose order has no QuickBooks payment
  (``--resync`` syncs that order);
- ``undeposited_funds_aging``: a payment the hub put in Undeposited Funds more than ``UNDEPOSITED_DAYS`` days ago
  that no deposit has taken yet.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors.quickbooks import amount
from hub.models import Binding, utcnow
from hub.order_models import StoreOrder
from hub.payout_models import PayoutTransaction, StorePayout
from sync.ledger import store_key
from sync.payout_bindings import Posting, postings

if TYPE_CHECKING:
    from hub.runtime import Hub
    from sync.reconcile import Discrepancy

UNDEPOSITED_DAYS = 14
PAYOUT_KINDS = ("paid_payout_without_deposit", "deposit_total_differs", "deposit_missing", "transfer_missing",
                "payout_charge_without_payment", "undeposited_funds_aging")


def payout_discrepancies(hub: Hub, merchant_id: int, qb: Any, since: date | None = None) -> list[Discrepancy]:
    from sync.reconcile import Discrepancy, _by_id

    start = datetime.combine(since, time.min) if since else None
    rows: list[Discrepancy] = []
    with hub.sessions() as s:
        q = select(StorePayout).where(StorePayout.merchant_id == merchant_id).order_by(StorePayout.issued_at)
        if start is not None:
            q = q.where(StorePayout.issued_at >= start)
        payouts = list(s.scalars(q))
        for p in payouts:
            s.expunge(p)
        charges = list(s.scalars(select(PayoutTransaction).where(
            PayoutTransaction.merchant_id == merchant_id, PayoutTransaction.kind == "charge",
            PayoutTransaction.payout_row_id.in_([p.id for p in payouts] or [0]))))
        payments = list(s.scalars(select(Binding).where(
            Binding.merchant_id == merchant_id, Binding.source_type.in_(("capture", "order")),
            Binding.target_platform == "quickbooks", Binding.target_type == "payment")))
        deposited = {(o.platform, store_key(o.platform, o.store), o.order_id) for o in s.scalars(
            select(StoreOrder).where(StoreOrder.merchant_id == merchant_id, StoreOrder.deposit_id.is_not(None)))}
        posted = postings(s, payouts)
    for p in payouts:   # a payout posted before its parts were bound one by one: its deposit_id is its deposit
        if p.deposit_id and not posted[p.id].deposits:
            posted[p.id].deposits[1] = Binding(target_id=p.deposit_id, data={"parts": 1})
    deposits = _by_id(qb, "Deposit", sorted({i for p in payouts for i in posted[p.id].deposit_ids}))
    transfers = _by_id(qb, "Transfer", sorted({t.target_id for t in (posted[p.id].transfer for p in payouts) if t}))
    for p in payouts:
        ref = _payout_ref(p)
        if p.status == "paid" and p.deposit_state != "posted":
            rows.append(Discrepancy("paid_payout_without_deposit", ref, None, p.net,
                                    f"payout {p.payout_id} ({p.net} {p.currency}) was paid out and has no deposit"
                                    f"{': ' + p.reason if p.reason else ''}"))
        elif p.deposit_state == "posted" and posted[p.id].deposits:
            rows += _posting_rows(p, ref, posted[p.id], deposits, transfers)
    by_row = {p.id: p for p in payouts}
    paid_orders = {(b.source_platform, b.source_store, str((b.data or {}).get("order_id") or b.source_id.split(":")[0]))
                   for b in payments if not (b.data or {}).get("voided")}
    for t in charges:
        p = by_row[t.payout_row_id]
        if t.order_id and (p.platform, store_key(p.platform, p.store), t.order_id) not in paid_orders:
            rows.append(Discrepancy("payout_charge_without_payment", {
                "platform": p.platform, "id": t.order_id, "name": t.order_name or t.order_id, "total": t.amount,
                "financial_status": None, "currency": p.currency, "connection_id": p.connection_id}, None, t.amount,
                f"{t.order_name or t.order_id} was charged {t.amount} in payout {p.payout_id} and has no "
                "QuickBooks payment"))
    old = utcnow() - timedelta(days=UNDEPOSITED_DAYS)
    for b in payments:
        order_id = str((b.data or {}).get("order_id") or b.source_id.split(":")[0])
        if (b.data or {}).get("voided") or b.created_at > old or (b.source_platform, b.source_store,
                                                                   order_id) in deposited:
            continue
        rows.append(Discrepancy("undeposited_funds_aging", {
            "platform": b.source_platform, "id": order_id, "name": order_id, "total": None, "financial_status": None,
            "currency": None, "connection_id": None}, {"type": "Payment", "id": b.target_id},
            str((b.data or {}).get("amount") or "0"),
            f"payment {b.target_id} of order {order_id} has sat in Undeposited Funds since "
            f"{b.created_at:%Y-%m-%d} with no deposit"))
    return rows


def _posting_rows(p: StorePayout, ref: dict[str, Any], posting: Posting, deposits: dict[str, dict[str, Any]],
                  transfers: dict[str, dict[str, Any]]) -> list[Discrepancy]:
    """A posted payout against QuickBooks: each of its deposits (every part of a split payout) and a withdrawal's
    transfer still there, and together (the deposits' total less the transfer) equal to the payout's net."""
    from sync.reconcile import Discrepancy

    rows: list[Discrepancy] = []
    gone = False
    total = Decimal("0.00")
    for number in sorted(posting.deposits):
        dep_id = posting.deposits[number].target_id
        dep = deposits.get(dep_id)
        if dep is None:
            gone = True
            what = f"deposit {dep_id}" + (f" (part {number} of {posting.parts})" if posting.parts > 1 else "")
            rows.append(Discrepancy("deposit_missing", ref, {"type": "Deposit", "id": dep_id}, p.net,
                                    f"{what} of payout {p.payout_id} is gone from QuickBooks; it is not posted "
                                    "again by itself"))
        else:
            total += amount(dep.get("TotalAmt"))
    if posting.transfer is not None:
        transfer = transfers.get(posting.transfer.target_id)
        if transfer is None:
            gone = True
            rows.append(Discrepancy("transfer_missing", ref, {"type": "Transfer", "id": posting.transfer.target_id},
                                    p.net, f"transfer {posting.transfer.target_id} of withdrawal {p.payout_id} is "
                                           "gone from QuickBooks; it is not posted again by itself"))
        else:
            total -= amount(transfer.get("Amount"))
    if not gone and total != Decimal(p.net):
        ids = ", ".join(posting.deposit_ids) + (f" less transfer {posting.transfer.target_id}"
                                                if posting.transfer is not None else "")
        rows.append(Discrepancy("deposit_total_differs", ref,
                                {"type": "Deposit", "id": posting.deposit_ids[0], "total": str(total)},
                                str(abs(total - Decimal(p.net))),
                                f"deposit {ids} is {total}, payout {p.payout_id} is {p.net}"))
    return rows


def _payout_ref(p: StorePayout) -> dict[str, Any]:
    """The row's ``order`` field names the payout (``payout: true``: ``--resync`` has no order to sync)."""
    return {"platform": p.platform, "id": p.payout_id, "name": f"payout {p.payout_id}", "total": p.net,
            "financial_status": p.status, "currency": p.currency, "connection_id": p.connection_id, "payout": True}
