"""Catch-up: find what lost webhooks would have brought, so a lost notification delays work but never
loses it.

- QuickBooks: Change Data Capture (``/cdc?entities=Payment&changedSince=…``) lists the payments changed
  since the connection's cursor; each one the hub has not handled since its last change gets a
  ``payment`` run.
- Stores: the orders changed since the cursor (Shopify ``updated_at:>=``, WooCommerce ``modified_after``)
  that are not invoiced, or changed after their invoice was written, get an ``order`` run.

Cursors live in ``Connection.settings["catchup"]`` and move only after a pass succeeds; each pass starts
a few minutes before the previous one began, so clocks that disagree a little lose nothing (repeats are
harmless: runs absorb each other and every step is idempotent). ``run_due_catchups`` is called by the
sweeper of ``o2c serve``/``o2c worker`` every ``O2C_CATCHUP_INTERVAL`` seconds (with the daily check of
the mapping rules' QuickBooks objects); ``o2c catch-up`` runs a pass at once.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from connectors.errors import ConnectorError
from hub.models import Connection, SyncRun
from sync import locks, runs
from sync.accounts import Accounts, NeedsReconnect
from sync.backfill import (
    BackfillResult,
    listed_from_shopify,
    listed_from_woocommerce,
    listing_call,
    parse_time,
    queue_orders,
)
from sync.ledger import Ledger

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.catchup")
OVERLAP = timedelta(minutes=5)
CDC_MAX_AGE = timedelta(days=29)       # QuickBooks CDC looks back at most 30 days
CATCHUP_PLATFORMS = ("quickbooks", "shopify", "woocommerce")


def catch_up_connection(hub: Hub, conn: Connection) -> list[int]:
    """One pass for one connection; returns the ids of the runs it opened (already dispatched)."""
    started = datetime.now(UTC)
    state = dict((conn.settings or {}).get("catchup") or {})
    since = parse_time(state.get("since")) or conn.created_at.replace(tzinfo=UTC) - OVERLAP
    since = max(since, started - CDC_MAX_AGE)
    accounts = Accounts(hub, conn.merchant_id)
    if conn.platform == "quickbooks":
        ids = _quickbooks(hub, accounts, conn, since)
    else:
        ids = _store(hub, accounts, conn, since)
    with hub.sessions() as s:
        row = s.get(Connection, conn.id)
        if row is not None:
            row.settings = {**(row.settings or {}), "catchup": {
                "since": (started - OVERLAP).isoformat(timespec="seconds"),
                "at": started.isoformat(timespec="seconds"), "found": len(ids)}}
            s.commit()
    for run_id in ids:
        hub.dispatcher.dispatch(run_id)
    return ids


def catch_up(hub: Hub, merchant_id: int | None = None) -> dict[int, list[int] | str]:
    """A pass over every active connection (of one merchant): connection id → run ids, or the error."""
    with hub.sessions() as s:
        q = select(Connection).where(Connection.platform.in_(CATCHUP_PLATFORMS), Connection.status == "active")
        if merchant_id is not None:
            q = q.where(Connection.merchant_id == merchant_id)
        conns = list(s.scalars(q.order_by(Connection.id)))
    out: dict[int, list[int] | str] = {}
    for conn in conns:
        try:
            out[conn.id] = catch_up_connection(hub, conn)
        except (ConnectorError, NeedsReconnect) as exc:
            log.warning("catch-up of connection %s failed: %s", conn.id, exc)
            out[conn.id] = str(exc)
    return out


_running = threading.Lock()


def run_due_catchups(hub: Hub) -> None:
    """For the sweeper: start a background pass over the connections whose last pass is older than the
    interval, one connection at a time and one worker per connection (a database lock)."""
    interval = hub.settings.catchup_interval
    if interval <= 0 or not _running.acquire(blocking=False):
        return
    threading.Thread(target=_due_pass, args=(hub, interval), name="o2c-catchup", daemon=True).start()


def _due_pass(hub: Hub, interval: float) -> None:
    try:
        now = datetime.now(UTC)
        with hub.sessions() as s:
            conns = list(s.scalars(select(Connection).where(Connection.platform.in_(CATCHUP_PLATFORMS),
                                                            Connection.status == "active")))
        for conn in conns:
            last = parse_time(((conn.settings or {}).get("catchup") or {}).get("at"))
            if last is not None and (now - last).total_seconds() < interval:
                continue
            holder = locks.holder_id() + ":catchup"
            key = f"catchup:{conn.id}"
            if not locks.try_acquire(hub.sessions, key, holder, ttl=600):
                continue
            try:
                catch_up_connection(hub, conn)
            except Exception as exc:  # noqa: BLE001 - the platform is away: the next pass tries again
                log.warning("catch-up of connection %s failed: %s", conn.id, exc)
            finally:
                locks.release(hub.sessions, key, holder)
        _daily_rules_check(hub)
        from sync.payouts import poll_due_payouts
        poll_due_payouts(hub)   # Shopify has no payout webhook: payouts are polled on this schedule
        _daily_dunning(hub)
    finally:
        _running.release()


def _daily_dunning(hub: Hub) -> None:
    """The merchants' dunning stages, advanced once a day (``sync.dunning``)."""
    from sync.dunning import run_daily_dunning

    try:
        run_daily_dunning(hub)
    except Exception as exc:  # noqa: BLE001 - the database or a platform away: the next pass retries
        log.warning("daily dunning failed: %s", exc)


def _daily_rules_check(hub: Hub) -> None:
    """The mapping rules' QuickBooks objects, checked once a day per merchant (one worker at a time)."""
    from sync.rules_check import check_due_rules

    holder = locks.holder_id() + ":rules-check"
    if not locks.try_acquire(hub.sessions, "rules-check", holder, ttl=600):
        return
    try:
        check_due_rules(hub)
    except Exception as exc:  # noqa: BLE001 - QuickBooks away: tomorrow's pass (or the next one) retries
        log.warning("daily rules check failed: %s", exc)
    finally:
        locks.release(hub.sessions, "rules-check", holder)


def _quickbooks(hub: Hub, accounts: Accounts, conn: Connection, since: datetime) -> list[int]:
    qb = accounts.quickbooks()
    changes = qb.changes_since(["Payment"], since.strftime("%Y-%m-%dT%H:%M:%SZ"))
    ledger = Ledger(hub.sessions, conn.merchant_id)
    ids: list[int] = []
    for payment in changes.get("Payment", []):
        payment_id = str(payment.get("Id") or "")
        if not payment_id or payment.get("status") == "Deleted":
            continue
        if ledger.find_by_target("quickbooks", "payment", payment_id) is not None:
            continue  # the hub recorded it itself
        changed = parse_time((payment.get("MetaData") or {}).get("LastUpdatedTime"))
        with hub.sessions() as s:
            last = s.scalar(select(SyncRun).where(
                SyncRun.merchant_id == conn.merchant_id, SyncRun.kind == "payment",
                SyncRun.source_platform == "quickbooks", SyncRun.source_id == payment_id)
                .order_by(SyncRun.id.desc()).limit(1))
            if last is not None and (last.status in runs.ACTIVE or last.status == "running" or (
                    changed is not None and last.created_at.replace(tzinfo=UTC) >= changed)):
                continue  # handled (or being handled) since its last change
            run, new = runs.open_run(s, merchant_id=conn.merchant_id, kind="payment", platform="quickbooks",
                                     source_id=payment_id, source_name=f"Payment {payment_id}",
                                     trigger="catch-up")
            run.connection_id = conn.id
            s.commit()
            if new:
                ids.append(run.id)
    return ids


def _store(hub: Hub, accounts: Accounts, conn: Connection, since: datetime) -> list[int]:
    result = BackfillResult(run_ids=[])
    if conn.platform == "shopify":
        client = accounts.shopify(conn.account)
        query = f"updated_at:>='{since:%Y-%m-%dT%H:%M:%SZ}'"
        after = None
        while True:
            # a THROTTLED answer waits for the cost bucket as Shopify says, instead of ending the pass
            nodes, after = listing_call(lambda after=after: client.orders_page(query=query, after=after))
            queue_orders(hub, conn, [listed_from_shopify(n) for n in nodes], result, trigger="catch-up")
            if after is None:
                break
    else:
        client = accounts.woocommerce(conn.id)
        page = 1
        while True:
            found = listing_call(lambda page=page: client.orders_page(
                page, modified_after=since.strftime("%Y-%m-%dT%H:%M:%S")))
            queue_orders(hub, conn, [listed_from_woocommerce(o) for o in found.orders if o.get("id")], result,
                         trigger="catch-up")
            if page >= found.total_pages or not found.orders:
                break
            page += 1
    return list(result.run_ids or [])


