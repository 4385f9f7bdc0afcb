"""Store payouts (Shopify Payments, WooPayments) and their balance transactions, as the hub last read them,
with where each stands against QuickBooks: ``deposit_state`` is None until the payout is paid and looked at,
then ``posted`` (one deposit equal to the payout's net, ``deposit_id``) or ``held`` (``difference`` = payout
net minus what the deposit would total, ``reason`` and the ``unexplained`` transactions). Money is kept as the
exact decimal text ("68.75"), as the bindings keep it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base, utcnow
from hub.scrubbing import ScrubbedText

STORE_STATUSES = ("scheduled", "in_transit", "paid", "failed", "canceled")
DEPOSIT_STATES = ("posted", "held")


class StorePayout(Base):
    """One payout of one store (unique per merchant, platform, store and the store's payout id)."""

    __tablename__ = "store_payouts"
    __table_args__ = (
        UniqueConstraint("merchant_id", "platform", "store", "payout_id", name="uq_store_payout"),
        Index("ix_store_payouts_merchant", "merchant_id", "issued_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    platform: Mapped[str] = mapped_column(String(20))
    store: Mapped[str] = mapped_column(String(255), default="")
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    payout_id: Mapped[str] = mapped_column(String(255))
    processor: Mapped[str] = mapped_column(String(40))          # shopify_payments | woocommerce_payments
    status: Mapped[str] = mapped_column(String(20))              # the store's: scheduled, paid, failed, …
    direction: Mapped[str] = mapped_column(String(20), default="deposit")   # deposit | withdrawal
    currency: Mapped[str] = mapped_column(String(3))
    net: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[datetime | None]
    deposit_state: Mapped[str | None] = mapped_column(String(20))
    deposit_id: Mapped[str | None] = mapped_column(String(255))
    deposit_total: Mapped[str | None] = mapped_column(String(40))
    difference: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(ScrubbedText)
    unexplained: Mapped[list[Any]] = mapped_column(JSON, default=list)
    posted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PayoutTransaction(Base):
    """One balance transaction of a payout; ``order_id`` ties it to its store order when it has one."""

    __tablename__ = "payout_transactions"
    __table_args__ = (
        UniqueConstraint("payout_row_id", "transaction_id", name="uq_payout_transaction"),
        Index("ix_payout_transactions_order", "merchant_id", "order_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    payout_row_id: Mapped[int] = mapped_column(ForeignKey("store_payouts.id", ondelete="CASCADE"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    transaction_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(20))               # charge | refund | dispute | reserve | adjustment
    type: Mapped[str] = mapped_column(String(60))               # the store's own type (CHARGE, SHIPPING_LABEL, …)
    amount: Mapped[str] = mapped_column(String(40))
    fee: Mapped[str] = mapped_column(String(40))
    net: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str | None] = mapped_column(String(255))
    order_name: Mapped[str | None] = mapped_column(String(255))
    capture_id: Mapped[str | None] = mapped_column(String(255))  # the order transaction it moved money for
    reason: Mapped[str | None] = mapped_column(ScrubbedText)   # an adjustment's reason, from the store
    occurred_at: Mapped[datetime | None]
