"""Store payouts: read from the stores (Shopify Payments through ``shopifyPaymentsAccount``; Shopify has no
payout webhook, so this is polled), stored with their transactions (``hub.payout_models``), and each paid one
posted as a QuickBooks deposit (``sync.deposits``). ``o2c payouts sync|list`` and ``GET /api/v1/payouts`` call
in here.

Reading is cost-aware: one payouts page (≈ 204 points) per 100 payouts issued in the last ``LOOKBACK_DAYS`` (a
bank feed matches within 90 days), and one page of balance transactions (≈ 904 points) per 150 transactions of
each payout not yet posted; a posted payout is never read again.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connectors import shopify_payouts, woopayments
from connectors.errors import ConnectorError, Permanent
from hub.models import Connection, utcnow
from hub.payout_models import PayoutTransaction, StorePayout
from mappings.deposits import transaction_kind
from sync import locks
from sync.accounts import Accounts
from sync.payout_bindings import Posting, postings

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.payouts")
LOOKBACK_DAYS = 90
SHOPIFY_PROCESSOR = "shopify_payments"
WOOPAYMENTS_PROCESSOR = "woocommerce_payments"
STORE_PLATFORMS = ("shopify", "woocommerce")
_WCPAY_STATUS = {"paid": "paid", "failed": "failed", "canceled": "canceled", "in_transit": "in_transit"}
_ORDER_POST = re.compile(r"[?&]post=(\d+)")
POLL_INTERVAL = timedelta(hours=1)   # Shopify pays out daily at most: the catch-up schedule looks hourly


@dataclass
class SyncReport:
    merchant_id: int
    read: int = 0
    posted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def sync_payouts(hub: Hub, merchant_id: int) -> SyncReport:
    """Read the merchant's store payouts now, then post every paid one that is not posted yet."""
    from sync.deposits import post_paid_payouts

    report = SyncReport(merchant_id)
    accounts = Accounts(hub, merchant_id)
    with hub.sessions() as s:
        conns = list(s.scalars(select(Connection).where(
            Connection.merchant_id == merchant_id, Connection.platform.in_(STORE_PLATFORMS),
            Connection.status == "active").order_by(Connection.id)))
    for conn in conns:
        try:
            read = read_shopify_payouts if conn.platform == "shopify" else read_woopayments_deposits
            report.read += read(hub, accounts, conn)
        except ConnectorError as exc:
            log.warning("payouts of %s could not be read: %s", conn.account, exc)
            report.errors.append(f"{conn.account}: {exc}")
    post_paid_payouts(hub, merchant_id, report)
    return report


def poll_due_payouts(hub: Hub) -> None:
    """Called by each catch-up pass (Shopify has no payout webhook): every merchant whose shop was last looked at
    ``POLL_INTERVAL`` ago (or connected that long ago) gets a payout sync; never raises."""
    now = utcnow()
    try:
        with hub.sessions() as s:
            conns = list(s.scalars(select(Connection).where(Connection.platform.in_(STORE_PLATFORMS),
                                                            Connection.status == "active")))
        due = sorted({c.merchant_id for c in conns if now - (_time(((c.settings or {}).get("payouts") or {})
                                                                    .get("polled_at")) or c.created_at)
                      >= POLL_INTERVAL})
        for merchant_id in due:
            holder = locks.holder_id() + ":payouts"
            if not locks.try_acquire(hub.sessions, f"payouts:{merchant_id}", holder, ttl=900):
                continue
            try:
                sync_payouts(hub, merchant_id)
                with hub.sessions() as s:
                    for c in s.scalars(select(Connection).where(Connection.merchant_id == merchant_id,
                                                                Connection.platform.in_(STORE_PLATFORMS))):
                        c.settings = {**(c.settings or {}), "payouts": {"polled_at": now.isoformat()}}
                    s.commit()
            finally:
                locks.release(hub.sessions, f"payouts:{merchant_id}", holder)
    except Exception as exc:  # noqa: BLE001 - a platform or the database away: the next pass tries again
        log.warning("payout poll failed: %s", exc)


def read_shopify_payouts(hub: Hub, accounts: Accounts, conn: Connection) -> int:
    """Store every payout of the shop issued in the look-back window, with the transactions of those not posted."""
    from sync.backfill import listing_call

    client = accounts.shopify(conn.account)

    def graphql(document: str, variables: dict[str, Any]) -> dict[str, Any]:
        # a THROTTLED answer waits for the cost bucket as Shopify says, instead of ending the pass
        return listing_call(lambda: client.graphql(document, variables))

    since = (datetime.now(UTC) - timedelta(days=LOOKBACK_DAYS)).date().isoformat()
    count = 0
    for node in shopify_payouts.payouts(graphql, issued_since=since):
        payout_id = str(node.get("legacyResourceId") or "").strip()
        if not payout_id.isdigit():
            continue
        count += 1
        net = node.get("net") or {}
        values = dict(status=str(node.get("status") or "SCHEDULED").lower(),
                      direction="withdrawal" if node.get("transactionType") == "WITHDRAWAL" else "deposit",
                      currency=str(net.get("currencyCode") or "")[:3], net=str(_money(net)),
                      issued_at=_time(node.get("issuedAt")))
        with hub.sessions() as s:
            row = _upsert_payout(s, conn, payout_id, values, SHOPIFY_PROCESSOR)
            done = row.deposit_state == "posted" or row.status in ("failed", "canceled")   # nothing to post
            s.commit()
            row_id = row.id
        if not done:
            txns = shopify_payouts.payout_transactions(graphql, payout_id)
            with hub.sessions() as s:
                _replace_transactions(s, row_id, conn.merchant_id, txns)
                s.commit()
    return count


def read_woopayments_deposits(hub: Hub, accounts: Accounts, conn: Connection) -> int:
    """Store the store's WooPayments deposits, with the transactions of those not posted; a store without
    WooPayments (no such route) has none."""
    client = accounts.woocommerce(conn.id)
    count = 0
    try:
        listed = list(woopayments.deposits(client))
    except Permanent as exc:
        if exc.status == 404:
            return 0
        raise
    for d in listed:
        payout_id = str(d.get("id") or "").strip()
        if not payout_id:
            continue
        count += 1
        net = woopayments.amount(d.get("amount"))
        stamp = d.get("date")
        issued = (datetime.fromtimestamp(int(stamp) / 1000, UTC).replace(tzinfo=None)
                  if isinstance(stamp, int | float) else None)
        values = dict(status=_WCPAY_STATUS.get(str(d.get("status") or ""), "scheduled"),
                      direction="withdrawal" if d.get("type") == "withdrawal" or net < 0 else "deposit",
                      currency=str(d.get("currency") or "").upper()[:3], net=str(net), issued_at=issued)
        with hub.sessions() as s:
            row = _upsert_payout(s, conn, payout_id, values, WOOPAYMENTS_PROCESSOR)
            done = row.deposit_state == "posted" or row.status in ("failed", "canceled")   # nothing to post
            s.commit()
            row_id = row.id
        if not done:
            txns = woopayments.deposit_transactions(client, payout_id)
            with hub.sessions() as s:
                _replace_transactions(s, row_id, conn.merchant_id, [_from_woopayments(t) for t in txns])
                s.commit()
    return count


def _from_woopayments(t: dict[str, Any]) -> dict[str, Any]:
    """A WooPayments transaction in the shape ``_replace_transactions`` reads (Shopify's)."""
    order = t.get("order") if isinstance(t.get("order"), dict) else None
    order_id = None
    if order:
        found = _ORDER_POST.search(str(order.get("url") or ""))
        order_id = found.group(1) if found else str(order.get("number") or "") or None
    money = {k: {"amount": str(woopayments.amount(t.get(k)))} for k in ("amount", "fees", "net")}
    return {"id": t.get("transaction_id"), "type": str(t.get("type") or "").upper(), "sourceType": None,
            "amount": money["amount"], "fee": money["fees"], "net": money["net"],
            "associatedOrder": {"id": order_id, "name": f"#{order.get('number')}"} if order_id else None,
            "sourceOrderTransactionId": t.get("charge_id"), "transactionDate": t.get("date"),
            "adjustmentReason": None}


def _upsert_payout(s: Session, conn: Connection, payout_id: str, values: dict[str, Any],
                   processor: str) -> StorePayout:
    row = s.scalar(select(StorePayout).where(
        StorePayout.merchant_id == conn.merchant_id, StorePayout.platform == conn.platform,
        StorePayout.store == conn.account, StorePayout.payout_id == payout_id))
    if row is None:
        row = StorePayout(merchant_id=conn.merchant_id, platform=conn.platform, store=conn.account,
                          connection_id=conn.id, payout_id=payout_id, processor=processor, unexplained=[],
                          **values)
        s.add(row)
        s.flush()
    elif any(getattr(row, k) != v for k, v in values.items()):
        for k, v in values.items():
            setattr(row, k, v)
        row.updated_at = utcnow()
    return row


def _replace_transactions(s: Session, row_id: int, merchant_id: int, nodes: list[dict[str, Any]]) -> None:
    s.execute(delete(PayoutTransaction).where(PayoutTransaction.payout_row_id == row_id))
    for n in nodes:
        order = n.get("associatedOrder") or {}
        order_id = str(order.get("id") or "").rsplit("/", 1)[-1] or None
        amount, fee = _money(n.get("amount")), _money(n.get("fee"))
        source_txn = n.get("sourceOrderTransactionId")
        s.add(PayoutTransaction(
            payout_row_id=row_id, merchant_id=merchant_id, transaction_id=str(n.get("id") or "").rsplit("/", 1)[-1],
            kind=transaction_kind(n.get("type"), n.get("sourceType")), type=str(n.get("type") or "")[:60],
            amount=str(amount), fee=str(fee), net=str(_money(n.get("net"), amount - fee)), order_id=order_id,
            order_name=order.get("name"), capture_id=str(source_txn) if source_txn is not None else None,
            reason=n.get("adjustmentReason"), occurred_at=_time(n.get("transactionDate"))))


def _money(bag: Any, default: Decimal = Decimal("0.00")) -> Decimal:
    """A MoneyV2 (``{"amount": "12.5"}``) as a Decimal to the cent (``12.50``)."""
    if isinstance(bag, dict) and bag.get("amount") is not None:
        return Decimal(str(bag["amount"])).quantize(Decimal("0.01"))
    return default


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed   # naive: already UTC


# -- views -----------------------------------------------------------------------------------------
def status_of(row: StorePayout) -> str:
    """What ``payouts list`` shows: scheduled, paid (not looked at yet), posted, held, failed."""
    if row.deposit_state in ("posted", "held"):
        return row.deposit_state
    if row.status in ("failed", "canceled"):
        return "failed"
    if row.status == "paid":
        return "paid"
    return "scheduled"


def payout_view(row: StorePayout, posting: Posting | None = None) -> dict[str, Any]:
    """``deposit_id`` is the payout's (first) deposit; ``deposit_ids`` every deposit it was posted as (a split
    payout has several, in part order) and ``transfer_id`` a withdrawal's transfer from the bank."""
    return {"merchant": row.merchant_id, "platform": row.platform, "store": row.store, "payout_id": row.payout_id,
            "status": status_of(row), "currency": row.currency, "net": row.net,
            "issued_at": row.issued_at.replace(tzinfo=UTC).isoformat() if row.issued_at else None,
            "deposit_id": row.deposit_id, "difference": row.difference, "reason": row.reason,
            "unexplained": list(row.unexplained or []),
            "deposit_ids": posting.deposit_ids if posting else ([row.deposit_id] if row.deposit_id else []),
            "transfer_id": posting.transfer.target_id if posting and posting.transfer else None}


def list_payouts(s: Session, merchant_id: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Newest first."""
    q = select(StorePayout).order_by(StorePayout.issued_at.desc(), StorePayout.id.desc())
    if merchant_id is not None:
        q = q.where(StorePayout.merchant_id == merchant_id)
    if limit:
        q = q.limit(limit)
    rows = list(s.scalars(q))
    found = postings(s, rows)
    return [payout_view(r, found[r.id]) for r in rows]
