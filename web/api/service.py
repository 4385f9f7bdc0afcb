"""What the JSON API and ``o2c syncs list|show|retry`` both do with sync runs: filter and page them, show
one, and re-run them (through the console's ``rerun``, so every re-run is audited the same way).

``scope`` is the only merchant the caller may see (``hub.users.merchant_scope``), or None for all.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, or_, select

from hub.models import Merchant, SyncAttempt, SyncRun
from hub.redaction import connection_secrets, redact
from mappings.inputs import InvalidInput, clean_text, parse_optional_datetime, parse_optional_id, shown
from sync.status import run_detail, run_summary
from web.console.actions import rerun
from web.console.run_list import KINDS, PLATFORMS, STATUSES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.runtime import Hub

MAX_PAGE = 200
DEFAULT_PAGE = 50


class BadFilter(ValueError):
    """A filter could not be read; the message names it."""


class OutOfScope(PermissionError):
    """The caller named a merchant it may not see."""


@dataclass
class RunQuery:
    """Filters over sync runs; every one is optional. ``q`` is an order's name (``#1001``), number or id."""

    merchant: int | None = None
    platform: str | None = None
    kind: str | None = None
    status: str | None = None
    created_after: datetime | None = None     # inclusive
    created_before: datetime | None = None    # exclusive
    q: str | None = None

    @classmethod
    def parse(cls, args: Any) -> RunQuery:
        """From query-string arguments or a JSON object; raises ``BadFilter`` naming the bad filter."""
        if not hasattr(args, "get"):
            raise BadFilter("the filter must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in args.keys() if k not in known and k not in ("limit", "before"))
        if unknown:
            raise BadFilter(f"unknown filter {unknown[0]!r} (filters: {', '.join(sorted(known))})")
        query = cls()
        try:
            query.merchant = parse_optional_id(_scalar(args.get("merchant")), name="merchant")
            for name in ("created_after", "created_before"):
                setattr(query, name, parse_optional_datetime(_scalar(args.get(name)), name=name))
        except InvalidInput as exc:
            raise BadFilter(str(exc)) from None
        for name, allowed in (("platform", PLATFORMS), ("kind", KINDS), ("status", STATUSES)):
            value = _text(args.get(name))
            if value is not None and value not in allowed:
                raise BadFilter(f"{name} must be one of {', '.join(allowed)} (got {shown(value)})")
            setattr(query, name, value)
        q = _text(args.get("q"))
        query.q = q[:255] if q else None
        return query

    def scoped(self, scope: int | None) -> RunQuery:
        """The query kept to the caller's merchant; naming another merchant raises ``OutOfScope``."""
        if scope is None:
            return self
        if self.merchant is not None and self.merchant != scope:
            raise OutOfScope(f"this token may only see merchant {scope}")
        self.merchant = scope
        return self

    def apply(self, stmt: Select, *, with_status: bool = True) -> Select:
        if self.merchant is not None:
            stmt = stmt.where(SyncRun.merchant_id == self.merchant)
        if self.platform:
            stmt = stmt.where(SyncRun.source_platform == self.platform)
        if self.kind:
            stmt = stmt.where(SyncRun.kind == self.kind)
        if self.status and with_status:
            stmt = stmt.where(SyncRun.status == self.status)
        if self.created_after:
            stmt = stmt.where(SyncRun.created_at >= self.created_after)
        if self.created_before:
            stmt = stmt.where(SyncRun.created_at < self.created_before)
        if self.q:
            bare = self.q.lstrip("#")
            stmt = stmt.where(or_(SyncRun.source_name.in_({self.q, bare, f"#{bare}"}), SyncRun.source_id == bare))
        return stmt


def _text(value: Any) -> str | None:
    """A filter's text (JSON numbers as their digits), storable and stripped; None when blank."""
    if value is None:
        return None
    value = clean_text(str(value)).strip()
    return value or None


def _scalar(value: Any) -> Any:
    """A query-string value as sent, or a JSON body's string or integer (anything else is refused)."""
    return value if value is None or isinstance(value, str | int) else repr(value)


def find_runs(s: Session, query: RunQuery, *, before: int | None = None,
              limit: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """Runs newest first (every match when ``limit`` is None) and the ``before`` cursor of the next page."""
    stmt = query.apply(select(SyncRun, Merchant.name).join(Merchant, Merchant.id == SyncRun.merchant_id))
    if before is not None:
        stmt = stmt.where(SyncRun.id < before)
    stmt = stmt.order_by(SyncRun.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    rows = s.execute(stmt).all()
    page = [run_summary(run, name) for run, name in (rows[:limit] if limit is not None else rows)]
    more = limit is not None and len(rows) > limit
    return page, (page[-1]["id"] if more else None)


def status_counts(s: Session, query: RunQuery) -> dict[str, int]:
    """How many runs match the filters other than ``status``, by status."""
    stmt = query.apply(select(SyncRun.status, func.count()).group_by(SyncRun.status), with_status=False)
    return {status: n for status, n in s.execute(stmt)}


def visible_run(s: Session, run_id: int, scope: int | None = None) -> SyncRun | None:
    """The run, or None when there is none or it belongs to a merchant out of scope."""
    run = s.get(SyncRun, run_id)
    if run is None or (scope is not None and run.merchant_id != scope):
        return None
    return run


def run_view(s: Session, run_id: int, scope: int | None = None, *, box: Any = None) -> dict[str, Any] | None:
    """``o2c syncs show --json``'s shape; with ``box`` (the hub's SecretBox) also each attempt's
    ``error_code`` and redacted ``excerpt``, and the run's ``error_code``."""
    run = visible_run(s, run_id, scope)
    if run is None:
        return None
    detail = run_detail(s, run_id)
    if detail is None or box is None:
        return detail
    detail["error_code"] = run.error_code
    secrets = connection_secrets(s, box, run.merchant_id)
    attempts = {a.number: a for a in s.scalars(select(SyncAttempt).where(SyncAttempt.run_id == run_id))}
    for entry in detail["attempt_log"]:
        row = attempts.get(entry["number"])
        entry["error_code"] = row.error_code if row else None
        entry["excerpt"] = redact(row.excerpt, secrets) if row and row.excerpt else None
    return detail


def failed_run_ids(s: Session, query: RunQuery) -> list[int]:
    """Ids of the failed runs matching ``query`` (its ``status`` is ignored), oldest first."""
    stmt = query.apply(select(SyncRun.id), with_status=False).where(SyncRun.status == "failed")
    return list(s.scalars(stmt.order_by(SyncRun.id)))


def retry_runs(hub: Hub, run_ids: list[int], actor: str, *, dispatch: bool = True, **audit: Any) -> list[int]:
    """Re-run the runs (running ones are left alone), with one audit entry; returns the ids re-queued.
    ``dispatch=False`` leaves them to the sweeper of a running ``serve`` or ``worker``."""
    return rerun(hub if dispatch else _Undispatched(hub), run_ids, actor, **audit)  # type: ignore[arg-type]


class _NoDispatch:
    def dispatch(self, run_id: int) -> None:
        return None


class _Undispatched:
    """The hub as ``rerun`` sees it when nothing should start here: the same, minus dispatching."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @property
    def dispatcher(self) -> _NoDispatch:
        return _NoDispatch()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hub, name)
