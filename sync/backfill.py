"""Backfill: import a merchant's historical orders from each connected store.

The store's order list is walked page by page; each order not yet invoiced (or changed since) gets an
order sync run, exactly as a webhook would give it, so a backfill running while webhooks flow creates
nothing twice (runs absorb each other and every step is idempotent). After each page the position is
stored on the connection (``settings["backfill"]``), so an interrupted backfill resumes where it
stopped when run again with the same dates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from hub.models import Binding, Connection, SyncRun
from sync import runs
from sync.accounts import Accounts

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.backfill")
STORE_PLATFORMS = ("shopify", "woocommerce")


@dataclass
class Listed:
    """One order found in the store: its id, name and last change (UTC, or None if unknown)."""

    id: str
    name: str | None
    updated_at: datetime | None


@dataclass
class BackfillResult:
    connections: int = 0
    listed: int = 0
    queued: int = 0
    up_to_date: int = 0
    resumed: bool = False
    run_ids: list[int] | None = None


def backfill(hub: Hub, merchant_id: int, since: date, until: date | None = None, *,
             on_run: Callable[[int], None] | None = None,
             on_page: Callable[[int, int | None], None] | None = None) -> BackfillResult:
    """Queue an order sync for every order created in [since, until] in each of the merchant's stores.

    ``on_run(run_id)`` is called for each run queued (e.g. to dispatch it); ``on_page(listed, total)``
    after each page (``total`` when the store tells it).
    """
    result = BackfillResult(run_ids=[])
    with hub.session() as s:
        conns = list(s.scalars(select(Connection).where(
            Connection.merchant_id == merchant_id, Connection.platform.in_(STORE_PLATFORMS),
            Connection.status == "active").order_by(Connection.id)))
    if not conns:
        raise LookupError("the merchant has no connected store (Shopify or WooCommerce)")
    accounts = Accounts(hub, merchant_id)
    key = {"since": since.isoformat(), "until": until.isoformat() if until else None}
    for conn in conns:
        result.connections += 1
        state = dict((conn.settings or {}).get("backfill") or {})
        resume = state.get("cursor") if (not state.get("done") and state.get("since") == key["since"]
                                         and state.get("until") == key["until"]) else None
        result.resumed |= resume is not None
        pages = (_shopify_pages(accounts, conn, since, until, resume) if conn.platform == "shopify"
                 else _woocommerce_pages(accounts, conn, since, until, resume))
        for orders, cursor, total in pages:
            ids = queue_orders(hub, conn, orders, result)
            _save_state(hub, conn.id, {**key, "cursor": cursor, "done": cursor is None,
                                       "at": datetime.now(UTC).isoformat(timespec="seconds")})
            result.listed += len(orders)
            if on_page:
                on_page(result.listed, total)
            for run_id in ids:
                if on_run:
                    on_run(run_id)
    return result


def queue_orders(hub: Hub, conn: Connection, orders: list[Listed], result: BackfillResult, *,
                 trigger: str = "backfill") -> list[int]:
    """Open an order run for each listed order not invoiced yet or changed since (the caller dispatches)."""
    ids = []
    with hub.session() as s:
        synced = {b.source_id: b.updated_at for b in s.scalars(select(Binding).where(
            Binding.merchant_id == conn.merchant_id, Binding.source_platform == conn.platform,
            Binding.source_type == "order", Binding.target_type == "invoice",
            Binding.source_id.in_([o.id for o in orders])))}
        busy = set(s.scalars(select(SyncRun.source_id).where(
            SyncRun.merchant_id == conn.merchant_id, SyncRun.kind == "order",
            SyncRun.source_platform == conn.platform, SyncRun.status.in_(("pending", "running", "retrying")),
            SyncRun.source_id.in_([o.id for o in orders]))))
        for o in orders:
            if o.id in busy:  # a sync of it is under way and pulls the order fresh anyway
                result.up_to_date += 1
                continue
            seen = synced.get(o.id)
            if seen is not None and (o.updated_at is None or o.updated_at.replace(tzinfo=None) <= seen):
                result.up_to_date += 1
                continue
            run, new = runs.open_run(s, merchant_id=conn.merchant_id, kind="order", platform=conn.platform,
                                     source_id=o.id, source_name=o.name, trigger=trigger)
            run.connection_id = conn.id
            if new:
                ids.append(run.id)
        s.commit()
    result.queued += len(ids)
    assert result.run_ids is not None
    result.run_ids.extend(ids)
    return ids


def _save_state(hub: Hub, connection_id: int, state: dict[str, Any]) -> None:
    with hub.session() as s:
        row = s.get(Connection, connection_id)
        if row is not None:
            row.settings = {**(row.settings or {}), "backfill": state}
            s.commit()


def _bounds(since: date, until: date | None) -> tuple[datetime, datetime | None]:
    start = datetime.combine(since, time.min, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC) if until else None
    return start, end


def _shopify_pages(accounts: Accounts, conn: Connection, since: date, until: date | None,
                   cursor: Any) -> Iterator[tuple[list[Listed], Any, int | None]]:
    start, end = _bounds(since, until)
    query = f"created_at:>='{start:%Y-%m-%dT%H:%M:%SZ}'"
    if end:
        query += f" created_at:<'{end:%Y-%m-%dT%H:%M:%SZ}'"
    client = accounts.shopify(conn.account)
    after = cursor if isinstance(cursor, str) else None
    while True:
        nodes, after = client.orders_page(query=query, after=after)
        yield [listed_from_shopify(n) for n in nodes], after, None
        if after is None:
            return


def _woocommerce_pages(accounts: Accounts, conn: Connection, since: date, until: date | None,
                       cursor: Any) -> Iterator[tuple[list[Listed], Any, int | None]]:
    start, end = _bounds(since, until)
    client = accounts.woocommerce(conn.id)
    page = cursor if isinstance(cursor, int) and cursor > 0 else 1
    while True:
        result = client.orders_page(page, after=start.strftime("%Y-%m-%dT%H:%M:%S"),
                                    before=end.strftime("%Y-%m-%dT%H:%M:%S") if end else None)
        more = page < result.total_pages and bool(result.orders)
        listed = [listed_from_woocommerce(o) for o in result.orders if o.get("id")]
        yield listed, (page + 1 if more else None), result.total
        if not more:
            return
        page += 1


def listed_from_shopify(node: dict[str, Any]) -> Listed:
    """A node of ``ORDERS_PAGE_QUERY``."""
    return Listed(str(node.get("legacyResourceId") or str(node.get("id", "")).rsplit("/", 1)[-1]),
                  node.get("name"), parse_time(node.get("updatedAt")))


def listed_from_woocommerce(order: dict[str, Any]) -> Listed:
    return Listed(str(order.get("id")), f"#{order.get('number') or order.get('id')}",
                  parse_time(order.get("date_modified_gmt")))


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time from a platform (``Z``, an offset, or none = UTC) as an aware UTC datetime."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
