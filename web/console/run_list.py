"""The runs table: filters read from the query string, and keyset pages (``id < cursor``, newest first)
that stay fast however many runs there are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.models import Merchant, SyncRun
from mappings.inputs import InvalidInput, parse_date, parse_optional_id
from sync.status import run_summary

PAGE = 50
STATUSES = ("pending", "running", "retrying", "succeeded", "failed", "skipped")
KINDS = ("order", "payment", "refund", "privacy")
PLATFORMS = ("shopify", "woocommerce", "quickbooks", "hubspot")


@dataclass
class RunFilters:
    merchant: int | None = None
    platform: str | None = None
    kind: str | None = None
    status: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    order: str | None = None
    problems: list[str] = field(default_factory=list)   # filters that could not be read, in words

    @classmethod
    def from_args(cls, args: Any) -> RunFilters:
        f = cls()
        try:
            f.merchant = parse_optional_id(args.get("merchant"), name="merchant")
        except InvalidInput as exc:
            f.problems.append(str(exc))
        f.platform = (args.get("platform") or "").strip() or None
        f.kind = (args.get("kind") or "").strip() or None
        f.status = (args.get("status") or "").strip() or None
        f.order = (args.get("order") or "").strip()[:255] or None
        for name in ("created_from", "created_to"):
            value = (args.get(name) or "").strip()
            if value:
                try:
                    setattr(f, name, parse_date(value, name=name.replace("_", " ")))
                except InvalidInput as exc:
                    f.problems.append(str(exc))
        return f

    def query_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for page links)."""
        values = {"merchant": self.merchant, "platform": self.platform, "kind": self.kind, "status": self.status,
                  "created_from": self.created_from, "created_to": self.created_to, "order": self.order}
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


def find_runs(s: Session, f: RunFilters, *, before: int | None = None,
              limit: int = PAGE) -> tuple[list[dict[str, Any]], int | None]:
    """One page of runs (newest first) and the cursor of the next page (None on the last page)."""
    q = select(SyncRun, Merchant.name).join(Merchant, Merchant.id == SyncRun.merchant_id)
    if f.merchant is not None:
        q = q.where(SyncRun.merchant_id == f.merchant)
    if f.platform:
        q = q.where(SyncRun.source_platform == f.platform)
    if f.kind:
        q = q.where(SyncRun.kind == f.kind)
    if f.status:
        q = q.where(SyncRun.status == f.status)
    if f.created_from:
        q = q.where(SyncRun.created_at >= datetime.combine(f.created_from, time.min))
    if f.created_to and f.created_to < date.max:  # up to the last day there is: no bound at all
        q = q.where(SyncRun.created_at < datetime.combine(f.created_to + timedelta(days=1), time.min))
    if f.order:
        bare = f.order.lstrip("#")
        q = q.where(or_(SyncRun.source_name.in_({f.order, bare, f"#{bare}"}), SyncRun.source_id == bare))
    if before is not None:
        q = q.where(SyncRun.id < before)
    rows = s.execute(q.order_by(SyncRun.id.desc()).limit(limit + 1)).all()
    page = [run_summary(run, name) for run, name in rows[:limit]]
    return page, (page[-1]["id"] if len(rows) > limit else None)


def merchant_choices(s: Session, scope: int | None) -> list[tuple[int, str]]:
    q = select(Merchant.id, Merchant.name).order_by(Merchant.name, Merchant.id)
    if scope is not None:
        q = q.where(Merchant.id == scope)
    return [(mid, name) for mid, name in s.execute(q)]
