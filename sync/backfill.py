"""Backfill: import a merchant's historical orders from each connected store.

The store's order list is walked page by page. Each order not yet invoiced (or changed since) gets an
order sync run, exactly as a webhook would give it, so ``o2c syncs list`` shows it and a backfill running
while webhooks flow creates nothing twice (runs absorb each other, each run is claimed by one worker, and
every step is idempotent).

Two ways to carry the runs out:

* ``batched=True`` (what ``o2c backfill`` does): the listing returns whole orders, and every ``GROUP``
  orders the runs are claimed here and synced together by the order pipeline (``sync.orders``) from the
  orders the listing returned — no call per order. A run someone else already claimed is left alone.
  Shopify: a period of ``BULK_MIN_ORDERS`` orders or more (``ordersCount``, one call) is read with one bulk
  operation (``connectors.shopify_bulk``: a JSONL file of every order, a handful of calls in all); a smaller
  one with pages of ``ORDERS_FULL_PAGE_QUERY``. Both give the nodes to the same mapping
  (``mappings.shopify.order_from_graphql``). WooCommerce's list returns whole orders anyway. Incremental
  catch-up (``sync.catchup``) stays on pages: it reads minutes of orders, not history.
* otherwise the runs are handed to ``on_run`` (e.g. dispatched to ``o2c worker`` processes).

After each page (batched: each group, once synced) the position is stored on the connection
(``settings["backfill"]``), so an interrupted backfill resumes where it stopped when run again with the
same dates; runs an interrupted backfill left behind are claimed again when their lease has run out.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.errors import Retryable
from connectors.shopify_bulk import download, orders_from_jsonl, run_bulk_query
from connectors.shopify_bulk_queries import (
    FULL_PAGE_SIZE,
    ORDERS_COUNT_QUERY,
    ORDERS_FULL_PAGE_QUERY,
    bulk_orders_query,
    truncated,
)
from hub.models import Binding, Connection, SyncRun, utcnow
from hub.order_models import StoreOrder
from mappings.model import Order
from mappings.shopify import order_from_graphql
from mappings.woocommerce import order_from_rest
from sync import runs
from sync.accounts import Accounts
from sync.ledger import store_key

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.backfill")
STORE_PLATFORMS = ("shopify", "woocommerce")
GROUP = 600            # orders synced together: 20 full QuickBooks batches of invoices, 6 HubSpot batches of deals
LISTING_RETRIES = 8    # a failing page is asked for again this often before giving up
THROTTLE_BUDGET = 900.0  # seconds a listing may wait for Shopify's cost bucket in all before giving up
# From this many orders in the period on, a Shopify backfill reads them with one bulk operation (a handful of
# calls in all, however many orders) instead of pages of whole orders (one call per FULL_PAGE_SIZE orders, and
# one more per order too big for a page); below it, pages are quicker (no wait for an operation to finish).
BULK_MIN_ORDERS = 250
COUNT_LIMIT = 10_000     # Shopify counts exactly up to this many (its default limit of ``ordersCount``)
BULK_PAGE = FULL_PAGE_SIZE  # orders handed to the sync at a time from a bulk operation's file (as a page)
BULK_CURSOR = "bulk"     # the stored position of a bulk backfill under way


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
    statuses: dict[int, str] | None = None   # batched: each run's status after its batch


def backfill(hub: Hub, merchant_id: int, since: date, until: date | None = None, *,
             on_run: Callable[[int], None] | None = None,
             on_page: Callable[[int, int | None], None] | None = None,
             batched: bool = False, on_synced: Callable[[int], None] | None = None) -> BackfillResult:
    """Open an order sync for every order created in [since, until] in each of the merchant's stores.

    ``batched``: sync them here with the order pipeline (``on_synced(n)`` after each group of ``n``);
    else ``on_run(run_id)`` is called for each run opened (e.g. to dispatch it). ``on_page(listed, total)``
    after each page (``total`` when the store tells it).
    """
    result = BackfillResult(run_ids=[], statuses={})
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
        if batched:
            _sync_store(hub, accounts, conn, key, since, until, resume, result, on_page, on_synced)
            continue
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


Loader = Callable[[], Order | None]


def _sync_store(hub: Hub, accounts: Accounts, conn: Connection, key: dict[str, Any], since: date,
                until: date | None, resume: Any, result: BackfillResult,
                on_page: Callable[[int, int | None], None] | None,
                on_synced: Callable[[int], None] | None) -> None:
    from sync.orders.runner import run_orders

    pages = _prefetched(_shopify_history(accounts, conn, since, until, resume) if conn.platform == "shopify"
                        else _woocommerce_full_pages(accounts, conn, since, until, resume))
    group: list[tuple[Listed, Loader]] = []
    cursor: Any = resume
    for page, cursor, total in pages:
        group.extend(page)
        result.listed += len(page)
        if on_page:
            on_page(result.listed, total)
        if len(group) < GROUP and cursor is not None:
            continue
        by_source = {listed.id: loader for listed, loader in group}
        claim = queue_orders(hub, conn, [listed for listed, _ in group], result, include_waiting=True)
        done = run_orders(hub, claim, {run_id: by_source[source] for run_id, source in _sources(hub, claim)})
        assert result.statuses is not None
        result.statuses.update(done.statuses)
        _save_state(hub, conn.id, {**key, "cursor": cursor, "done": cursor is None,
                                   "at": datetime.now(UTC).isoformat(timespec="seconds")})
        if on_synced:
            on_synced(len(done.statuses) + len(done.not_due) + len(done.deferred))
        group = []
    if cursor is None:
        _save_state(hub, conn.id, {**key, "cursor": None, "done": True,
                                   "at": datetime.now(UTC).isoformat(timespec="seconds")})


def _prefetched(pages: Iterator[Any], depth: int = 2 * GROUP // FULL_PAGE_SIZE) -> Iterator[Any]:
    """The pages, listed by a thread ahead of the caller (up to ``depth`` pages), so that listing the store
    and syncing into QuickBooks each go at their own platform's pace instead of taking turns."""
    import queue
    import threading

    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        q.put(("page", page), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            q.put(("error", exc))

    thread = threading.Thread(target=produce, name="o2c-backfill-list", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def _sources(hub: Hub, run_ids: list[int]) -> list[tuple[int, str]]:
    if not run_ids:
        return []
    with hub.session() as s:
        return [(r[0], r[1]) for r in s.execute(select(SyncRun.id, SyncRun.source_id).where(SyncRun.id.in_(run_ids)))]


def listing_call(fetch: Callable[[], Any]) -> Any:
    """A listing call, asked again after a throttle or a transient failure, after the wait the platform asks
    for. A throttle (Shopify ``THROTTLED`` says how long until the bucket holds the query's cost) is not a
    failure: it waits as told, up to ``THROTTLE_BUDGET`` seconds in all, without using up a retry."""
    attempt, throttled = 0, 0.0
    while True:
        try:
            return fetch()
        except Retryable as exc:
            if exc.code == "THROTTLED" and throttled + (exc.retry_after or 1.0) <= THROTTLE_BUDGET:
                wait = max(0.1, exc.retry_after or 1.0)
                throttled += wait
                clock.sleep(wait)
                continue
            attempt += 1
            if attempt >= LISTING_RETRIES:
                raise
            clock.sleep(min(60.0, exc.retry_after or 2.0 ** (attempt - 1)))


def _shopify_history(accounts: Accounts, conn: Connection, since: date, until: date | None,
                     cursor: Any) -> Iterator[tuple[list[tuple[Listed, Loader]], Any, int | None]]:
    """The orders of the period by a bulk operation when there are ``BULK_MIN_ORDERS`` or more (or a bulk
    backfill is being resumed), else by pages (as a paged backfill being resumed goes on)."""
    if cursor == BULK_CURSOR:
        return _shopify_bulk_pages(accounts, conn, since, until)
    if isinstance(cursor, str):
        return _shopify_full_pages(accounts, conn, since, until, cursor)
    client = accounts.shopify(conn.account)
    counted = listing_call(lambda: client.graphql(ORDERS_COUNT_QUERY, {
        "query": _shopify_query(since, until), "limit": min(BULK_MIN_ORDERS, COUNT_LIMIT)}))
    count = int(((counted.get("ordersCount") or {}).get("count")) or 0)
    if count >= BULK_MIN_ORDERS:
        return _shopify_bulk_pages(accounts, conn, since, until)
    return _shopify_full_pages(accounts, conn, since, until, None)


def _shopify_bulk_pages(accounts: Accounts, conn: Connection, since: date,
                        until: date | None) -> Iterator[tuple[list[tuple[Listed, Loader]], Any, int | None]]:
    """Every order of the period from one bulk operation (``connectors.shopify_bulk``), in pages of
    ``BULK_PAGE`` whole orders; the cursor is ``BULK_CURSOR`` until the last page (None): a resumed bulk
    backfill runs the operation again, and the orders synced already are found up to date."""
    import os

    client = accounts.shopify(conn.account)
    op = listing_call(lambda: run_bulk_query(client.graphql, bulk_orders_query(_shopify_query(since, until))))
    total = int(op.get("rootObjectCount") or 0) or None
    if not op.get("url"):
        yield [], None, 0
        return
    path = listing_call(lambda: download(op["url"], allowed_prefix=accounts.hub.settings.shopify_api_url,
                                         timeout=accounts.hub.settings.http_timeout))
    try:
        page: list[tuple[Listed, Loader]] = []
        for node in orders_from_jsonl(path):
            if len(page) >= BULK_PAGE:
                yield page, BULK_CURSOR, total
                page = []
            page.append((listed_from_shopify(node), _bulk_loader(client, node)))
        yield page, None, total
    finally:
        os.unlink(path)


def _bulk_loader(client: Any, node: dict[str, Any]) -> Loader:
    def load() -> Order | None:
        if not node.get("refunds"):
            return order_from_graphql(node)
        fetched = client.fetch_order(str(node.get("legacyResourceId")))  # refund lines: not in a bulk query
        return None if fetched is None else order_from_graphql(*fetched)
    return load


def _shopify_full_pages(accounts: Accounts, conn: Connection, since: date, until: date | None,
                        cursor: Any) -> Iterator[tuple[list[tuple[Listed, Loader]], Any, int | None]]:
    query = _shopify_query(since, until)
    client = accounts.shopify(conn.account)
    after = cursor if isinstance(cursor, str) else None
    while True:
        data = listing_call(lambda after=after: client.graphql(
            ORDERS_FULL_PAGE_QUERY, {"first": FULL_PAGE_SIZE, "after": after, "query": query}))
        orders = data.get("orders") or {}
        info = orders.get("pageInfo") or {}
        after = info.get("endCursor") if info.get("hasNextPage") else None
        yield [(listed_from_shopify(n), _shopify_loader(client, n)) for n in orders.get("nodes") or []], after, None
        if after is None:
            return


def _shopify_loader(client: Any, node: dict[str, Any]) -> Loader:
    def load() -> Order | None:
        if not truncated(node):
            return order_from_graphql(node)
        fetched = client.fetch_order(str(node.get("legacyResourceId")))  # too many lines for a page
        return None if fetched is None else order_from_graphql(*fetched)
    return load


def _woocommerce_full_pages(accounts: Accounts, conn: Connection, since: date, until: date | None,
                            cursor: Any) -> Iterator[tuple[list[tuple[Listed, Loader]], Any, int | None]]:
    start, end = _bounds(since, until)
    client = accounts.woocommerce(conn.id)
    page = cursor if isinstance(cursor, int) and cursor > 0 else 1
    while True:
        result = listing_call(lambda page=page: client.orders_page(
            page, after=start.strftime("%Y-%m-%dT%H:%M:%S"), before=end.strftime("%Y-%m-%dT%H:%M:%S") if end else None))
        more = page < result.total_pages and bool(result.orders)
        listed = [(listed_from_woocommerce(o), (lambda o=o: order_from_rest(o))) for o in result.orders if o.get("id")]
        yield listed, (page + 1 if more else None), result.total
        if not more:
            return
        page += 1


def queue_orders(hub: Hub, conn: Connection, orders: list[Listed], result: BackfillResult, *,
                 trigger: str = "backfill", include_waiting: bool = False) -> list[int]:
    """Open an order run for each listed order not invoiced yet or changed since (the caller dispatches).
    ``include_waiting``: also return the runs already waiting for these orders (pending, retrying, or
    running with a lapsed lease), for a caller that claims them itself; a run whose worker is alive is
    left alone."""
    ids = []
    waiting: list[int] = []
    with hub.session() as s:
        # the open runs first, then what they wrote: each SELECT sees the commits made before it (SQLite
        # outside a write, PostgreSQL's read committed), and a run writes its binding before it leaves the
        # open statuses. In the other order a run that finished between the two was neither open nor
        # bound for this pass, which opened a second run of an order just invoiced.
        open_runs = list(s.execute(select(SyncRun.source_id, SyncRun.id).where(
            SyncRun.merchant_id == conn.merchant_id, SyncRun.kind == "order",
            SyncRun.source_platform == conn.platform, SyncRun.status.in_(("pending", "running", "retrying")),
            SyncRun.source_id.in_([o.id for o in orders]))))
        synced = {b.source_id: b.updated_at for b in s.scalars(select(Binding).where(
            Binding.merchant_id == conn.merchant_id, Binding.source_platform == conn.platform,
            Binding.source_type == "order", Binding.target_type == "invoice",
            Binding.source_store == store_key(conn.platform, conn.account),
            Binding.source_id.in_([o.id for o in orders])))}
        busy = {r[0] for r in open_runs}
        stuck = _stuck_since(s, conn, [o.id for o in orders])
        if include_waiting:
            due = set(s.scalars(select(SyncRun.id).where(
                SyncRun.id.in_([r[1] for r in open_runs]), runs.due_clause(utcnow()))))
            waiting = [r[1] for r in open_runs if r[1] in due]
        for o in orders:
            if o.id in busy:  # a sync of it is under way and pulls the order fresh anyway
                result.up_to_date += 1
                continue
            seen = synced.get(o.id)
            if seen is not None and (o.updated_at is None or o.updated_at.replace(tzinfo=None) <= seen):
                result.up_to_date += 1
                continue
            tried = stuck.get(o.id)   # its latest run failed or was skipped after pulling this very version
            if tried is not None and (o.updated_at is None or o.updated_at.replace(tzinfo=None) <= tried):
                result.up_to_date += 1
                continue
            run, new = runs.open_run(s, merchant_id=conn.merchant_id, kind="order", platform=conn.platform,
                                     source_id=o.id, source_name=o.name, trigger=trigger, connection_id=conn.id)
            if new:
                ids.append(run.id)
        s.commit()
    result.queued += len(ids)
    assert result.run_ids is not None
    result.run_ids.extend(ids)
    return ids + waiting


def _stuck_since(s: Session, conn: Connection, order_ids: list[str]) -> dict[str, datetime]:
    """Orders whose latest run failed or was skipped, with when that run started: a pass that finds the
    order unchanged since then adds no run (support re-runs it once the cause is fixed)."""
    rows = s.execute(select(StoreOrder.order_id, SyncRun.created_at)
                     .join(SyncRun, SyncRun.id == StoreOrder.last_run_id)
                     .where(StoreOrder.merchant_id == conn.merchant_id, StoreOrder.platform == conn.platform,
                            StoreOrder.store == conn.account, StoreOrder.state.in_(("failing", "skipped")),
                            StoreOrder.order_id.in_(order_ids)))
    return {order_id: created for order_id, created in rows}


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


def _shopify_query(since: date, until: date | None) -> str:
    start, end = _bounds(since, until)
    query = f"created_at:>='{start:%Y-%m-%dT%H:%M:%SZ}'"
    if end:
        query += f" created_at:<'{end:%Y-%m-%dT%H:%M:%SZ}'"
    return query


def _shopify_pages(accounts: Accounts, conn: Connection, since: date, until: date | None,
                   cursor: Any) -> Iterator[tuple[list[Listed], Any, int | None]]:
    query = _shopify_query(since, until)
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
