"""The credit tables: a limit per QuickBooks customer (QuickBooks has no credit limit field: the hub holds
it), the net-terms orders checked against it, and the holds placed on those that went over it.

* ``credit_limits``: one row per (merchant, customer); ``customer_key`` is the QuickBooks customer id when the
  hub knows it, else the buyer's e-mail (lower-cased). Money is exact decimal text, in the home currency.
* ``credit_orders``: one row per store order the credit check saw (a net-terms, unpaid order of a customer
  with a limit): its amount, so the customer's orders not yet invoiced count in the exposure; and its hold,
  when it has one. The row is *claimed* (``hold_status = placing``) before anything is sent to the store and
  records each store call done (``done``), so a retry or a worker killed mid-hold finishes the same hold
  and never places a second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base, utcnow
from hub.scrubbing import ScrubbedText

HOLD_STATUSES = ("placing", "held", "releasing", "released")


class CreditLimit(Base):
    __tablename__ = "credit_limits"
    __table_args__ = (UniqueConstraint("merchant_id", "customer_key", name="uq_credit_limit"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    customer_key: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[str | None] = mapped_column(String(255))      # the QuickBooks customer
    email: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[str | None] = mapped_column(String(40))            # the limit, home currency (None: removed)
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CreditOrder(Base):
    __tablename__ = "credit_orders"
    __table_args__ = (
        UniqueConstraint("merchant_id", "platform", "store", "order_id", name="uq_credit_order"),
        Index("ix_credit_orders_limit", "limit_id", "hold_status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    limit_id: Mapped[int] = mapped_column(ForeignKey("credit_limits.id"))
    store_order_id: Mapped[int | None] = mapped_column(Integer)        # the order ledger's row
    platform: Mapped[str] = mapped_column(String(20))
    store: Mapped[str] = mapped_column(String(255), default="")
    connection_id: Mapped[int | None] = mapped_column(Integer)
    order_id: Mapped[str] = mapped_column(String(255))
    order_name: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[str] = mapped_column(String(40))                   # the order's total, home currency
    contact_id: Mapped[str | None] = mapped_column(String(255))       # the buyer's HubSpot contact
    settled: Mapped[bool] = mapped_column(default=False)              # paid or cancelled: no exposure of its own
    hold_status: Mapped[str | None] = mapped_column(String(20))       # HOLD_STATUSES, None: never held
    exposure: Mapped[str | None] = mapped_column(String(40))          # when held: the exposure it would make
    limit_amount: Mapped[str | None] = mapped_column(String(40))      # when held: the limit it went over
    previous_status: Mapped[str | None] = mapped_column(String(30))   # WooCommerce: the status before the hold
    done: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # store calls done: holds placed, note, …
    error: Mapped[str | None] = mapped_column(ScrubbedText)
    held_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(255))      # "credit" (a payment) or the approver
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
