"""The answer to Shopify's app lifecycle and privacy webhooks (``app/uninstalled``, ``customers/data_request``,
``customers/redact``, ``shop/redact``): the delivery is stored once and handed to ``sync.compliance``, which
acts on it (an erasure is queued as a run of kind ``privacy``)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from flask import Response, jsonify
from sqlalchemy import select

from hub import audit
from hub.inbox import store_delivery
from hub.models import Connection, utcnow
from sync import compliance

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.compliance")

TOPICS = compliance.TOPICS


def receive(hub: Hub, *, shop: str, topic: str, delivery: str, payload: dict[str, Any]) -> tuple[Response, int]:
    """Store the (verified) delivery once and act on it in the same transaction; a failure stores nothing,
    so Shopify delivers it again. An erasure (``customers/redact``, ``shop/redact``) is only queued here, as a
    run of kind ``privacy``: it may name thousands of orders, and Shopify waits 5 s for the answer."""
    named = str(payload.get("shop_domain") or payload.get("myshopify_domain") or shop).strip().lower()
    if named != shop:
        return jsonify(error="the body names another shop than X-Shopify-Shop-Domain"), 400
    now = utcnow()
    run_id = None
    with hub.sessions() as s:
        conn = s.scalar(select(Connection).where(Connection.platform == "shopify", Connection.account == shop))
        event = store_delivery(s, platform="shopify", delivery_id=delivery, topic=topic, account=shop,
                               merchant_id=conn.merchant_id if conn else None,
                               connection_id=conn.id if conn else None,
                               payload=json.dumps(compliance.minimal(topic, payload)),
                               status="handled" if conn else "ignored")
        if event is None:
            return jsonify(status="duplicate"), 200
        if conn is None:  # a shop the hub never connected: it holds nothing about it
            s.commit()
            return jsonify(status="nothing held"), 200
        if topic in compliance.ERASURES:
            run_id = compliance.queue_erasure(hub, s, conn, event, topic, payload)
        else:
            detail = compliance.HANDLERS[topic](s, conn, payload, event.id)
            audit.record(s, "shopify", compliance.ACTIONS[topic], target_type="connection", target_id=conn.id,
                         merchant_id=conn.merchant_id, detail={"shop": shop, "delivery": delivery[:100], **detail})
        s.commit()
    log.info("Shopify %s for %s received at %s", topic, shop, now.isoformat(timespec="seconds"))
    if run_id is None:
        return jsonify(status="handled", topic=topic), 200
    try:
        hub.dispatcher.dispatch(run_id)
    except Exception:  # noqa: BLE001 - stored is what counts: the sweeper dispatches it later
        log.exception("dispatch of privacy run %s failed; the sweeper will pick it up", run_id)
    return jsonify(status="accepted", topic=topic, run=run_id), 200
