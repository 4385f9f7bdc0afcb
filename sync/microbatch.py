"""Micro-batches: webhook-driven order runs of one merchant drained together by one batch job.

``O2C_BATCH_WINDOW`` (seconds, default 0.5; 0 turns it off). The job of an order run first tries to become its
merchant's *drainer* (a database lock ``drain:<merchant>``, so one drainer per merchant across every process
and host), then claims every due order run of the merchant (up to ``DRAIN_MAX``) and syncs them with the batch
pipeline (``sync.orders``); it drains again while more are due, for at most ``DRAIN_SECONDS``, routing first
the merchant's webhooks stored meanwhile (``sync.routing``), whose jobs may still wait for a free worker. The
window opens only while a *burst* is under way (``burst_under_way``: more than one order run of the merchant
waiting, or more than ``BURST_RATE`` order runs of it arrived in the last second): the drainer then waits
until the oldest waiting run is ``window`` seconds old, so that the orders of the burst arrive and go in one
batch. A lone order (a steady trickle) never waits: it syncs as soon as its job runs. A job whose merchant
already has a drainer leaves its run to it (the sweeper dispatches it again should the drainer have finished
just before). While QuickBooks' batch limit makes the drainer wait, more orders gather, so batches grow with
the load. Payment runs and runs of other kinds go through ``sync.jobs.run_sync`` as before.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from hub.models import SyncRun, utcnow
from sync import locks, runs
from sync.jobs import run_sync

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.microbatch")
DRAIN_MAX = 120          # runs per batch
DRAIN_SECONDS = 60.0     # a drainer hands over after this long (the next job drains on)
BURST_RATE = 3           # more order runs of one merchant than this in the last second: a burst


def run_job(run_id: int) -> str:
    """The rq entry point (the process's hub comes from the environment)."""
    from hub.runtime import current_hub

    return run(run_id, hub=current_hub())


def run(run_id: int, *, hub: Hub, window: float | None = None) -> str:
    """Work on ``run_id``: alone (micro-batching off, or not an order run) or as part of its merchant's
    next batch. Returns the run's status, ``not-due``, or ``batched`` (left to the merchant's drainer)."""
    window = hub.settings.batch_window if window is None else window
    if window <= 0:
        return run_sync(run_id, hub=hub)
    with hub.sessions() as s:
        row = s.execute(select(SyncRun.kind, SyncRun.merchant_id).where(SyncRun.id == run_id)).first()
    if row is None:
        return "not-due"
    kind, merchant_id = row
    if kind != "order":
        return run_sync(run_id, hub=hub)
    key = f"drain:{merchant_id}"
    holder = locks.holder_id() + f":drain{run_id}"
    ttl = max(5.0, hub.settings.run_lease_seconds)
    if not locks.try_acquire(hub.sessions, key, holder, ttl):
        return "batched"
    stop = threading.Event()
    keeper = threading.Thread(target=_keep, args=(hub, key, holder, ttl, stop), name="o2c-drain", daemon=True)
    keeper.start()
    try:
        return _drain(hub, merchant_id, run_id, window)
    finally:
        stop.set()
        keeper.join(timeout=5)
        locks.release(hub.sessions, key, holder)


def burst_under_way(hub: Hub, merchant_id: int) -> datetime | None:
    """When the order runs of ``merchant_id`` arrive as a burst (more than one waiting, or more than
    ``BURST_RATE`` arrived in the last second): the arrival of the oldest waiting one; ``None`` otherwise."""
    now = utcnow()
    arrived = func.coalesce(SyncRun.updated_at, SyncRun.created_at)
    with hub.sessions() as s:
        waiting, oldest = s.execute(select(func.count(), func.min(arrived)).where(
            SyncRun.merchant_id == merchant_id, SyncRun.kind == "order", SyncRun.status.in_(runs.ACTIVE),
            runs.due_clause(now))).one()
        if not waiting:
            return None
        if waiting > 1:
            return oldest
        recent = s.scalar(select(func.count()).select_from(SyncRun).where(
            SyncRun.merchant_id == merchant_id, SyncRun.kind == "order",
            SyncRun.created_at > now - timedelta(seconds=1)))
    return oldest if (recent or 0) > BURST_RATE else None


def _drain(hub: Hub, merchant_id: int, run_id: int, window: float) -> str:
    from sync.orders.runner import run_orders

    status = "not-due"
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        _route_stored(hub, merchant_id)
        oldest = burst_under_way(hub, merchant_id)
        if oldest is not None:  # the window: let the rest of the burst arrive
            age = (utcnow() - oldest).total_seconds()
            if 0 <= age < window:
                time.sleep(window - age)
        with hub.sessions() as s:
            ids = list(s.scalars(select(SyncRun.id).where(
                SyncRun.merchant_id == merchant_id, SyncRun.kind == "order", runs.due_clause(utcnow()))
                .order_by(SyncRun.id).limit(DRAIN_MAX)))
        if not ids:
            break
        result = run_orders(hub, ids)
        status = result.statuses.get(run_id, status)
        if not result.statuses:  # nothing could be claimed (locked elsewhere): the sweeper retries them
            break
    return status


def _route_stored(hub: Hub, merchant_id: int) -> None:
    """Route the merchant's webhooks stored meanwhile here, so that their orders join the next batch at once
    instead of waiting for a free worker to take their routing jobs (those then find nothing to do)."""
    from sync.routing import received_events, route_events

    try:
        route_events(hub, received_events(hub.sessions, grace=0, limit=DRAIN_MAX, merchant_id=merchant_id))
    except Exception:  # noqa: BLE001 - the routing jobs and the sweepers route them anyway
        log.warning("could not route the stored webhooks of merchant %s", merchant_id, exc_info=True)


def _keep(hub: Hub, key: str, holder: str, ttl: float, stop: threading.Event) -> None:
    while not stop.wait(ttl / 3):
        try:
            locks.extend(hub.sessions, key, holder, ttl)
        except Exception:  # noqa: BLE001 - the lock may lapse: a second drainer is safe (runs are claimed)
            log.warning("could not extend the drain lock %s", key)
