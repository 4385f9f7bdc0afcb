"""The cycle's health at a glance, from the order ledger (``store_orders``) and the runs: orders received
per hour or day and where each of them stands now (in sync, failing, still open), the failure rate,
order-to-invoice and order-to-cash times (p50/p95), the backlog and the queue depth, and each connection's
status with its last success and token expiry.

Every figure is one indexed query over a bounded window (migration 0015 adds the indexes: received,
invoiced and paid times, per merchant and across merchants; a merchant's newest succeeded run), so the
page stays fast however many orders the ledger holds (``benchmarks/dashboard.py`` measures it at
1,000,000). ``merchant_id`` None means every merchant (staff); a merchant user is always given its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from hub.models import Connection, Merchant, SyncRun, utcnow
from hub.order_models import StoreOrder

UNITS = {"hour": (timedelta(hours=1), 24), "day": (timedelta(days=1), 30)}
OPEN_RUN_STATUSES = ("pending", "running", "retrying")
BACKLOG_STATES = ("pending", "waiting", "failing")
STORE_PLATFORMS = ("shopify", "woocommerce")
RENEW_SOON = timedelta(days=7)   # a token expiring within this is flagged


@dataclass
class FlowBucket:
    """Orders received in one hour or day, by where they stand now."""

    start: datetime
    received: int = 0
    in_sync: int = 0
    failing: int = 0

    @property
    def other(self) -> int:
        """Received but neither in sync nor failing: pending, waiting for a reconnect or skipped."""
        return self.received - self.in_sync - self.failing


@dataclass
class Percentiles:
    count: int
    p50: float | None   # seconds
    p95: float | None


@dataclass
class Health:
    merchant_id: int | None
    unit: str
    since: datetime
    flow: list[FlowBucket]
    to_invoice: Percentiles
    to_cash: Percentiles
    backlog: dict[str, int]                  # ledger states pending / waiting / failing
    runs: dict[str, int]                     # open runs: pending / running / retrying
    queue_depth: int | None
    connections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def received(self) -> int:
        return sum(b.received for b in self.flow)

    @property
    def in_sync(self) -> int:
        return sum(b.in_sync for b in self.flow)

    @property
    def failing(self) -> int:
        return sum(b.failing for b in self.flow)

    @property
    def failure_rate(self) -> float | None:
        """The share of the window's orders that are failing now (None with no order)."""
        return self.failing / self.received if self.received else None


def _scoped(q: Select, merchant_id: int | None) -> Select:
    return q if merchant_id is None else q.where(StoreOrder.merchant_id == merchant_id)


def _truncate(s: Session, column: Any, unit: str) -> Any:
    """The start of the hour or day of a timestamp column, on either database."""
    if s.get_bind().dialect.name == "postgresql":
        return func.date_trunc(unit, column)
    return func.strftime("%Y-%m-%d %H:00:00" if unit == "hour" else "%Y-%m-%d 00:00:00", column)


def _start_of(moment: datetime, unit: str) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if unit == "day" else moment


def _as_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def window_start(unit: str, now: datetime | None = None) -> datetime:
    """The start of the dashboard's window: 24 hours by hour, 30 days by day (whole hours and days)."""
    step, count = UNITS[unit]
    return _start_of(now or utcnow(), unit) - step * (count - 1)


def order_flow(s: Session, merchant_id: int | None, unit: str = "hour",
               now: datetime | None = None) -> list[FlowBucket]:
    """The last 24 hours (or 30 days) of received orders, a bucket each hour (day), oldest first; empty
    buckets included so the chart's axis is even."""
    step, count = UNITS[unit]
    first = window_start(unit, now)
    bucket = _truncate(s, StoreOrder.received_at, unit)
    q = _scoped(select(bucket, func.count(), func.count().filter(StoreOrder.state == "in_sync"),
                       func.count().filter(StoreOrder.state == "failing"))
                .where(StoreOrder.received_at >= first).group_by(bucket), merchant_id)
    found = {_as_time(start): (n, ok, bad) for start, n, ok, bad in s.execute(q)}
    buckets = []
    for i in range(count):
        start = first + step * i
        n, ok, bad = found.get(start, (0, 0, 0))
        buckets.append(FlowBucket(start, n, ok, bad))
    return buckets


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``)."""
    if not values:
        return None
    values = sorted(values)
    pos = (len(values) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return values[low] + (values[high] - values[low]) * (pos - low)


def _durations(s: Session, merchant_id: int | None, end: Any, start: Any, since: datetime) -> Percentiles:
    where = [end.is_not(None), end >= since]
    if s.get_bind().dialect.name == "postgresql":
        seconds = func.extract("epoch", end - start)
        q = _scoped(select(func.count(), func.percentile_cont(0.5).within_group(seconds),
                           func.percentile_cont(0.95).within_group(seconds)).where(*where), merchant_id)
        n, p50, p95 = s.execute(q).one()
        return Percentiles(n, float(p50) if p50 is not None else None, float(p95) if p95 is not None else None)
    seconds = (func.julianday(end) - func.julianday(start)) * 86400.0
    values = [float(v) for v in s.scalars(_scoped(select(seconds).where(*where), merchant_id)) if v is not None]
    return Percentiles(len(values), _percentile(values, 0.5), _percentile(values, 0.95))


def order_to_invoice(s: Session, merchant_id: int | None, since: datetime) -> Percentiles:
    """From the hub receiving an order to its QuickBooks invoice, over the orders invoiced since ``since``."""
    return _durations(s, merchant_id, StoreOrder.invoiced_at, StoreOrder.received_at, since)


def order_to_cash(s: Session, merchant_id: int | None, since: datetime) -> Percentiles:
    """From the order (the store's creation time, else its receipt) to its payment, over the orders paid
    since ``since``."""
    start = func.coalesce(StoreOrder.ordered_at, StoreOrder.received_at)
    return _durations(s, merchant_id, StoreOrder.paid_at, start, since)


def backlog(s: Session, merchant_id: int | None) -> dict[str, int]:
    """Orders pending, waiting for a reconnect and failing now."""
    q = _scoped(select(StoreOrder.state, func.count()).where(StoreOrder.state.in_(BACKLOG_STATES))
                .group_by(StoreOrder.state), merchant_id)
    found = dict(s.execute(q).all())
    return {state: int(found.get(state, 0)) for state in BACKLOG_STATES}


def open_runs(s: Session, merchant_id: int | None) -> dict[str, int]:
    """Runs of any kind not finished yet: pending, running, retrying."""
    q = select(SyncRun.status, func.count()).where(SyncRun.status.in_(OPEN_RUN_STATUSES)).group_by(SyncRun.status)
    if merchant_id is not None:
        q = q.where(SyncRun.merchant_id == merchant_id)
    found = dict(s.execute(q).all())
    return {status: int(found.get(status, 0)) for status in OPEN_RUN_STATUSES}


def connection_health(s: Session, merchant_id: int | None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each connection: status (and why), last success, token expiry, whether it needs a reconnect.

    The last success of a store connection is the newest succeeded run of an order from it; a back-office
    connection (QuickBooks, HubSpot) takes part in every run of its merchant, so its last success is the
    merchant's newest succeeded run."""
    now = now or utcnow()
    newest = (select(func.max(SyncRun.finished_at))
              .where(SyncRun.merchant_id == Connection.merchant_id, SyncRun.status == "succeeded"))
    last = case((Connection.platform.in_(STORE_PLATFORMS),
                 newest.where(SyncRun.connection_id == Connection.id).correlate(Connection).scalar_subquery()),
                else_=newest.correlate(Connection).scalar_subquery())
    q = (select(Connection.id, Connection.merchant_id, Merchant.name, Connection.platform, Connection.account,
                Connection.status, Connection.status_reason, Connection.token_expires_at, last)
         .join(Merchant, Merchant.id == Connection.merchant_id).order_by(Connection.merchant_id, Connection.id))
    if merchant_id is not None:
        q = q.where(Connection.merchant_id == merchant_id)
    rows = []
    for cid, mid, name, platform, account, status, reason, expires, last_success in s.execute(q):
        expired = expires is not None and expires <= now
        rows.append({"id": cid, "merchant": mid, "merchant_name": name, "platform": platform, "account": account,
                     "status": status, "reason": reason, "last_success": _as_time(last_success) if last_success
                     else None, "token_expires_at": expires, "token_expired": expired,
                     "token_expires_soon": expires is not None and not expired and expires - now <= RENEW_SOON,
                     "needs_reconnect": status == "needs_reconnect"})
    return rows


def by_merchant(s: Session, since: datetime) -> list[dict[str, Any]]:
    """Staff's overview: per merchant, the orders received since ``since``, those failing among them and
    every order failing now."""
    received = (select(StoreOrder.merchant_id, func.count().label("received"),
                       func.count().filter(StoreOrder.state == "failing").label("failing"))
                .where(StoreOrder.received_at >= since).group_by(StoreOrder.merchant_id).subquery())
    failing_now = (select(StoreOrder.merchant_id, func.count().label("n")).where(StoreOrder.state == "failing")
                   .group_by(StoreOrder.merchant_id).subquery())
    q = (select(Merchant.id, Merchant.name, func.coalesce(received.c.received, 0),
                func.coalesce(received.c.failing, 0), func.coalesce(failing_now.c.n, 0))
         .outerjoin(received, received.c.merchant_id == Merchant.id)
         .outerjoin(failing_now, failing_now.c.merchant_id == Merchant.id).order_by(Merchant.name, Merchant.id))
    return [{"id": mid, "name": name, "received": n, "failing": bad, "failing_now": now_bad,
             "failure_rate": bad / n if n else None} for mid, name, n, bad, now_bad in s.execute(q)]


def health(s: Session, merchant_id: int | None, unit: str = "hour", *, queue_depth: int | None = None,
           now: datetime | None = None) -> Health:
    """Every figure of the dashboard for one merchant (or all of them, ``merchant_id`` None)."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}")
    now = now or utcnow()
    flow = order_flow(s, merchant_id, unit, now)
    since = flow[0].start
    return Health(merchant_id, unit, since, flow, order_to_invoice(s, merchant_id, since),
                  order_to_cash(s, merchant_id, since), backlog(s, merchant_id), open_runs(s, merchant_id),
                  queue_depth, connection_health(s, merchant_id, now))

