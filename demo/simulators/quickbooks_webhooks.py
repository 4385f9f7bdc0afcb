"""Intuit webhooks for the QuickBooks Online simulator: after a change to a subscribed entity the
simulator POSTs a signed notification to the app's endpoint, from a background thread.

- Payloads: the legacy ``{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [...]}}]}``
  or CloudEvents (a JSON array of at most 100 events, ``type`` like ``qbo.payment.created.v1``).
- ``intuit-signature`` = base64(HMAC-SHA256(raw body, verifier token)) (``sign_webhook``).
- Events within ``batch_window`` seconds go out in one POST (production waits 1-5 minutes).
- A delivery that fails (no 2xx, or no answer within ``timeout``) is retried after each of
  ``retry_delays`` in turn, then every last delay again, as Intuit does (10 s, 20 s, 30 s, 5 min,
  20 min, 2 h, 4 h, 6 h, then every 6 h).
- Every attempt is recorded as a ``Delivery`` in ``sim.webhook_deliveries``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

WEBHOOK_ENTITIES = ("Customer", "Item", "Invoice", "Payment", "CreditMemo", "RefundReceipt", "SalesReceipt")
OPERATIONS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided",
              "Merge": "merged", "Emailed": "emailed"}
INTUIT_RETRY_DELAYS = (10.0, 20.0, 30.0, 300.0, 1200.0, 7200.0, 14400.0, 21600.0)
CLOUDEVENTS_MAX = 100
CLOUDEVENTS_SOURCE = "//quickbooks.api.intuit.com"


def sign_webhook(body: bytes, verifier_token: str) -> str:
    """The ``intuit-signature`` header of ``body``: base64(HMAC-SHA256(body, verifier token))."""
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass
class Event:
    realm_id: str
    name: str                  # entity, e.g. "Invoice"
    id: str
    operation: str             # Create | Update | Delete | Void | Merge | Emailed
    last_updated: str
    deleted_id: str | None = None      # Merge: the object merged away


@dataclass
class Delivery:
    """One attempt to deliver one notification."""

    body: bytes
    attempt: int               # 1 for the first try of a notification, 2 for its first retry, ...
    status: int | None         # the receiver's HTTP status; None: no answer, or dropped
    error: str | None = None
    dropped: bool = False      # lost on purpose (drop_next_webhooks): never sent, never retried
    duplicate: bool = False    # sent again by redeliver_last
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class _Notification:
    body: bytes
    due: float
    attempts: int = 0
    duplicate: bool = False


def legacy_body(events: Sequence[Event]) -> bytes:
    realms: dict[str, list[dict]] = {}
    for e in events:
        entity = {"name": e.name, "id": e.id, "operation": e.operation, "lastUpdated": e.last_updated}
        if e.deleted_id is not None:
            entity["deletedId"] = e.deleted_id
        realms.setdefault(e.realm_id, []).append(entity)
    return json.dumps({"eventNotifications": [
        {"realmId": realm, "dataChangeEvent": {"entities": entities}} for realm, entities in realms.items()
    ]}).encode()


def cloudevents_bodies(events: Sequence[Event]) -> list[bytes]:
    out = []
    for start in range(0, len(events), CLOUDEVENTS_MAX):
        batch = []
        for e in events[start:start + CLOUDEVENTS_MAX]:
            data = {"deletedId": e.deleted_id} if e.deleted_id is not None else {}
            batch.append({"specversion": "1.0", "id": str(uuid.uuid4()), "source": CLOUDEVENTS_SOURCE,
                          "type": f"qbo.{e.name.lower()}.{OPERATIONS[e.operation]}.v1",
                          "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                          "intuitentityid": e.id, "intuitaccountid": e.realm_id,
                          "datacontenttype": "application/json", "data": data})
        out.append(json.dumps(batch).encode())
    return out


class WebhookSender:
    """The outbox of one webhook endpoint and the thread that empties it."""

    def __init__(self, url: str, verifier_token: str, deliveries: list[Delivery], *, format: str = "legacy",
                 batch_window: float = 0.0, retry_delays: Sequence[float] = INTUIT_RETRY_DELAYS,
                 timeout: float = 3.0) -> None:
        if format not in ("legacy", "cloudevents"):
            raise ValueError("format must be 'legacy' or 'cloudevents'")
        if not retry_delays:
            raise ValueError("retry_delays needs at least one delay")
        self.url, self.verifier_token, self.format = url, verifier_token, format
        self.batch_window, self.retry_delays, self.timeout = batch_window, tuple(retry_delays), timeout
        self.deliveries = deliveries
        self.last_delivered: bytes | None = None
        self._cond = threading.Condition()
        self._events: list[tuple[float, list[Event]]] = []     # (arrival, the events of one change)
        self._queue: list[_Notification] = []
        self._sending = 0
        self._paused = False
        self._drop = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sim-quickbooks-webhooks", daemon=True)
        self._thread.start()

    # -- controls ------------------------------------------------------------------------------
    def add(self, events: Iterable[Event]) -> None:
        events = list(events)
        if not events:
            return
        with self._cond:
            self._events.append((time.monotonic(), events))
            self._cond.notify_all()

    def pause(self, paused: bool = True) -> None:
        with self._cond:
            self._paused = paused
            self._cond.notify_all()

    def drop_next(self, count: int) -> None:
        with self._cond:
            self._drop += count

    def redeliver_last(self) -> bytes:
        with self._cond:
            if self.last_delivered is None:
                raise LookupError("no notification has been delivered yet")
            self._queue.append(_Notification(self.last_delivered, time.monotonic(), duplicate=True))
            self._cond.notify_all()
            return self.last_delivered

    def wait(self, timeout: float) -> bool:
        """Block until nothing is waiting, queued, being sent or due for a retry; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._events or self._queue or self._sending), timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(self.timeout + 5)

    # -- the delivery thread -------------------------------------------------------------------
    def _take(self) -> _Notification | None:
        """The next notification due, once it is due; None when closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                wake = None
                if not self._paused:
                    if self._events:
                        flush_at = self._events[0][0] + self.batch_window
                        if now >= flush_at:
                            self._flush(now)
                            continue
                        wake = flush_at
                    due = [n for n in self._queue if n.due <= now]
                    if due:
                        self._queue.remove(due[0])
                        if self._drop > 0 and not due[0].duplicate:
                            self._drop -= 1
                            self.deliveries.append(Delivery(due[0].body, 1, None, "dropped", dropped=True))
                            self._cond.notify_all()
                            continue
                        self._sending += 1
                        return due[0]
                    retry_at = min((n.due for n in self._queue), default=None)
                    if retry_at is not None:
                        wake = retry_at if wake is None else min(wake, retry_at)
                self._cond.wait(None if wake is None else max(0.0, wake - now))
            return None

    def _flush(self, now: float) -> None:
        """One notification (CloudEvents: up to 100 events each) for the events that arrived within
        ``batch_window`` of the oldest one; with no window, for the events of one change."""
        closes = self._events[0][0] + self.batch_window
        count = 1 if self.batch_window <= 0 else sum(1 for at, _ in self._events if at <= closes)
        events = [e for _, group in self._events[:count] for e in group]
        del self._events[:count]
        bodies = [legacy_body(events)] if self.format == "legacy" else cloudevents_bodies(events)
        self._queue.extend(_Notification(body, now) for body in bodies)

    def _run(self) -> None:
        while (note := self._take()) is not None:
            status, error = None, None
            try:
                response = requests.post(self.url, data=note.body, timeout=self.timeout, headers={
                    "Content-Type": "application/json",
                    "intuit-signature": sign_webhook(note.body, self.verifier_token),
                    "User-Agent": "intuit-webhooks-sim"})
                status = response.status_code
                response.close()
            except Exception as exc:    # recorded below as a failed attempt, and retried
                error = f"{type(exc).__name__}: {exc}"
            with self._cond:
                note.attempts += 1
                delivery = Delivery(note.body, note.attempts, status, error, duplicate=note.duplicate)
                self.deliveries.append(delivery)
                if delivery.ok:
                    self.last_delivered = note.body
                elif not self._closed:
                    delay = self.retry_delays[min(note.attempts - 1, len(self.retry_delays) - 1)]
                    note.due = time.monotonic() + delay
                    self._queue.append(note)
                self._sending -= 1
                self._cond.notify_all()


class WebhookControls:
    """Test controls of the simulator's webhooks (mixed into ``QuickBooksSimulator``)."""

    webhook_deliveries: list[Delivery]
    _webhooks: WebhookSender | None
    _webhook_entities: frozenset[str]

    def set_webhook(self, url: str, verifier_token: str, *, format: str = "legacy", batch_window: float = 0.0,
                    retry_delays: Sequence[float] = INTUIT_RETRY_DELAYS, timeout: float = 3.0,
                    entities: Iterable[str] = WEBHOOK_ENTITIES) -> None:
        """Send notifications of changes to ``entities`` (all realms) to ``url`` from now on."""
        self.clear_webhook()
        unknown = set(entities) - set(WEBHOOK_ENTITIES)
        if unknown:
            raise ValueError(f"no webhooks for {sorted(unknown)}")
        self._webhook_entities = frozenset(entities)
        self._webhooks = WebhookSender(url, verifier_token, self.webhook_deliveries, format=format,
                                       batch_window=batch_window, retry_delays=retry_delays, timeout=timeout)

    def clear_webhook(self) -> None:
        """Stop sending notifications (what is still queued is lost) and stop the delivery thread."""
        sender, self._webhooks = getattr(self, "_webhooks", None), None
        if sender is not None:
            sender.close()

    def pause_webhooks(self) -> None:
        self._sender().pause(True)

    def resume_webhooks(self) -> None:
        self._sender().pause(False)

    def drop_next_webhooks(self, count: int = 1) -> None:
        """Lose the next ``count`` notifications (POSTs) silently: never sent, never retried."""
        self._sender().drop_next(count)

    def wait_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until the outbox is empty (nothing batched, queued, in flight or waiting for a retry)."""
        return self._sender().wait(timeout)

    def redeliver_last(self) -> bytes:
        """Send the last successfully delivered notification again, as it was (a duplicate)."""
        return self._sender().redeliver_last()

    def _sender(self) -> WebhookSender:
        if self._webhooks is None:
            raise RuntimeError("no webhook endpoint: call set_webhook first")
        return self._webhooks

    def _notify(self, events: Iterable[Event]) -> None:
        sender = self._webhooks
        if sender is not None:
            sender.add(e for e in events if e.name in self._webhook_entities)
