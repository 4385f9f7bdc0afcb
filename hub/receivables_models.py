"""The receivables tables: one row per (invoice, dunning stage) the hub acted on.

A dunning action is *claimed* by inserting its row (unique per merchant, QuickBooks invoice and stage)
before anything is sent, so two workers running dunning at once act once: the second insert fails and that
worker leaves the stage alone. The row then records what was done (``done``) or why it failed (``failed``,
tried again by the next pass); a claim left ``claimed`` by a worker that died is taken over after its lease.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base, utcnow
from hub.scrubbing import ScrubbedText

DUNNING_STATUSES = ("claimed", "done", "failed")


class DunningAction(Base):
    __tablename__ = "dunning_actions"
    __table_args__ = (
        UniqueConstraint("merchant_id", "invoice_id", "stage", name="uq_dunning_action"),
        Index("ix_dunning_actions_order", "store_order_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    invoice_id: Mapped[str] = mapped_column(String(255))          # the QuickBooks invoice
    stage: Mapped[str] = mapped_column(String(40))
    store_order_id: Mapped[int | None] = mapped_column(Integer)    # the order ledger's row, when the hub has it
    doc_number: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="claimed")
    holder: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    done: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # action → what it wrote (task id, …)
    error: Mapped[str | None] = mapped_column(ScrubbedText)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ReceivablesSnapshot(Base):
    """The receivables figures of one merchant on one day (the DSO trend): the last figures computed that day."""

    __tablename__ = "receivables_snapshots"
    __table_args__ = (UniqueConstraint("merchant_id", "day", name="uq_receivables_snapshot"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    day: Mapped[date]
    currency: Mapped[str] = mapped_column(String(3))
    open: Mapped[str] = mapped_column(String(40))
    overdue: Mapped[str] = mapped_column(String(40))
    credit_sales: Mapped[str] = mapped_column(String(40))
    dso_days: Mapped[str] = mapped_column(String(20))
    dso_period_days: Mapped[int] = mapped_column(Integer)
    buckets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)


# the credit tables (limits, checked orders and their holds) live beside the receivables ones
import hub.credit_models  # noqa: E402,F401
