"""The orders a merchant's mapping rules are failing now: those whose latest run failed with a mapping
error (``SyncRun.error_kind == "mapping"``, set by ``sync.outcomes`` for a ``MappingError``). After the
rules are saved, support re-runs them in one go; an order that succeeded since is not among them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import SyncRun
from hub.order_models import StoreOrder


def runs_failing_on_rules(s: Session, merchant_id: int) -> list[int]:
    """Ids of the failed runs (one per order: its latest) of the merchant's orders failing on a rule."""
    q = (select(SyncRun.id).join(StoreOrder, StoreOrder.last_run_id == SyncRun.id)
         .where(StoreOrder.merchant_id == merchant_id, StoreOrder.state == "failing",
                SyncRun.status == "failed", SyncRun.error_kind == "mapping")
         .order_by(SyncRun.id))
    return list(s.scalars(q))
