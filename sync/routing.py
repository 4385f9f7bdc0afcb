"""Routing: a stored inbox event becomes the run that carries it.

The Shopify receiver's fast path only verifies the delivery and stores it (``received``, ``hub.inbox``);
what follows happens here, in a job (the embedded job process, or an ``o2c worker`` in scale-out) or at
once in the request when the dispatcher does not route itself: the connection is checked again (it may
have been disconnected since), the topic picks the kind of run, and the order's run is opened (or the
source's waiting run absorbs the event), with the order ledger following in the same transaction.

Each event is routed once: the first router flips ``received`` with a conditional ``UPDATE``, and any
other (a sweeper that found it, a second nudge) then finds nothing to do. The sweepers route what a lost
nudge or queue message left behind (``received_events``), so a stored delivery is never lost.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.topics import RUN_KINDS, SHOPIFY_ORDER_REF_TOPICS
from hub.inbox import RECEIVED
from hub.models import Connection, WebhookEvent, utcnow
from mappings.inputs import clean_json
from mappings.model import MappingError
from mappings.shopify import order_ref_from_webhook
from mappings.woocommerce import order_ref_from_webhook as woocommerce_order_ref
from sync import alerts, runs

if TYPE_CHECKING:
    from hub.runtime import Hub

GRACE = 10.0    # seconds a received event is left to its nudge or queue message before a sweeper routes it
# seconds of routing one transaction takes at most: under SQLite it holds the one write lock meanwhile,
# and the receivers' inbox commits wait for it
TRANSACTION_BUDGET = 0.015


def route_event(hub: Hub, event_id: int) -> int | None:
    """Open (or find) the run of a ``received`` event; returns the run to dispatch, ``None`` when there is
    none (a topic that starts no run, a connection gone, an event routed already or not syncable)."""
    return route_events(hub, [event_id]).get(event_id)


def route_events(hub: Hub, event_ids: list[int]) -> dict[int, int]:
    """``route_event`` for several events, as many in one transaction as ``TRANSACTION_BUDGET`` allows
    (fewer commits, and a SQLite write lock never held for long); returns {event id: run to dispatch}.
    Should a group fail, each event is routed on its own."""
    try:
        routed, failed = _route(hub, event_ids)
    except Exception:
        if len(event_ids) == 1:
            raise
        routed, failed = {}, []
        for event_id in event_ids:
            one, bad = _route(hub, [event_id])
            routed.update(one)
            failed += bad
    for run_id in failed:  # the webhook itself cannot be synced: the run failed at once; alert as any other
        alerts.after_run(hub, run_id, "failed")
    return routed


def _route(hub: Hub, event_ids: list[int]) -> tuple[dict[int, int], list[int]]:
    routed: dict[int, int] = {}
    failed: list[int] = []
    todo = list(reversed(event_ids))
    while todo:
        events: list[WebhookEvent] = []
        with hub.sessions() as s:
            started = time.monotonic()
            while todo and time.monotonic() - started < TRANSACTION_BUDGET:
                event_id = todo.pop()
                taken = s.execute(update(WebhookEvent).where(WebhookEvent.id == event_id,
                                                             WebhookEvent.status == RECEIVED)
                                  .values(status="ignored").execution_options(synchronize_session=False)).rowcount
                if taken != 1:
                    continue
                event = s.get(WebhookEvent, event_id)
                assert event is not None
                events.append(event)
                conn = s.get(Connection, event.connection_id) if event.connection_id is not None else None
                if conn is None or conn.status == "disconnected" or \
                        RUN_KINDS.get((event.platform, event.topic)) != "order":
                    continue
                payload = _payload(event.payload)
                if event.topic in SHOPIFY_ORDER_REF_TOPICS:  # a refund's or fulfilment's body names its order
                    payload = {"id": payload.get("order_id")}
                run_id = open_order_run(s, conn, event, payload, event.topic)
                if run_id is not None:
                    routed[event_id] = run_id
            s.commit()
            failed += [e.sync_run_id for e in events if e.status == "failed" and e.sync_run_id is not None]
    return routed, failed


def received_events(sessions: sessionmaker[Session], *, grace: float = GRACE, limit: int = 500,
                    merchant_id: int | None = None) -> list[int]:
    """Ids of events stored more than ``grace`` seconds ago and still not routed, oldest first (only
    ``merchant_id``'s when given)."""
    before = utcnow() - timedelta(seconds=grace)
    query = select(WebhookEvent.id).where(WebhookEvent.status == RECEIVED, WebhookEvent.received_at < before)
    if merchant_id is not None:
        query = query.where(WebhookEvent.merchant_id == merchant_id)
    with sessions() as s:
        return list(s.scalars(query.order_by(WebhookEvent.id).limit(limit)))


def open_order_run(s: Session, conn: Connection, event: WebhookEvent, payload: dict, topic: str) -> int | None:
    """The order run this event joins (``runs.open_run``); a body that names no usable order gets a run
    failed at once, with the reason, and ``None`` is returned. The caller commits."""
    platform = conn.platform
    try:
        if platform == "woocommerce":
            order_id, name = woocommerce_order_ref(payload)
        else:
            order_id, _gid, name, _updated = order_ref_from_webhook(payload)
    except MappingError as exc:  # keep it, and say why it cannot be synced
        run, _ = runs.open_run(s, merchant_id=conn.merchant_id, kind="order", platform=platform,
                               source_id=f"webhook-{event.id}", source_name=None, trigger=topic,
                               connection_id=conn.id)
        run.status = "failed"
        run.reason = f"mapping: the webhook cannot be synced: {exc}"
        run.error_kind = "mapping"
        event.sync_run_id = run.id
        event.status = "failed"
        return None
    run, _ = runs.open_run(s, merchant_id=conn.merchant_id, kind="order", platform=platform,
                           source_id=str(order_id), source_name=name, trigger=topic, connection_id=conn.id)
    event.sync_run_id = run.id
    event.status = "queued"
    return run.id


def _payload(text: str) -> dict[str, Any]:
    try:
        payload = clean_json(json.loads(text))
    except (ValueError, RecursionError):
        return {}
    return payload if isinstance(payload, dict) else {}
