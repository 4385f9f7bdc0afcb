"""What the hub holds of one customer of a shop (or of the whole shop), found and erased in bounded SQL.

A privacy request may name thousands of orders. Every query here reads at most ``PAGE`` rows (keyset pages
by id) or names at most ``CHUNK`` ids in an ``IN`` list, so no statement grows with the request and memory
holds one page at a time (plus the ids of what was found). The subject is found

- in the runs: by order id, by the buyer of the canonical order (also when it is wrapped as
  ``{"order": …}``), and — for a run that failed before mapping and so has no canonical order — by the
  buyer's e-mail, phone, customer id or listed order ids in its reason and its attempts' errors and excerpts;
- in the inbox: by the order id, customer id or e-mail of the payload, at its top or wrapped as
  ``{"order": …}``, and every delivery of a run found above; the runs those deliveries opened are the
  subject's too (a webhook that could not be synced opens a failed run with no order id of its own);
- in the bindings: by the buyer keys (e-mail, customer id, guest order) the pipeline binds buyers under.

Erasing anonymises the canonical orders, scrubs the buyer's names and addresses from reasons, step
messages and attempt errors, drops the attempts' excerpts (request and answer bodies), replaces inbox
payloads by their id, and re-keys the bindings (their targets stay, so nothing is created twice).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from hub.models import Binding, Connection, SyncAttempt, SyncRun, SyncStep, WebhookEvent
from hub.order_models import StoreOrder

PRIVACY_KIND = "privacy"  # the runs that carry out privacy requests (``web.compliance``): they hold none
PAGE = 500          # rows per keyset page
CHUNK = 500         # ids per IN list
REDACTED = "[redacted]"
PERSONAL = ("email", "first_name", "last_name", "company", "phone", "billing_address", "shipping_address")
ADDRESS_TEXT = ("first_name", "last_name", "name", "company", "address1", "address2", "line1", "line2", "city",
                "zip", "postal_code", "phone")
DIGITS = re.compile(r"\d{3,20}")


@dataclass
class Subject:
    """Whose data a request is about: a customer of the shop (by id, e-mail, phone, orders) or all of it."""

    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    order_ids: set[str] = field(default_factory=set)
    whole_shop: bool = False

    def names_me(self, text: str) -> bool:
        """Whether free text (a reason, an error, an excerpt) names the subject: e-mail, phone, customer id
        or one of the listed orders."""
        low = text.lower()
        if self.email and self.email in low:
            return True
        if self.phone and len(self.phone) >= 7 and self.phone in text:
            return True
        if self.customer_id and f"customer/{self.customer_id}" in low:
            return True
        return bool(self.order_ids) and any(d in self.order_ids for d in DIGITS.findall(text))


@dataclass
class Held:
    """The ids of what holds the subject's personal data, the kinds of data, and the words to scrub."""

    run_ids: list[int] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    binding_ids: list[int] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)     # the buyer's names, e-mails, phones, address lines

    def summary(self) -> dict[str, Any]:
        return {"runs": self.run_ids[:500], "inbox_events": self.event_ids[:500], "bindings": self.binding_ids[:500],
                "counts": {"runs": len(self.run_ids), "inbox_events": len(self.event_ids),
                           "bindings": len(self.binding_ids)},
                "personal_data": sorted(self.kinds)}


# -- finding -------------------------------------------------------------------------------------
def find_held(s: Session, conn: Connection, subject: Subject, *, skip_topics: Iterable[str] = (),
              exclude_event: int | None = None) -> Held:
    """The runs, inbox payloads and bindings holding the subject's personal data (``skip_topics``: inbox
    topics that never hold any, e.g. the privacy requests themselves)."""
    held = Held()
    found: set[int] = set()
    keys: set[str] = set()
    unmapped: list[int] = []           # runs with no canonical order: their texts are looked at below
    for row in _pages(s, select(SyncRun.id, SyncRun.source_id, SyncRun.canonical, SyncRun.reason,
                                SyncRun.source_name).where(*_runs_of(conn, subject)), SyncRun.id):
        customer = _customer(row.canonical)
        if subject.whole_shop or row.source_id in subject.order_ids or _same_customer(customer, subject) or \
                (row.canonical is None and subject.names_me(f"{row.reason or ''} {row.source_name or ''}")):
            _hold_run(held, found, row.id)
            _note_customer(held, customer)
            keys |= _buyer_keys(customer, row.source_id)
        elif row.canonical is None:
            unmapped.append(row.id)
    for chunk in _chunks(unmapped):
        for run_id, error, excerpt in s.execute(select(SyncAttempt.run_id, SyncAttempt.error, SyncAttempt.excerpt)
                                                .where(SyncAttempt.run_id.in_(chunk))):
            if run_id not in found and subject.names_me(f"{error or ''} {json.dumps(excerpt or {})}"):
                _hold_run(held, found, run_id)
    _find_events(s, conn, subject, held, found, skip_topics, exclude_event)   # after the runs: it links to them
    if subject.email:
        held.names.add(subject.email)
        keys.add(f"email:{subject.email}")
    if subject.phone:
        held.names.add(subject.phone)
    if subject.customer_id:
        keys.add(f"id:{subject.customer_id}")
    keys |= {f"order:shopify:{o}" for o in subject.order_ids}
    _find_bindings(s, conn, held, keys)
    return held


def _runs_of(conn: Connection, subject: Subject) -> list[Any]:
    where = [SyncRun.merchant_id == conn.merchant_id, SyncRun.source_platform == "shopify",
             SyncRun.kind != PRIVACY_KIND]
    where.append(SyncRun.connection_id == conn.id if subject.whole_shop else
                 or_(SyncRun.connection_id == conn.id, SyncRun.connection_id.is_(None)))
    return where


def _hold_run(held: Held, found: set[int], run_id: int) -> None:
    if run_id not in found:
        found.add(run_id)
        held.run_ids.append(run_id)


def _find_events(s: Session, conn: Connection, subject: Subject, held: Held, found: set[int],
                 skip_topics: Iterable[str], exclude_event: int | None) -> None:
    query = select(WebhookEvent.id, WebhookEvent.payload, WebhookEvent.sync_run_id).where(
        WebhookEvent.platform == "shopify", WebhookEvent.account == conn.account,
        WebhookEvent.topic.not_in(list(skip_topics)))
    if exclude_event is not None:
        query = query.where(WebhookEvent.id != exclude_event)
    for row in _pages(s, query, WebhookEvent.id):
        body = _json(row.payload)
        if subject.whole_shop or row.sync_run_id in found or _event_matches(body, row.payload, subject):
            held.event_ids.append(row.id)
            held.kinds.add("webhook payload")
            if isinstance(body, dict):
                _note_customer(held, _payload_customer(body))
            if row.sync_run_id is not None:  # the run this delivery opened holds it too (its excerpt, its reason)
                _hold_run(held, found, row.sync_run_id)


def _find_bindings(s: Session, conn: Connection, held: Held, keys: set[str]) -> None:
    """The buyer bindings under the subject's keys (for a whole shop: the keys of its runs' buyers, so another
    shop's buyers of the same merchant stay): exact keys by ``IN`` lists, and the keys with a currency
    (``email:…|EUR``, a customer per foreign currency) from the few bindings that have one."""
    buyers = [Binding.merchant_id == conn.merchant_id, Binding.source_platform == "hub", Binding.source_type == "buyer"]
    seen: set[int] = set()

    def hold(binding_id: int, data: dict[str, Any] | None) -> None:
        if binding_id not in seen:
            seen.add(binding_id)
            held.binding_ids.append(binding_id)
            held.names.update(str(v) for k, v in (data or {}).items() if k in ("email", "display_name") and v)

    ordered = sorted(keys)
    for start in range(0, len(ordered), CHUNK):
        for binding_id, data in s.execute(select(Binding.id, Binding.data).where(
                *buyers, Binding.source_id.in_(ordered[start:start + CHUNK])).order_by(Binding.id)):
            hold(binding_id, data)
    suffixed = select(Binding.id, Binding.source_id, Binding.data).where(
        *buyers, Binding.source_id.contains("|", autoescape=True))
    for row in _pages(s, suffixed, Binding.id):
        if row.source_id.split("|", 1)[0] in keys:
            hold(row.id, row.data)
    if held.binding_ids:
        held.kinds.add("binding")


# -- erasing -------------------------------------------------------------------------------------
def erase(s: Session, held: Held) -> None:
    """Anonymise everything ``held`` points at, a chunk at a time (the caller commits)."""
    pattern = _scrubber(held.names)

    def scrub(text: str | None) -> str | None:
        return pattern.sub(REDACTED, text) if text and pattern is not None else text

    for chunk in _chunks(held.run_ids):
        anonymised, renamed = [], []
        for run_id, canonical, reason, source_name in s.execute(
                select(SyncRun.id, SyncRun.canonical, SyncRun.reason, SyncRun.source_name)
                .where(SyncRun.id.in_(chunk))):
            if scrub(reason) != reason or scrub(source_name) != source_name:
                renamed.append(run_id)
            elif canonical:
                anonymised.append({"id": run_id, "canonical": _anonymised(canonical)})
        # a changed reason or name goes through the ORM, so the order ledger (which shows them) follows; the
        # canonical order alone in one statement: the ledger keeps no personal data from it
        _update_by_id(s, SyncRun, anonymised)
        runs = list(s.scalars(select(SyncRun).where(SyncRun.id.in_(renamed)))) if renamed else []
        for run in runs:
            run.canonical = _anonymised(run.canonical) if run.canonical else run.canonical
            run.reason, run.source_name = scrub(run.reason), scrub(run.source_name)
        s.flush()
        for run in runs:
            s.expunge(run)
        # the order ledger shows the buyer's name and e-mail: blank them on these runs' orders
        s.execute(update(StoreOrder).where(exists().where(
            SyncRun.id.in_(chunk), SyncRun.merchant_id == StoreOrder.merchant_id,
            SyncRun.source_platform == StoreOrder.platform, SyncRun.source_id == StoreOrder.order_id))
            .values(customer_name=None, customer_email=None).execution_options(synchronize_session=False))
        steps = [{"id": i, "message": REDACTED} for i, step, message in s.execute(
            select(SyncStep.id, SyncStep.step, SyncStep.message).where(SyncStep.run_id.in_(chunk),
                                                                      SyncStep.message.is_not(None)))
            if step in ("customer", "contact") or (pattern is not None and pattern.search(message))]
        _update_by_id(s, SyncStep, steps)
        attempts = [{"id": i, "error": scrub(error), "excerpt": None} for i, error, excerpt in s.execute(
            select(SyncAttempt.id, SyncAttempt.error, SyncAttempt.excerpt).where(SyncAttempt.run_id.in_(chunk)))
            if excerpt is not None or scrub(error) != error]
        _update_by_id(s, SyncAttempt, attempts)
    for chunk in _chunks(held.event_ids):
        events = [{"id": i, "payload": json.dumps({"id": _payload_id(payload), "redacted": True})}
                  for i, payload in s.execute(select(WebhookEvent.id, WebhookEvent.payload)
                                              .where(WebhookEvent.id.in_(chunk)))]
        _update_by_id(s, WebhookEvent, events)
    for chunk in _chunks(held.binding_ids):
        bindings = list(s.scalars(select(Binding).where(Binding.id.in_(chunk))))
        for binding in bindings:
            binding.source_id = f"redacted:{secrets.token_hex(8)}"
            binding.data = {**{k: v for k, v in (binding.data or {}).items() if k not in ("email", "display_name")},
                            "redacted": True}
        s.flush()
        for binding in bindings:
            s.expunge(binding)


def _update_by_id(s: Session, model: type, rows: list[dict[str, Any]]) -> None:
    if rows:
        s.execute(update(model), rows)   # one executemany, by primary key


# -- the pieces ----------------------------------------------------------------------------------
def _pages(s: Session, query: Any, key: Any) -> Iterator[Any]:
    """The rows of ``query``, ``PAGE`` at a time in ``key`` order (keyset: no OFFSET, no open cursor)."""
    last = 0
    while True:
        rows = s.execute(query.where(key > last).order_by(key).limit(PAGE)).all()
        yield from rows
        if len(rows) < PAGE:
            return
        last = rows[-1].id


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def _order_of(body: Any) -> dict[str, Any]:
    """The order in a canonical order or webhook body: the body itself, or wrapped as ``{"order": …}``."""
    if not isinstance(body, dict):
        return {}
    inner = body.get("order")
    return inner if isinstance(inner, dict) else body


def _customer(canonical: Any) -> dict[str, Any]:
    customer = _order_of(canonical).get("customer")
    return customer if isinstance(customer, dict) else {}


def _payload_customer(body: dict[str, Any]) -> dict[str, Any]:
    """The buyer's data in a webhook body, in the canonical customer's shape (to collect the words to scrub)."""
    order = _order_of(body)
    customer = dict(order.get("customer") if isinstance(order.get("customer"), dict) else {})
    for key in ("email", "contact_email", "phone"):
        if order.get(key) and not customer.get(key):
            customer["email" if key == "contact_email" else key] = order[key]
    for key in ("billing_address", "shipping_address", "default_address"):
        if isinstance(order.get(key), dict):
            customer.setdefault(key, order[key])
    return customer


def _note_customer(held: Held, customer: dict[str, Any]) -> None:
    held.kinds.update(k for k in PERSONAL if customer.get(k))
    held.names.update(str(customer[k]) for k in ("email", "first_name", "last_name", "phone", "company")
                      if customer.get(k) and isinstance(customer[k], str | int))
    for key in ("billing_address", "shipping_address", "default_address"):
        address = customer.get(key)
        if isinstance(address, dict):
            held.names.update(str(v) for k, v in address.items() if k in ADDRESS_TEXT and isinstance(v, str) and v)


def _same_customer(customer: dict[str, Any], subject: Subject) -> bool:
    email = str(customer.get("email") or "").strip().lower()
    return bool((subject.email and email == subject.email) or
                (subject.customer_id and str(customer.get("source_id") or customer.get("id") or "")
                 == subject.customer_id))


def _buyer_keys(customer: dict[str, Any], order_id: str) -> set[str]:
    keys = {f"order:shopify:{order_id}"}
    if customer.get("email"):
        keys.add("email:" + str(customer["email"]).strip().lower())
    if customer.get("source_id"):
        keys.add(f"id:{customer['source_id']}")
    return keys


def _event_matches(body: Any, raw: str, subject: Subject) -> bool:
    if not isinstance(body, dict):
        return bool(subject.email and subject.email in raw.lower())
    for layer in {id(body): body, id(_order_of(body)): _order_of(body)}.values():
        if str(layer.get("id")) in subject.order_ids or str(layer.get("order_id")) in subject.order_ids:
            return True
        customer = layer.get("customer") if isinstance(layer.get("customer"), dict) else {}
        if subject.customer_id and str(customer.get("id")) == subject.customer_id:
            return True
        emails = {str(layer.get(k) or "").strip().lower() for k in ("email", "contact_email")}
        emails.add(str(customer.get("email") or "").strip().lower())
        if subject.email and subject.email in emails:
            return True
    return False


def _anonymised(canonical: dict[str, Any]) -> dict[str, Any]:
    inner = canonical.get("order")
    if isinstance(inner, dict) and "customer" not in canonical:
        return {**canonical, "order": _anonymised(inner)}
    customer = dict(canonical.get("customer") or {})
    for key in PERSONAL:
        customer[key] = None
    customer["source_id"] = None
    return {**canonical, "customer": customer, "note": None}


def _json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _payload_id(raw: str) -> Any:
    body = _json(raw)
    return body.get("id") if isinstance(body, dict) else None


def _scrubber(names: set[str]) -> re.Pattern[str] | None:
    words = sorted({n for n in names if len(n) >= 3}, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None
