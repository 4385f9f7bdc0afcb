"""Operator tasks started from the console: a backfill, a catch-up pass or a reconcile of one merchant.

A task row is written before the work starts and names the runs it opens as it goes, so the console's
progress page can follow it (queued → running → done or failed, and its runs: done, failed, remaining)
whichever process does the work (an rq worker in scale-out mode, a thread in embedded mode).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base, utcnow
from hub.scrubbing import ScrubbedText

TASK_KINDS = ("backfill", "catch_up", "reconcile")
TASK_STATUSES = ("queued", "running", "done", "failed")


class OperatorTask(Base):
    __tablename__ = "operator_tasks"
    __table_args__ = (Index("ix_operator_tasks_merchant", "merchant_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    kind: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    actor: Mapped[str] = mapped_column(String(254))
    run_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # e.g. what a reconcile found
    error: Mapped[str | None] = mapped_column(ScrubbedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
