"""Shopify's app lifecycle and privacy webhooks, verified by the Shopify receiver and handled here:

- ``app/uninstalled``: the shop's connection is marked disconnected (its token erased) and its runs still
  waiting are skipped with the reason;
- ``customers/redact``: the customer's personal data the hub holds is erased or anonymised — the buyer in
  the canonical orders of runs, the step messages and attempt errors naming them, the webhook payloads
  in the inbox, the e-mails and display names in the bindings (the bound ids stay, so nothing is
  created twice);
- ``shop/redact``: the same for everything of the shop (48 h after an uninstall);
- ``customers/data_request``: recorded, with what the hub holds for that customer (ids and kinds of
  data, no personal data), and sent nowhere: the merchant answers the customer.

Each writes an audit entry. The inbox keeps each delivery once, without the customer's e-mail or phone.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Response, jsonify
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import audit
from hub.models import Binding, Connection, SyncAttempt, SyncRun, SyncStep, WebhookEvent, utcnow

if TYPE_CHECKING:
    from hub.runtime import Hub

log = logging.getLogger("o2c.compliance")

TOPICS = frozenset({"app/uninstalled", "customers/data_request", "customers/redact", "shop/redact"})
WAITING = ("pending", "retrying")
REDACTED = "[redacted]"
PERSONAL = ("email", "first_name", "last_name", "company", "phone", "billing_address", "shipping_address")


@dataclass
class Subject:
    """Whose data a request is about: a customer of the shop (by id, e-mail, phone, orders) or all of it."""

    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    order_ids: set[str] = field(default_factory=set)
    whole_shop: bool = False

    def needles(self) -> list[str]:
        found = [self.email, self.phone, *sorted(self.order_ids)]
        return [n for n in found if n and len(n) >= 3]


@dataclass
class Held:
    runs: list[SyncRun] = field(default_factory=list)
    events: list[WebhookEvent] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)     # the buyer's names and e-mails, to scrub from free text

    def summary(self) -> dict[str, Any]:
        return {"runs": [r.id for r in self.runs][:500], "inbox_events": [e.id for e in self.events][:500],
                "bindings": [b.id for b in self.bindings][:500], "personal_data": sorted(self.kinds)}


# -- the receiver's entry point ------------------------------------------------------------------
def receive(hub: Hub, *, shop: str, topic: str, delivery: str, payload: dict[str, Any]) -> tuple[Response, int]:
    """Store the (verified) delivery once and act on it in the same transaction; a failure stores nothing,
    so Shopify delivers it again."""
    named = str(payload.get("shop_domain") or payload.get("myshopify_domain") or shop).strip().lower()
    if named != shop:
        return jsonify(error="the body names another shop than X-Shopify-Shop-Domain"), 400
    now = utcnow()
    with hub.sessions() as s:
        conn = s.scalar(select(Connection).where(Connection.platform == "shopify", Connection.account == shop))
        event = WebhookEvent(platform="shopify", delivery_id=delivery[:255], topic=topic, account=shop,
                             merchant_id=conn.merchant_id if conn else None, connection_id=conn.id if conn else None,
                             payload=json.dumps(_minimal(topic, payload)), status="handled" if conn else "ignored")
        s.add(event)
        try:
            s.flush()
        except IntegrityError:
            s.rollback()
            return jsonify(status="duplicate"), 200
        if conn is None:  # a shop the hub never connected: it holds nothing about it
            s.commit()
            return jsonify(status="nothing held"), 200
        detail = HANDLERS[topic](s, conn, payload, event.id)
        audit.record(s, "shopify", ACTIONS[topic], target_type="connection", target_id=conn.id,
                     merchant_id=conn.merchant_id, detail={"shop": shop, "delivery": delivery[:100], **detail})
        s.commit()
    log.info("Shopify %s for %s handled at %s", topic, shop, now.isoformat(timespec="seconds"))
    return jsonify(status="handled", topic=topic), 200


def _minimal(topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What the inbox keeps of a lifecycle or privacy webhook: ids, never an e-mail or phone number."""
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    kept = {"shop_id": payload.get("shop_id") or payload.get("id"), "topic": topic,
            "customer_id": customer.get("id"), "orders_to_redact": payload.get("orders_to_redact"),
            "orders_requested": payload.get("orders_requested"),
            "data_request_id": (payload.get("data_request") or {}).get("id")
            if isinstance(payload.get("data_request"), dict) else None}
    return {k: v for k, v in kept.items() if v not in (None, [], "")}


def _subject(payload: dict[str, Any]) -> Subject:
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    orders = payload.get("orders_to_redact") or payload.get("orders_requested") or []
    orders = orders if isinstance(orders, list) else []
    return Subject(customer_id=str(customer["id"]) if customer.get("id") is not None else None,
                   email=str(customer.get("email") or "").strip().lower() or None,
                   phone=str(customer.get("phone") or "").strip() or None,
                   order_ids={str(o) for o in orders if isinstance(o, int | str)})


# -- handlers ----------------------------------------------------------------------------------
def uninstalled(s: Session, conn: Connection, payload: dict[str, Any], event_id: int) -> dict[str, Any]:
    """Disconnect the shop (its token is dead: erase it) and skip its waiting runs with the reason."""
    now = utcnow()
    reason = f"the O2C Hub app was uninstalled from {conn.account} ({now:%Y-%m-%d %H:%M} UTC)"
    conn.status, conn.status_reason = "disconnected", reason
    conn.secrets, conn.token_expires_at = None, None
    skipped = s.execute(update(SyncRun).where(SyncRun.connection_id == conn.id, SyncRun.status.in_(WAITING))
                        .values(status="skipped", reason=f"skipped: {reason}", error_kind=None, next_attempt_at=None,
                                lease_until=None, finished_at=now, updated_at=now)
                        .execution_options(synchronize_session=False))
    return {"runs_skipped": skipped.rowcount}


def data_request(s: Session, conn: Connection, payload: dict[str, Any], event_id: int) -> dict[str, Any]:
    """Record what the hub holds for the customer (ids and kinds only)."""
    subject = _subject(payload)
    held = find_held(s, conn, subject, exclude_event=event_id)
    request_id = payload.get("data_request", {}).get("id") if isinstance(payload.get("data_request"), dict) else None
    return {"customer_id": subject.customer_id, "data_request_id": request_id,
            "orders_requested": sorted(subject.order_ids), **held.summary()}


def customers_redact(s: Session, conn: Connection, payload: dict[str, Any], event_id: int) -> dict[str, Any]:
    subject = _subject(payload)
    held = find_held(s, conn, subject, exclude_event=event_id)
    erase(s, held)
    return {"customer_id": subject.customer_id, "orders_to_redact": sorted(subject.order_ids), **held.summary()}


def shop_redact(s: Session, conn: Connection, payload: dict[str, Any], event_id: int) -> dict[str, Any]:
    held = find_held(s, conn, Subject(whole_shop=True), exclude_event=event_id)
    erase(s, held)
    conn.status = "disconnected"
    conn.status_reason = conn.status_reason or "the shop's data was erased at Shopify's request (shop/redact)"
    conn.secrets, conn.token_expires_at = None, None
    return held.summary()


HANDLERS = {"app/uninstalled": uninstalled, "customers/data_request": data_request,
            "customers/redact": customers_redact, "shop/redact": shop_redact}
ACTIONS = {"app/uninstalled": "shopify.app_uninstalled", "customers/data_request": "shopify.customer_data_request",
           "customers/redact": "shopify.customer_redacted", "shop/redact": "shopify.shop_redacted"}


# -- finding and erasing -----------------------------------------------------------------------
def find_held(s: Session, conn: Connection, subject: Subject, *, exclude_event: int | None = None) -> Held:
    """The runs, inbox payloads and bindings holding the subject's personal data."""
    held = Held()
    runs = select(SyncRun).where(SyncRun.merchant_id == conn.merchant_id, SyncRun.source_platform == "shopify")
    runs = runs.where(SyncRun.connection_id == conn.id) if subject.whole_shop else \
        runs.where(or_(SyncRun.connection_id == conn.id, SyncRun.connection_id.is_(None)))
    buyer_keys: set[str] = set()
    for run in s.scalars(runs.order_by(SyncRun.id)):
        customer = (run.canonical or {}).get("customer") or {}
        if subject.whole_shop or run.source_id in subject.order_ids or _same_customer(customer, subject):
            held.runs.append(run)
            held.kinds.update(k for k in PERSONAL if customer.get(k))
            held.names.update(str(customer[k]) for k in ("email", "first_name", "last_name", "phone")
                              if customer.get(k))
            buyer_keys.update(_buyer_keys(customer, run.source_id))
    if subject.email:
        held.names.add(subject.email)
        buyer_keys.add(f"email:{subject.email}")
    if subject.customer_id:
        buyer_keys.add(f"id:{subject.customer_id}")
    buyer_keys.update(f"order:shopify:{o}" for o in subject.order_ids)
    events = select(WebhookEvent).where(WebhookEvent.platform == "shopify", WebhookEvent.account == conn.account,
                                        WebhookEvent.topic.not_in(TOPICS))
    if exclude_event is not None:
        events = events.where(WebhookEvent.id != exclude_event)
    needles = subject.needles() + ([subject.customer_id] if subject.customer_id else [])
    if not subject.whole_shop:
        if not needles:
            return held
        events = events.where(or_(*[WebhookEvent.payload.contains(n, autoescape=True) for n in needles]))
    for event in s.scalars(events.order_by(WebhookEvent.id)):
        if subject.whole_shop or _event_matches(event.payload, subject):
            held.events.append(event)
            held.kinds.add("webhook payload")
    if buyer_keys:
        clauses = [or_(Binding.source_id == k, Binding.source_id.startswith(k + "|", autoescape=True))
                   for k in sorted(buyer_keys)]
        for start in range(0, len(clauses), 100):
            held.bindings.extend(s.scalars(select(Binding).where(
                Binding.merchant_id == conn.merchant_id, Binding.source_platform == "hub",
                Binding.source_type == "buyer", or_(*clauses[start:start + 100])).order_by(Binding.id)))
    if held.bindings:
        held.kinds.add("binding")
        held.names.update(str(v) for b in held.bindings for k, v in (b.data or {}).items()
                          if k in ("email", "display_name") and v)
    return held


def erase(s: Session, held: Held) -> None:
    """Anonymise everything ``held`` points at (the caller commits)."""
    pattern = _scrubber(held.names)
    run_ids = [r.id for r in held.runs]
    for run in held.runs:
        if run.canonical:
            run.canonical = _anonymised(run.canonical)
        if run.reason and pattern is not None:
            run.reason = pattern.sub(REDACTED, run.reason)
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start:start + 500]
        for step in s.scalars(select(SyncStep).where(SyncStep.run_id.in_(chunk))):
            if step.message and (step.step in ("customer", "contact") or _hits(pattern, step.message)):
                step.message = REDACTED
        for attempt in s.scalars(select(SyncAttempt).where(SyncAttempt.run_id.in_(chunk))):
            attempt.error = pattern.sub(REDACTED, attempt.error) if attempt.error and pattern else attempt.error
            attempt.excerpt = None   # request and response bodies may carry names and addresses
    for event in held.events:
        event.payload = json.dumps({"id": _payload_id(event.payload), "redacted": True})
    for binding in held.bindings:
        binding.source_id = f"redacted:{secrets.token_hex(8)}"
        binding.data = {**{k: v for k, v in (binding.data or {}).items() if k not in ("email", "display_name")},
                        "redacted": True}


def _same_customer(customer: dict[str, Any], subject: Subject) -> bool:
    email = str(customer.get("email") or "").strip().lower()
    return bool((subject.email and email == subject.email) or
                (subject.customer_id and str(customer.get("source_id") or "") == subject.customer_id))


def _buyer_keys(customer: dict[str, Any], order_id: str) -> set[str]:
    keys = {f"order:shopify:{order_id}"}
    if customer.get("email"):
        keys.add("email:" + str(customer["email"]).strip().lower())
    if customer.get("source_id"):
        keys.add(f"id:{customer['source_id']}")
    return keys


def _event_matches(raw: str, subject: Subject) -> bool:
    try:
        body = json.loads(raw)
    except ValueError:
        return bool(subject.email and subject.email in raw.lower())
    if not isinstance(body, dict):
        return False
    if str(body.get("id")) in subject.order_ids or str(body.get("order_id")) in subject.order_ids:
        return True
    customer = body.get("customer") if isinstance(body.get("customer"), dict) else {}
    if subject.customer_id and str(customer.get("id")) == subject.customer_id:
        return True
    emails = {str(body.get(k) or "").strip().lower() for k in ("email", "contact_email")}
    emails.add(str(customer.get("email") or "").strip().lower())
    return bool(subject.email and subject.email in emails)


def _anonymised(canonical: dict[str, Any]) -> dict[str, Any]:
    customer = dict(canonical.get("customer") or {})
    for key in PERSONAL:
        customer[key] = None
    customer["source_id"] = None
    return {**canonical, "customer": customer, "note": None}


def _payload_id(raw: str) -> Any:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body.get("id") if isinstance(body, dict) else None


def _scrubber(names: set[str]) -> re.Pattern[str] | None:
    words = sorted({n for n in names if len(n) >= 3}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None


def _hits(pattern: re.Pattern[str] | None, text: str) -> bool:
    return bool(pattern and pattern.search(text))
