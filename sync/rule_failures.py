"""The orders a merchant's mapping rules are failing now: those whose latest run failed with a mapping
error (``SyncRun.error_kind == "mapping"``, set by ``sync.outcomes`` for a ``MappingError``). After the
rules are saved, support re-runs them in one go; an order that succeeded since is not among them."""

from __future__ import annotations

from sqlalchemy import func, select
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


def failing_counts(s: Session, merchant_ids: list[int]) -> dict[int, int]:
    """Merchant → how many of its orders are failing on a mapping rule now (merchants with none left out)."""
    if not merchant_ids:
        return {}
    q = (select(StoreOrder.merchant_id, func.count()).join(SyncRun, StoreOrder.last_run_id == SyncRun.id)
         .where(StoreOrder.merchant_id.in_(merchant_ids), StoreOrder.state == "failing",
                SyncRun.status == "failed", SyncRun.error_kind == "mapping")
         .group_by(StoreOrder.merchant_id))
    return {merchant_id: count for merchant_id, count in s.execute(q)}
