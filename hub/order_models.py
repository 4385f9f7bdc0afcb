"""The order ledger's table: one row per store order, where it stands in the order-to-cash cycle.

The row is a summary of what the runs and bindings of that order say; ``sync.order_ledger`` keeps it in
step, in the same transaction as the run or binding it follows. Money is kept as the exact decimal text
("68.75"), as the bindings keep it, so no float ever touches it on either database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base, utcnow
from hub.scrubbing import ScrubbedText

STATES = ("in_sync", "pending", "failing", "waiting", "skipped")


class StoreOrder(Base):
    """One store order: keyed per (merchant, platform, store, order id), so two WooCommerce stores of one
    merchant never share a row. ``state`` follows the order's latest run: ``failing`` only while that run
    is failed; a later success clears it."""

    __tablename__ = "store_orders"
    __table_args__ = (
        UniqueConstraint("merchant_id", "platform", "store", "order_id", name="uq_store_order"),
        Index("ix_store_orders_merchant", "merchant_id", "id"),
        Index("ix_store_orders_state", "state", "id"),
        Index("ix_store_orders_merchant_state", "merchant_id", "state", "id"),
        Index("ix_store_orders_name", "merchant_id", "name"),
        Index("ix_store_orders_customer_email", "merchant_id", "customer_email"),
        # the dashboard (sync.health): orders received, invoiced and paid in a window, per merchant and in all
        Index("ix_store_orders_merchant_received", "merchant_id", "received_at", postgresql_include=["state"]),
        Index("ix_store_orders_received", "received_at", postgresql_include=["state"]),
        Index("ix_store_orders_merchant_invoiced", "merchant_id", "invoiced_at", postgresql_include=["received_at"]),
        Index("ix_store_orders_invoiced", "invoiced_at", postgresql_include=["received_at"]),
        Index("ix_store_orders_merchant_paid", "merchant_id", "paid_at",
              postgresql_include=["ordered_at", "received_at"]),
        Index("ix_store_orders_paid", "paid_at", postgresql_include=["ordered_at", "received_at"]),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    platform: Mapped[str] = mapped_column(String(20))
    store: Mapped[str] = mapped_column(String(255), default="")        # the shop domain or the store URL
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    order_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    customer_name: Mapped[str | None] = mapped_column(String(255))   # personal data: blanked by an erasure
    customer_email: Mapped[str | None] = mapped_column(String(320))  # lower-cased
    currency: Mapped[str | None] = mapped_column(String(3))
    total: Mapped[str | None] = mapped_column(String(40))
    financial_status: Mapped[str | None] = mapped_column(String(30))
    fulfillment_status: Mapped[str | None] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str | None] = mapped_column(ScrubbedText)
    last_run_id: Mapped[int | None] = mapped_column(Integer)
    invoice_id: Mapped[str | None] = mapped_column(String(255))
    doc_number: Mapped[str | None] = mapped_column(String(40))
    invoice_total: Mapped[str | None] = mapped_column(String(40))
    invoice_balance: Mapped[str | None] = mapped_column(String(40))
    payment_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    refund_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    deposit_id: Mapped[str | None] = mapped_column(String(255))
    contact_id: Mapped[str | None] = mapped_column(String(255))
    deal_id: Mapped[str | None] = mapped_column(String(255))
    ordered_at: Mapped[datetime | None]                # the store's creation time
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    invoiced_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    fulfilled_at: Mapped[datetime | None]
    deposited_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# the payout tables (store payouts and their transactions) live beside the order ledger
import hub.payout_models  # noqa: E402,F401
