"""Webhook receivers: verify the signature over the raw body, bound the size, store the event in the
inbox, dispatch, answer fast. Nothing is stored for a request that fails a check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from connectors.topics import QUICKBOOKS_RUN_KINDS, RUN_KINDS
from hub import audit
from hub.inbox import Delivery, store_delivery
from hub.models import Connection
from hub.runtime import EventRouter
from mappings.inputs import InvalidInput, clean_json, clean_text
from mappings.model import MappingError
from mappings.quickbooks_events import parse_notifications
from sync import alerts, routing, runs
from web import compliance
from web.request_framing import BODY_DEADLINE, MAX_BODY, ReadDeadline

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("o2c.webhooks")


def hmac_sha256_base64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_matches(body: bytes, signature: str | None, secrets: list[str]) -> bool:
    """Constant-time check of a base64 HMAC-SHA256 signature against any of the current secrets."""
    if not signature:
        return False
    given = signature.strip().encode()
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(hmac_sha256_base64(secret, body).encode(), given)
    return ok


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


class _TooSlow(Exception):
    """The body did not arrive whole within ``BODY_DEADLINE`` seconds: answered 408, nothing stored."""


def _raw_body() -> bytes:
    """The request body, bounded before anything looks at it: over ``MAX_BODY`` bytes (announced, or counted as
    a chunked body arrives) is 413, not whole within ``BODY_DEADLINE`` seconds in total is 408.

    Read from the server's input itself, not Flask's ``request.stream``: that stream stops quietly at
    ``MAX_CONTENT_LENGTH``, so a larger chunked body came out cut to 1 MiB and failed its signature (401).
    Under gunicorn the worker has read the request whole already (``web.gunicorn_worker``) and nothing waits
    here; under werkzeug (``o2c serve --dev``) the deadline below is what frees the thread of a client that
    stalls or drips its body."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise RequestEntityTooLarge()
    environ = request.environ
    if length is None and not environ.get("wsgi.input_terminated"):
        return b""  # no length and a server that does not end the stream: there is no body to read safely
    stream = environ["wsgi.input"]
    wanted = MAX_BODY + 1 if length is None else length
    parts: list[bytes] = []
    got = 0
    with ReadDeadline(environ.get("werkzeug.socket") or environ.get("gunicorn.socket"), BODY_DEADLINE) as deadline:
        try:
            while got < wanted and not deadline.passed:
                part = stream.read(min(64 * 1024, wanted - got))
                if not part:
                    break
                parts.append(part)
                got += len(part)
        except (OSError, ValueError) as exc:  # a timeout, a broken chunked framing, a dropped connection
            if deadline.passed or isinstance(exc, TimeoutError):
                raise _TooSlow() from None
            raise _NotJson("the body could not be read") from exc
    if got > MAX_BODY:
        raise RequestEntityTooLarge()
    if got < wanted and deadline.passed:
        raise _TooSlow()
    if length is not None and got < length:
        raise _NotJson("the body ended before its Content-Length")
    return b"".join(parts)


class _NotJson(ValueError):
    """The body is not the JSON the route takes: answered 400 with this message, nothing stored."""


def _json_body(body: bytes) -> object:
    """The decoded body, every string in it storable (a lone surrogate such as ``"\\ud800"`` becomes U+FFFD,
    NULs go): whatever the routes and ``web.compliance`` take from it can reach the database."""
    try:
        return clean_json(json.loads(body))
    except (ValueError, RecursionError):
        raise _NotJson("body is not JSON") from None


def _header(name: str) -> str:
    """A header's value, stripped and storable."""
    return clean_text(request.headers.get(name) or "").strip()


def _json_object(body: bytes, *, clean: bool = True) -> dict:
    """The body as a JSON object (``clean=False``: only checked, its strings as they came)."""
    if clean:
        payload = _json_body(body)
    else:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise _NotJson("body is not JSON") from None
    if not isinstance(payload, dict):
        raise _NotJson("body is not a JSON object")
    return payload


@bp.errorhandler(_NotJson)
def _not_json(exc: _NotJson) -> tuple[Response, int]:
    return _error(400, str(exc))


@bp.errorhandler(InvalidInput)
def _invalid_input(exc: InvalidInput) -> tuple[Response, int]:
    return _error(400, str(exc))


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> tuple[Response, int]:
    response, status = _error(413, f"body larger than {MAX_BODY} bytes")
    response.headers["Connection"] = "close"
    return response, status


@bp.errorhandler(_TooSlow)
def _too_slow(_exc: _TooSlow) -> tuple[Response, int]:
    response, status = _error(408, f"request not received whole within {BODY_DEADLINE:g} s")
    response.headers["Connection"] = "close"
    return response, status


@bp.post("/webhooks/shopify")
def shopify() -> tuple[Response, int]:
    """Verify, store, hand over: the order's run is opened by whoever routes the stored event
    (``sync.routing``: a job, or at once here when the dispatcher does not route events itself)."""
    hub = current_app.extensions["o2c"]
    body = _raw_body()
    st = hub.settings
    secrets = [s for s in (st.shopify_api_secret, st.shopify_api_secret_previous) if s]
    if not secrets:
        log.error("SHOPIFY_API_SECRET is not set: Shopify webhooks cannot be verified and are refused")
    if not signature_matches(body, request.headers.get("X-Shopify-Hmac-Sha256"), secrets):
        return _error(401, "invalid or missing X-Shopify-Hmac-Sha256 signature")
    payload = _json_object(body, clean=False)
    shop = _header("X-Shopify-Shop-Domain").lower()
    topic = _header("X-Shopify-Topic").lower()
    delivery = _header("X-Shopify-Webhook-Id") or \
        "sha256:" + hashlib.sha256(topic.encode() + b"\0" + shop.encode() + b"\0" + body).hexdigest()
    if topic in compliance.TOPICS:  # uninstall and privacy requests: web/compliance.py (any connection status)
        return compliance.receive(hub, shop=shop, topic=topic, delivery=delivery, payload=clean_json(payload))
    event_id = hub.inbox.insert(Delivery(platform="shopify", delivery_id=delivery, topic=topic, account=shop,
                                         payload=body.decode("utf-8", "replace")))
    if event_id is None:
        if hub.inbox.known("shopify", shop):
            return jsonify(status="duplicate"), 200
        return _error(404, f"unknown shop {shop or '(no X-Shopify-Shop-Domain)'}")
    dispatcher = hub.dispatcher
    if isinstance(dispatcher, EventRouter):  # a job routes it: nothing more to do here
        try:
            dispatcher.route_event(event_id)
        except Exception:  # noqa: BLE001 - stored is what counts: the sweeper routes it later
            log.exception("hand-over of inbox event %s failed; the sweeper will pick it up", event_id)
        return jsonify(status="accepted", event=event_id), 200
    return _accepted(hub, routing.route_event(hub, event_id))


_PING = re.compile(rb"^webhook_id=[0-9]{1,20}$")


@bp.post("/webhooks/woocommerce/<int:connection_id>")
def woocommerce(connection_id: int) -> tuple[Response, int]:
    """A WooCommerce store's webhook, signed with the secret of connection ``connection_id``."""
    hub = current_app.extensions["o2c"]
    body = _raw_body()
    with hub.sessions() as s:
        conn = s.get(Connection, connection_id)
        if conn is None or conn.platform != "woocommerce" or conn.status == "disconnected":
            return _error(404, f"unknown WooCommerce connection {connection_id}")
        signature = request.headers.get("X-WC-Webhook-Signature")
        if not signature and _PING.match(body.strip()):
            # WooCommerce's unsigned ping when a webhook is created: it must get a 200, and causes no work
            return jsonify(status="pong"), 200
        secret = hub.secrets.decrypt(conn.secrets).get("webhook_secret") or ""
        if not signature_matches(body, signature, [secret] if secret else []):
            return _error(401, "invalid or missing X-WC-Webhook-Signature signature")
        payload = _json_object(body)
        topic = _header("X-WC-Webhook-Topic").lower()
        # WooCommerce's delivery id is a hash of the webhook id and the current second, so two different
        # events can share it: a delivery is the same only if its body is the same too
        delivery = _header("X-WC-Webhook-Delivery-ID")[:100]
        digest = hashlib.sha256(topic.encode() + b"\0" + body).hexdigest()
        event = store_delivery(s, platform="woocommerce", delivery_id=f"{conn.id}:{delivery}:{digest}", topic=topic,
                               account=conn.account, merchant_id=conn.merchant_id, connection_id=conn.id,
                               payload=body.decode("utf-8", "replace"))
        if event is None:
            return jsonify(status="duplicate"), 200
        run_id = None
        if RUN_KINDS.get(("woocommerce", topic)) == "order":
            run_id = routing.open_order_run(s, conn, event, payload, topic)
        s.commit()
        failed_run = event.sync_run_id if event.status == "failed" else None
    return _accepted(hub, run_id, failed_run)


@bp.post("/webhooks/quickbooks")
def quickbooks() -> tuple[Response, int]:
    """Intuit's notifications (classic or CloudEvents): verified, stored, answered at once; the worker
    fetches the changed entities afterwards."""
    hub = current_app.extensions["o2c"]
    body = _raw_body()
    token = hub.settings.quickbooks_webhook_verifier_token
    if not token:
        log.error("QUICKBOOKS_WEBHOOK_VERIFIER_TOKEN is not set: QuickBooks notifications cannot be verified")
    if not signature_matches(body, request.headers.get("intuit-signature"), [token] if token else []):
        return _error(401, "invalid or missing intuit-signature")
    payload = _json_body(body)
    try:
        changes = parse_notifications(payload)
    except MappingError as exc:
        return _error(400, str(exc))
    digest = hashlib.sha256(body).hexdigest()
    run_ids: list[int] = []
    by_realm: dict[str, list] = {}
    for change in changes:
        by_realm.setdefault(change.realm_id, []).append(change)
    for realm, realm_changes in by_realm.items():
        with hub.sessions() as s:
            conn = s.scalar(select(Connection).where(Connection.platform == "quickbooks", Connection.account == realm,
                                                     Connection.status != "disconnected"))
            if conn is None:
                _unknown_realm(s, realm, realm_changes, delivery=f"{digest}:{realm}"[:255],
                               payload=body.decode("utf-8", "replace"))
                continue
            event = store_delivery(s, platform="quickbooks", delivery_id=f"{digest}:{realm}",
                                   topic=",".join(sorted({c.entity for c in realm_changes})), account=realm,
                                   merchant_id=conn.merchant_id, connection_id=conn.id,
                                   payload=body.decode("utf-8", "replace"))
            if event is None:  # Intuit re-sent the same notification
                continue
            for change in realm_changes:
                kind = QUICKBOOKS_RUN_KINDS.get(change.entity)
                if kind is None:
                    continue
                run, new = runs.open_run(s, merchant_id=conn.merchant_id, kind=kind, platform="quickbooks",
                                         source_id=change.id, source_name=f"{change.entity} {change.id}",
                                         trigger=f"quickbooks:{change.operation.lower()}")
                run.connection_id = conn.id
                event.sync_run_id = run.id
                event.status = "queued"
                if new:
                    run_ids.append(run.id)
            s.commit()
    for run_id in run_ids:
        _accepted(hub, run_id)
    return jsonify(status="accepted", runs=run_ids), 200


UNKNOWN_REALM = "unknown_realm"


def _unknown_realm(s, realm: str, changes: list, *, delivery: str, payload: str) -> None:  # noqa: ANN001
    """A verified notification for a company no merchant has connected (a stale subscription, a company
    disconnected, a realm typed wrong at connect): kept in the inbox as ``unknown_realm`` and written to the
    audit log, where support sees it; once per delivery, however often Intuit re-sends it."""
    event = store_delivery(s, platform="quickbooks", delivery_id=delivery,
                           topic=",".join(sorted({c.entity for c in changes})), account=realm, payload=payload,
                           status=UNKNOWN_REALM)
    if event is None:  # the same notification again: recorded already
        return
    audit.record(s, "quickbooks", "webhook.unknown_realm", target_type="quickbooks_company", target_id=realm,
                 detail={"inbox_event": event.id, "changes": len(changes),
                         "entities": sorted({f"{c.entity} {c.id}" for c in changes})[:20]})
    s.commit()
    log.warning("QuickBooks notification for unknown company %s recorded (inbox event %s)", realm, event.id)


def _accepted(hub, run_id: int | None, failed_run: int | None = None) -> tuple[Response, int]:  # noqa: ANN001
    if failed_run is not None:  # the webhook itself cannot be synced: the run failed at once; alert as any other
        alerts.after_run(hub, failed_run, "failed")
    if run_id is not None:
        try:
            hub.dispatcher.dispatch(run_id)
        except Exception:  # noqa: BLE001 - stored is what counts: the sweeper dispatches it later
            log.exception("dispatch of run %s failed; the sweeper will pick it up", run_id)
    return jsonify(status="accepted", run=run_id), 200
