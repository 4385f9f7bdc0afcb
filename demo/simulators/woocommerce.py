"""A strict fake of the WooCommerce REST API (wc/v3), its webhooks and its app key exchange.

Several stores live in one simulator, each under ``{sim.url}/stores/<name>`` (``sim.store_url(name)``),
with the API at ``{store_url}/wp-json/wc/v3/…`` and key exchange at ``{store_url}/wc-auth/v1/…``.

Served: ``GET /orders`` (``page``, ``per_page`` 1–100, ``offset``, ``after``/``before``/``modified_after``/
``modified_before`` strict, site time unless ``dates_are_gmt``, ``status`` list or ``any`` (excludes
trash), ``include``, ``exclude``, ``customer``, ``search``, ``orderby`` date|id|include|modified, ``order``,
``dp``; headers ``X-WP-Total``, ``X-WP-TotalPages``, ``Link`` rel next/prev built like WordPress from the
raw query, OAuth parameters included), ``GET|PUT|POST|PATCH|DELETE /orders/{id}`` (GET 404 / update 400
``woocommerce_rest_shop_order_invalid_id``; status checked against the order statuses; ``set_paid`` only
acts on pending/failed orders; ``refunded`` creates the remaining refund; DELETE trashes unless
``force``), ``GET|POST /orders/{id}/notes``, ``GET /orders/{id}/refunds``, ``GET|POST /webhooks``,
``GET|PUT|POST|PATCH|DELETE /webhooks/{id}`` (DELETE needs ``force=true``, else 501). Other routes →
404 ``rest_no_route``. JSON is encoded as PHP does (``\\/``, ``\\uXXXX``).

Checked as ``class-wc-rest-authentication.php`` does: one-legged OAuth 1.0a in the query string or an
``Authorization: OAuth`` header (HMAC-SHA1/256 over WooCommerce's doubly encoded base string, key =
secret + "&", base URL = the store's home URL + path, timestamp within 15 min, nonce unused in the key's
15-min window, stored per timestamp as WooCommerce does), then the key's read/write permission. With
``basic_auth_over_http`` (default on; WooCommerce only does this over HTTPS) Basic auth and
``consumer_key``/``consumer_secret`` query parameters are accepted too. Parameter errors (400) come before
the "not logged in" errors (401 ``woocommerce_rest_cannot_view|edit|create|delete``), as in WordPress.

Webhooks (``class-wc-webhook.php``): an unsigned ``webhook_id=<id>`` ping on creation (result kept, the
webhook is created anyway); deliveries signed with base64 HMAC-SHA256 of the raw body; ``X-WC-Webhook-
Delivery-ID`` is ``wp_hash(id . unix_seconds)`` so two deliveries of one webhook in the same second share
it; success is 200–302; a failure while the failure count is already above 5 disables the webhook (so the
7th consecutive failure), no retries; re-activating keeps the count. ``order.deleted`` fires on trashing
only (a forced delete sends nothing) with ``{"id": N}``. Deliveries are synchronous (payload built at the
event) unless ``async_webhooks``: then they queue, coalesce per (webhook, order) and are built when
``run_webhook_queue()`` runs them, as Action Scheduler does. ``safe_remote`` mimics
``wp_safe_remote_post`` (private hosts only if same host as the store, ports 80/443/8080 or the store's).

Key exchange: ``GET /wc-auth/v1/authorize?app_name&scope&user_id&return_url&callback_url`` shows an
approve page (or approves at once with ``auto_approve``); ``sim.approve_auth`` does what the merchant's
click does: new key, JSON POST to callback_url (needs exactly 200, else the key is deleted and a 401
page says why), redirect to ``return_url?success=1&user_id=…``. The real store refuses a callback_url that
is not https; ``require_https_callback`` (off by default for tests on 127.0.0.1) restores that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from ipaddress import ip_address
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import requests
from flask import Response, request

from demo.simulators.base import SimulatedPlatform
from demo.simulators.woocommerce_orders import (
    STATUS_NAMES,
    STATUSES,
    TAX_PROFILES,
    WC_VERSION,
    Note,
    Refund,
    TaxRate,
    WooOrder,
    build_order,
    cents,
    d,
    render_order,
    render_refund,
    wc_date,
)
from demo.simulators.woocommerce_payments import WooPaymentsControls

USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/6.5.3)"
TOPIC_HOOKS = {"order.created": ["woocommerce_new_order"],
               "order.updated": ["woocommerce_update_order", "woocommerce_order_refunded"],
               "order.deleted": ["wp_trash_post"], "order.restored": ["untrashed_post"]}
WEBHOOK_STATUSES = ("active", "paused", "disabled")
NONCE_WINDOW = 15 * 60
AUTH_ERROR = "woocommerce_rest_authentication_error"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:[Zz]|[+-]\d{2}(?::\d{2})?)?$")


def php_json(value: Any) -> bytes:
    """``wp_json_encode`` output: compact, ASCII-only, slashes escaped."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def sign(body: bytes | str, secret: str) -> str:
    """``X-WC-Webhook-Signature`` of a raw body."""
    raw = body.encode() if isinstance(body, str) else body
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def rfc3986(value: Any) -> str:
    """``wc_rest_urlencode_rfc3986`` (PHP ``rawurlencode``)."""
    return quote(str(value), safe="~")


def php_query(raw: str) -> dict[str, Any]:
    """A query string as PHP fills ``$_GET``: last value wins, ``a[]``/``a[k]`` nest, ``.``/space → ``_``."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        m = re.match(r"^([^\[]+)((?:\[[^\]]*\])+)$", key)
        base, subs = (m.group(1), re.findall(r"\[([^\]]*)\]", m.group(2))) if m else (key, [])
        base = re.sub(r"[ .]", "_", base.lstrip(" "))
        if not subs:
            out[base] = value
            continue
        node = out[base] = out[base] if isinstance(out.get(base), dict) else {}
        for i, sub in enumerate(subs):
            sub = sub or str(sum(1 for k in node if k.isdigit()))
            if i == len(subs) - 1:
                node[sub] = value
            else:
                child = node[sub] if isinstance(node.get(sub), dict) else {}
                node[sub] = child
                node = child
    return out


def _join(key: str, value: Any) -> list[str]:
    if isinstance(value, dict):
        return [part for k, v in value.items() for part in _join(f"{key}%5B{k}%5D", v)]
    return [rfc3986(f"{key}={rfc3986(value)}")]


def oauth_signature(method: str, base_url: str, params: dict[str, Any], secret: str, algorithm: str) -> str:
    """The signature WooCommerce expects for these parameters (``oauth_signature`` itself is ignored)."""
    rest = {k: v for k, v in params.items() if k != "oauth_signature"}
    parts = [p for k in sorted(rest, key=lambda k: k.encode()) for p in _join(rfc3986(k), rest[k])]
    base = f"{method.upper()}&{rfc3986(base_url)}&{'%26'.join(parts)}"
    digest = hashlib.sha1 if algorithm == "HMAC-SHA1" else hashlib.sha256
    return base64.b64encode(hmac.new(f"{secret}&".encode(), base.encode(), digest).digest()).decode()


class AuthorizationError(Exception):
    """The key exchange failed (the message is what the store's error page says)."""


class WPError(Exception):
    """A WordPress REST error: ``{"code", "message", "data": {"status", …}}``."""

    def __init__(self, code: str, message: str, status: int, **data: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message, "data": {"status": status, **data}}


def _wp_list(words: list[str]) -> str:
    """``wp_sprintf('%l')``: "a and b", "a, b, and c"."""
    return " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + ", and " + words[-1]


class _Params:
    """Request parameters checked the way ``rest_validate_value_from_schema`` checks them; every
    problem is collected and ``check()`` raises one ``rest_invalid_param``."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw, self.errors = raw, {}

    def fail(self, name: str, code: str, message: str) -> None:
        self.errors.setdefault(name, (code, message))

    def check(self) -> None:
        if self.errors:
            e = self.errors
            raise WPError("rest_invalid_param", f"Invalid parameter(s): {', '.join(e)}", 400,
                          params={k: m for k, (_, m) in e.items()},
                          details={k: {"code": c, "message": m, "data": None} for k, (c, m) in e.items()})

    def int(self, name: str, default: Any, minimum: int | None = None, maximum: int | None = None) -> Any:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value)):
            self.fail(name, "rest_invalid_type", f"{name} is not of type integer.")
            return default
        n = int(value)
        if maximum is not None and not minimum <= n <= maximum:
            self.fail(name, "rest_out_of_bounds", f"{name} must be between {minimum} (inclusive) and {maximum} "
                                                  "(inclusive)")
        elif minimum is not None and n < minimum:
            self.fail(name, "rest_out_of_bounds", f"{name} must be greater than or equal to {minimum}")
        return n

    def enum(self, name: str, choices: tuple[str, ...], default: Any) -> Any:
        value = self.raw.get(name)
        if value is None:
            return default
        if value not in choices:
            self.fail(name, "rest_not_in_enum", f"{name} is not one of {_wp_list(list(choices))}.")
            return default
        return value

    def enum_list(self, name: str, choices: tuple[str, ...], default: list[str]) -> list[str]:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        items = list(value.values()) if isinstance(value, dict) else [
            v.strip() for v in re.split(r"[\s,]+", str(value)) if v.strip()]
        for i, item in enumerate(items):
            if item not in choices:
                self.fail(name, "rest_not_in_enum", f"{name}[{i}] is not one of {_wp_list(list(choices))}.")
        return items

    def ids(self, name: str) -> list[int]:
        value = self.raw.get(name) or []
        items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [
            v for v in re.split(r"[\s,]+", str(value)) if v]
        if not all(re.fullmatch(r"\d+", str(v)) for v in items):
            self.fail(name, "rest_invalid_type", f"{name}[0] is not of type integer.")
            return []
        return [int(v) for v in items]

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if str(value).lower() not in ("true", "false", "1", "0") or isinstance(value, float):
            self.fail(name, "rest_invalid_type", f"{name} is not of type boolean.")
            return default
        return str(value).lower() in ("true", "1")

    def date(self, name: str) -> datetime | None:
        value = self.raw.get(name)
        if value is None:
            return None
        text = str(value)
        if not _DATE.match(text):
            self.fail(name, "rest_invalid_date", "Invalid date.")
            return None
        return datetime.fromisoformat(text.replace(",", ".").replace(" ", "T").replace("t", "T").replace("z", "Z"))


def _flat(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    out = []
    for k, v in items:
        out += _flat([(f"{k}%5B{sub}%5D", x) for sub, x in v.items()]) if isinstance(v, dict) else [(k, v)]
    return out


def _valid_topic(topic: str) -> bool:
    """``wc_is_webhook_valid_topic``."""
    if topic.startswith("action."):
        return topic[7:].startswith(("woocommerce_", "wc_"))
    resource, _, event = topic.partition(".")
    return resource in ("coupon", "customer", "order", "product") and event in (
        "created", "updated", "deleted", "restored")


@dataclass
class ApiKey:
    key_id: int
    consumer_key: str
    consumer_secret: str
    permissions: str
    user_id: int = 1
    description: str = ""
    nonces: dict[int, str] = field(default_factory=dict)


@dataclass
class Webhook:
    id: int
    name: str
    status: str
    topic: str
    delivery_url: str
    secret: str
    date_created: datetime
    date_modified: datetime
    user_id: int = 1
    failure_count: int = 0
    pending_delivery: bool = True
    ping_error: str | None = None

    @property
    def resource(self) -> str:
        return self.topic.split(".")[0]

    @property
    def event(self) -> str:
        return self.topic.split(".", 1)[1] if "." in self.topic else ""


@dataclass
class Delivery:
    """One POST the store made (``kind``: event, ping, redelivery, callback)."""

    store: str
    webhook_id: int | None
    topic: str
    url: str
    headers: dict[str, str]
    body: bytes
    kind: str = "event"
    status: int | None = None
    error: str | None = None

    @property
    def delivery_id(self) -> str:
        return self.headers.get("X-WC-Webhook-Delivery-ID", "")

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 303


@dataclass
class Store:
    name: str
    url: str
    currency: str = "USD"
    prices_include_tax: bool = False
    calc_taxes: bool = True
    gmt_offset: Decimal = Decimal("0")
    tax_rates: list[TaxRate] = field(default_factory=list)
    keys: dict[str, ApiKey] = field(default_factory=dict)
    orders: dict[int, WooOrder] = field(default_factory=dict)
    webhooks: dict[int, Webhook] = field(default_factory=dict)
    next_post: int = 1001
    next_item: int = 1
    next_key: int = 1
    next_webhook: int = 1
    next_note: int = 1
    # the Shipment Tracking extension (wc-shipment-tracking/v3), when the store has it: order id → items
    shipment_tracking: dict[int, list[dict[str, Any]]] | None = None
    salt: str = field(default_factory=lambda: secrets.token_hex(16))
    auth_nonce: str = field(default_factory=lambda: secrets.token_hex(5))

    @property
    def api_url(self) -> str:
        return f"{self.url}/wp-json/wc/v3"

    def post_id(self) -> int:
        self.next_post += 1
        return self.next_post - 1


class WooCommerceSimulator(WooPaymentsControls, SimulatedPlatform):
    """Stores with API keys, orders, webhooks and the wc-auth key exchange."""

    name = "woocommerce"

    def __init__(self, latency: float = 0.0, *, auto_approve: bool = False, require_https_callback: bool = False,
                 basic_auth_over_http: bool = True, async_webhooks: bool = False, safe_remote: bool = False,
                 delivery_timeout: float = 60.0, ping_timeout: float = 5.0) -> None:
        self.auto_approve = auto_approve
        self.require_https_callback = require_https_callback
        self.basic_auth_over_http = basic_auth_over_http
        self.async_webhooks = async_webhooks
        self.safe_remote = safe_remote
        self.delivery_timeout = delivery_timeout
        self.ping_timeout = ping_timeout
        self._options = {k: v for k, v in vars(self).items()}
        self.stores: dict[str, Store] = {}
        self.deliveries: list[Delivery] = []
        self.queue: list[tuple[str, int, int]] = []      # (store, webhook id, order id), async mode
        self.clock = lambda: datetime.now(UTC)
        super().__init__(latency)

    # -- test controls: stores, keys ------------------------------------------------------------
    def reset(self) -> None:
        """Forget stores, deliveries, the queue, faults and calls, and restore the options given at
        construction and the clock (one server for many tests)."""
        with self.lock:
            vars(self).update(self._options)
            self.clock = lambda: datetime.now(UTC)
            self.stores.clear()
            self.deliveries.clear()
            self.queue.clear()
            self.faults.clear()
            self.holds.clear()
            self.calls.clear()

    def add_store(self, name: str, *, currency: str = "USD", prices_include_tax: bool = False,
                  calc_taxes: bool = True, gmt_offset: str | Decimal = "0",
                  tax_rates: list[TaxRate] | None = None) -> Store:
        """A store at ``store_url(name)``; ``tax_rates`` default to the us-ca profile."""
        with self.lock:
            store = Store(name, self.store_url(name), currency, prices_include_tax, calc_taxes, d(gmt_offset),
                          list(TAX_PROFILES["us-ca"] if tax_rates is None else tax_rates))
            self.stores[name] = store
            return store

    def store_url(self, name: str) -> str:
        return f"{self.url}/stores/{name}"

    def api_url(self, name: str) -> str:
        return f"{self.store_url(name)}/wp-json/wc/v3"

    def add_key(self, store: str, consumer_key: str | None = None, consumer_secret: str | None = None,
                permissions: str = "read_write", description: str = "") -> tuple[str, str]:
        if permissions not in ("read", "write", "read_write"):
            raise ValueError("permissions must be read, write or read_write")
        with self.lock:
            st = self._store(store)
            key = ApiKey(st.next_key, consumer_key or f"ck_{secrets.token_hex(20)}",
                         consumer_secret or f"cs_{secrets.token_hex(20)}", permissions, description=description)
            st.next_key += 1
            st.keys[key.consumer_key] = key
            return key.consumer_key, key.consumer_secret

    def revoke_key(self, store: str, consumer_key: str) -> None:
        with self.lock:
            self._store(store).keys.pop(consumer_key, None)

    # -- test controls: orders ------------------------------------------------------------------
    def add_order(self, store: str, order: WooOrder | None = None, *, checkout: bool = False,
                  **fields: Any) -> dict[str, Any]:
        """Store an order (``order`` from the builder, or ``fields`` for ``build_order``; the store's
        currency, tax settings and rates are the defaults) and fire ``order.created``. ``checkout``: as a
        shop checkout does, create it pending first, then pay it (a second event, ``order.updated``)."""
        with self.lock:
            st = self._store(store)
            oid = st.post_id()
            if order is None:
                for k, v in (("currency", st.currency), ("prices_include_tax", st.prices_include_tax),
                             ("calc_taxes", st.calc_taxes), ("tax_rates", st.tax_rates)):
                    fields.setdefault(k, v)
                order = build_order(order_id=oid, **fields)
            else:
                order.number = str(oid) if order.number in ("", str(order.id)) else order.number
                order.id = oid
            st.next_item = order.renumber(st.next_item)
            for r in order.refunds:
                r.id = st.post_id()
            st.orders[oid] = order
            final, paid = order.status, order.date_paid
            if checkout and final not in ("pending", "checkout-draft"):
                order.status, order.date_paid = "pending", None
            out = self._emit(st, "order.created", oid)
            if order.status != final:
                order.date_paid = paid
                self._set_status(st, order, final)
                out += self._emit(st, "order.updated", oid)
            rendered = self._render(st, order)
        self._send(out)
        return rendered

    def update_order(self, store: str, order_id: int, **fields: Any) -> dict[str, Any]:
        """Change an order as the admin screen would and fire ``order.updated``: ``status`` (with its
        side effects), ``billing``/``shipping`` (merged), ``set_paid``, ``meta_data`` or any attribute."""
        with self.lock:
            st = self._store(store)
            o = self._order(st, order_id, 404)
            if fields.get("status") not in (None, *STATUSES):
                raise ValueError(f"status must be one of {STATUSES}")
            self._apply(st, o, dict(fields))
            for k, v in fields.items():
                if k not in ("status", "billing", "shipping", "set_paid", "meta_data") and hasattr(o, k):
                    setattr(o, k, v)
            out = self._emit(st, "order.updated", order_id)
            rendered = self._render(st, o)
        self._send(out)
        return rendered

    def delete_order(self, store: str, order_id: int, *, force: bool = False) -> None:
        """Trash (fires ``order.deleted``) or, with ``force``, delete for good (fires nothing)."""
        with self.lock:
            st = self._store(store)
            out = self._delete(st, self._order(st, order_id, 404), force)
        self._send(out)

    def restore_order(self, store: str, order_id: int) -> dict[str, Any]:
        """Take an order out of the trash (its old status back) and fire ``order.restored``."""
        with self.lock:
            st = self._store(store)
            o = self._order(st, order_id, 404)
            if o.status != "trash":
                raise ValueError("the order is not in the trash")
            o.status, o.trashed_from = o.trashed_from or "pending", None
            o.date_modified = self._now()
            out = self._emit(st, "order.restored", order_id)
            rendered = self._render(st, o)
        self._send(out)
        return rendered

    def add_refund(self, store: str, order_id: int, amount: str | Decimal | None = None, *, reason: str = "",
                   line_items: list[dict[str, Any]] | None = None, refunded_payment: bool = False) -> dict:
        """``wc_create_refund``: ``line_items`` are ``{id, quantity, refund_total, refund_tax: {rate: amount}}``
        (``amount`` defaults to their sum); a full refund sets the status to refunded. Fires
        ``order.updated`` once."""
        with self.lock:
            st = self._store(store)
            o = self._order(st, order_id, 404)
            items = list(line_items or [])
            if amount is None:
                amount = sum((d(i.get("refund_total", "0")) + sum((d(v) for v in i.get("refund_tax", {}).values()),
                                                                  Decimal(0)) for i in items), Decimal(0))
            value = cents(d(amount))
            if value <= 0 or value > o.total - o.total_refunded:
                raise ValueError("Invalid refund amount.")
            refund = Refund(st.post_id(), value, reason, self._now(), items, refunded_payment=refunded_payment)
            o.refunds.append(refund)
            o.date_modified = refund.date_created
            if o.total - o.total_refunded <= 0:
                self._set_status(st, o, "refunded")
            out = self._emit(st, "order.updated", order_id)
            rendered = render_refund(o, refund, api_url=st.api_url, gmt_offset=st.gmt_offset)
        self._send(out)
        return rendered

    def get_order(self, store: str, order_id: int) -> dict[str, Any] | None:
        with self.lock:
            st = self._store(store)
            o = st.orders.get(order_id)
            return self._render(st, o) if o else None

    def orders(self, store: str) -> list[dict[str, Any]]:
        """Every order of a store as the API renders it, oldest id first (trashed ones included)."""
        with self.lock:
            st = self._store(store)
            return [self._render(st, o) for o in st.orders.values()]

    def webhooks(self, store: str) -> list[dict[str, Any]]:
        """The store's webhooks with what the API hides: secret, failure count, ping result."""
        with self.lock:
            return [{**self._webhook_json(self._store(store), w), "secret": w.secret,
                     "failure_count": w.failure_count, "pending_delivery": w.pending_delivery,
                     "ping_error": w.ping_error} for w in self._store(store).webhooks.values()]

    # -- test controls: deliveries --------------------------------------------------------------
    def run_webhook_queue(self) -> list[Delivery]:
        """Deliver what async mode queued (payloads built now); a no-op in sync mode."""
        with self.lock:
            queued, self.queue = self.queue, []
            out = []
            for store, webhook_id, order_id in queued:
                st = self.stores.get(store)
                if st is not None and webhook_id in st.webhooks:
                    out.append(self._prepare(st, st.webhooks[webhook_id], order_id))
        return self._send(out)

    wait_deliveries = run_webhook_queue

    def redeliver(self, delivery: Delivery) -> Delivery:
        """Send a delivery again, byte for byte (same Delivery-ID and signature): a duplicate."""
        again = Delivery(delivery.store, delivery.webhook_id, delivery.topic, delivery.url, dict(delivery.headers),
                         delivery.body, kind="redelivery")
        self._post(again, self.delivery_timeout)
        return again

    # -- test controls: key exchange ------------------------------------------------------------
    def approve_auth(self, store: str, params: dict[str, str] | str) -> str:
        """The merchant approves the app (``params`` or the authorize URL): returns the redirect URL;
        ``AuthorizationError`` when the request is invalid or the callback did not answer 200."""
        query = dict(parse_qsl(urlsplit(params).query)) if isinstance(params, str) else dict(params)
        data = self._auth_validate(query)
        return self._grant(self._store(store), data)

    def deny_auth(self, store: str, params: dict[str, str] | str) -> str:
        """The merchant clicks Deny: the redirect URL (``success=0``)."""
        query = dict(parse_qsl(urlsplit(params).query)) if isinstance(params, str) else dict(params)
        data = self._auth_validate(query)
        return _add_query(_formatted_url(data["return_url"]), success="0", user_id=data["user_id"])

    # -- internals: orders ----------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(microsecond=0)

    def _store(self, name: str) -> Store:
        if name not in self.stores:
            raise KeyError(f"no store {name!r}")
        return self.stores[name]

    def _order(self, st: Store, order_id: int, status: int) -> WooOrder:
        o = st.orders.get(int(order_id))
        if o is None:
            raise WPError("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", status)
        return o

    def _render(self, st: Store, o: WooOrder, dp: int = 2) -> dict[str, Any]:
        return render_order(o, api_url=st.api_url, store_url=st.url, gmt_offset=st.gmt_offset, dp=dp)

    def _note(self, st: Store, o: WooOrder, text: str, customer_note: bool = False, author: str = "system") -> Note:
        note = Note(st.next_note, text, self._now(), customer_note, author)
        st.next_note += 1
        o.notes.append(note)
        return note

    def _set_status(self, st: Store, o: WooOrder, new: str) -> None:
        old = o.status
        if old == new:
            return
        o.status = new
        now = self._now()
        if new in ("processing", "completed") and o.date_paid is None:
            o.date_paid = now
        if new == "completed" and o.date_completed is None:
            o.date_completed = now
        self._note(st, o, f"Order status changed from {STATUS_NAMES[old]} to {STATUS_NAMES[new]}.")
        if new == "refunded" and o.total - o.total_refunded > 0:   # wc_order_fully_refunded
            o.refunds.append(Refund(st.post_id(), o.total - o.total_refunded, "Order fully refunded.", now))
            self._note(st, o, "Order status set to refunded. To return funds to the customer you will need to "
                              "issue a refund through your payment gateway.")

    def _apply(self, st: Store, o: WooOrder, p: dict[str, Any]) -> None:
        """What an update does: status, addresses, simple fields, meta, then ``set_paid``."""
        for part in ("billing", "shipping"):
            if isinstance(p.get(part), dict):
                getattr(o, part).update({k: str(v) for k, v in p[part].items() if k in getattr(o, part)})
        for k in ("customer_note", "transaction_id", "payment_method", "payment_method_title"):
            if k in p:
                setattr(o, k, str(p[k]))
        for meta in p.get("meta_data") or []:
            existing = next((m for m in o.meta_data if m.get("key") == meta.get("key")), None)
            if existing:
                existing["value"] = meta.get("value")
            else:
                o.meta_data.append({"id": 1 + max((m.get("id", 0) for m in o.meta_data), default=o.id * 10),
                                    "key": meta.get("key"), "value": meta.get("value")})
        if p.get("status"):
            self._set_status(st, o, p["status"])
        if p.get("set_paid") is True and o.status in ("pending", "failed") and o.total > 0:   # payment_complete
            o.date_paid = o.date_paid or self._now()
            o.transaction_id = str(p.get("transaction_id") or o.transaction_id)
            needs_processing = any(not ln.virtual for ln in o.line_items)
            self._set_status(st, o, "processing" if needs_processing else "completed")
        o.date_modified = self._now()

    def _delete(self, st: Store, o: WooOrder, force: bool) -> list[Delivery]:
        if force:
            del st.orders[o.id]
            return []
        if o.status == "trash":
            raise WPError("woocommerce_rest_already_trashed", "The shop_order has already been deleted.", 410)
        o.trashed_from, o.status = o.status, "trash"
        o.date_modified = self._now()
        return self._emit(st, "order.deleted", o.id)

    # -- internals: webhooks --------------------------------------------------------------------
    def _emit(self, st: Store, topic: str, order_id: int) -> list[Delivery]:
        """Hooks fired for ``topic``: queue (async) or prepare (sync) one delivery per active webhook."""
        out = []
        for w in st.webhooks.values():
            if w.status != "active" or w.topic != topic:
                continue
            if self.async_webhooks:
                if (st.name, w.id, order_id) not in self.queue:
                    self.queue.append((st.name, w.id, order_id))
            else:
                out.append(self._prepare(st, w, order_id))
        return out

    def _prepare(self, st: Store, w: Webhook, order_id: int) -> Delivery:
        if w.event == "deleted":
            payload: Any = {"id": order_id}
        elif order_id in st.orders:
            payload = self._render(st, st.orders[order_id])
        else:
            payload = {"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.",
                       "data": {"status": 404}}
        body = php_json(payload)
        delivery_id = hmac.new(st.salt.encode(), f"{w.id}{int(time.time())}".encode(), hashlib.md5).hexdigest()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "X-WC-Webhook-Source": f"{st.url}/", "X-WC-Webhook-Topic": w.topic,
                   "X-WC-Webhook-Resource": w.resource, "X-WC-Webhook-Event": w.event,
                   "X-WC-Webhook-Signature": sign(body, w.secret), "X-WC-Webhook-ID": str(w.id),
                   "X-WC-Webhook-Delivery-ID": delivery_id}
        return Delivery(st.name, w.id, w.topic, w.delivery_url, headers, body)

    def _send(self, deliveries: list[Delivery]) -> list[Delivery]:
        """POST prepared deliveries (outside the lock) and track failures as WooCommerce does."""
        for dl in deliveries:
            self._post(dl, self.delivery_timeout)
            with self.lock:
                st = self.stores.get(dl.store)
                w = st.webhooks.get(dl.webhook_id or 0) if st else None
                if w is None:
                    continue
                if dl.ok:
                    w.failure_count = 0
                elif w.failure_count > 5:
                    w.status = "disabled"
                else:
                    w.failure_count += 1
        return deliveries

    def _post(self, dl: Delivery, timeout: float) -> None:
        with self.lock:
            self.deliveries.append(dl)
            reason = self._unsafe(dl.url, self.stores.get(dl.store))
        if reason:
            dl.error = reason
            return
        try:
            with requests.post(dl.url, data=dl.body, headers=dl.headers, timeout=timeout,
                               allow_redirects=False) as resp:
                dl.status = resp.status_code
        except requests.RequestException as exc:
            dl.error = str(exc)

    def _unsafe(self, url: str, st: Store | None) -> str | None:
        """``wp_http_validate_url`` when ``safe_remote``: why a real store would refuse to call ``url``."""
        if not self.safe_remote:
            return None
        parts, home = urlsplit(url), urlsplit(st.url if st else self.url)
        same_host = (parts.hostname or "").lower() == (home.hostname or "").lower()
        try:
            private = ip_address(parts.hostname or "").is_private
        except ValueError:
            private = (parts.hostname or "") == "localhost"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme not in ("http", "https") or (private and not same_host) or not (
                port in (80, 443, 8080) or (same_host and home.port == port)):
            return "A valid URL was not provided."
        return None

    def _ping(self, st: Store, w: Webhook) -> None:
        dl = Delivery(st.name, w.id, "ping", w.delivery_url, {
            "User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"},
            f"webhook_id={w.id}".encode(), kind="ping")
        self._post(dl, self.ping_timeout)
        with self.lock:
            if dl.error:
                w.ping_error = f"Error: Delivery URL cannot be reached: {dl.error}"
            elif dl.status != 200:
                w.ping_error = f"Error: Delivery URL returned response code: {dl.status}"
            else:
                w.ping_error, w.pending_delivery = None, False

    def _webhook_json(self, st: Store, w: Webhook) -> dict[str, Any]:
        hooks = TOPIC_HOOKS.get(w.topic) or [w.event] * (w.resource == "action")
        return {"id": w.id, "name": w.name, "status": w.status, "topic": w.topic, "resource": w.resource,
                "event": w.event, "hooks": hooks, "delivery_url": w.delivery_url,
                "date_created": wc_date(w.date_created, st.gmt_offset), "date_created_gmt": wc_date(w.date_created),
                "date_modified": wc_date(w.date_modified, st.gmt_offset),
                "date_modified_gmt": wc_date(w.date_modified),
                "_links": {"self": [{"href": f"{st.api_url}/webhooks/{w.id}"}],
                           "collection": [{"href": f"{st.api_url}/webhooks"}]}}

    # -- REST dispatch --------------------------------------------------------------------------
    ROUTES = [(r"/wc/v3/orders", ("GET",), "_r_orders"),
              (r"/wc/v3/orders/(?P<id>\d+)", ("GET", "POST", "PUT", "PATCH", "DELETE"), "_r_order"),
              (r"/wc/v3/orders/(?P<order_id>\d+)/notes", ("GET", "POST"), "_r_notes"),
              (r"/wc/v3/orders/(?P<order_id>\d+)/refunds", ("GET",), "_r_refunds"),
              (r"/wc/v3/webhooks", ("GET", "POST"), "_r_webhooks"),
              (r"/wc/v3/webhooks/(?P<id>\d+)", ("GET", "POST", "PUT", "PATCH", "DELETE"), "_r_webhook"),
              (r"/wc-shipment-tracking/v3/orders/(?P<order_id>\d+)/shipment-trackings", ("GET",), "_r_trackings"),
              *WooPaymentsControls.PAYMENTS_ROUTES]   # WooPayments: demo.simulators.woocommerce_payments

    def _rest(self, store: str, route: str) -> Response:
        st = self.stores.get(store)
        if st is None:
            return Response("Not Found", 404, mimetype="text/html")
        method = "GET" if request.method == "HEAD" else request.method
        query = php_query(request.query_string.decode())
        form = php_query(request.get_data(as_text=True)) if request.mimetype.endswith("form-urlencoded") else {}
        headers = {"X-Content-Type-Options": "nosniff", "Link": f'<{st.url}/wp-json/>; rel="https://api.w.org/"',
                   "Access-Control-Expose-Headers": "X-WP-Total, X-WP-TotalPages, Link"}
        after: list[Any] = []
        links: list[str] = []
        try:
            body: Any = {}
            if request.mimetype == "application/json" and request.get_data():
                try:
                    body = json.loads(request.get_data())
                except ValueError as exc:
                    raise WPError("rest_invalid_json", "Invalid JSON body passed.", 400, json_error_code=4,
                                  json_error_message="Syntax error") from exc
            with self.lock:
                key = self._authenticate(st, method, query, form)
                m, methods, handler = next(((m, ms, h) for p, ms, h in self.ROUTES if (
                    m := re.fullmatch(p, "/" + route.strip("/"))) and method in (*ms, "OPTIONS")), (None, (), ""))
                if m is None:
                    raise WPError("rest_no_route", "No route was found matching the URL and request method.", 404)
                headers["Allow"] = ", ".join(methods)
                if method == "OPTIONS":
                    status, payload = 200, {"namespace": "wc/v3", "methods": list(methods)}
                else:
                    params = {**query, **form, **(body if isinstance(body, dict) else {}), **m.groupdict()}
                    status, payload, extra, after = getattr(self, handler)(st, key, method, _Params(params),
                                                                           **m.groupdict())
                    links = extra.pop("links", [])
                    headers.update(extra)
        except WPError as exc:
            status, payload, links = exc.status, exc.body, []
        for job in after:
            job()
        response = Response(php_json(payload), status, headers=headers, mimetype="application/json")
        response.headers["Content-Type"] = "application/json; charset=UTF-8"
        for link in links:
            response.headers.add("Link", link)
        return response

    def _authenticate(self, st: Store, method: str, query: dict, form: dict) -> ApiKey | None:
        """``WC_REST_Authentication``: Basic/query keys (if allowed), else OAuth 1.0a; then permissions."""
        key, error = None, None
        if self.basic_auth_over_http:
            ck, cs = (str(query["consumer_key"]), str(query["consumer_secret"])) if query.get(
                "consumer_key") and query.get("consumer_secret") else ("", "")
            auth = request.authorization
            if not ck and auth is not None and auth.type == "basic" and auth.username and auth.password:
                ck, cs = auth.username, auth.password
            if ck and cs and ck in st.keys:
                if hmac.compare_digest(st.keys[ck].consumer_secret, cs):
                    key = st.keys[ck]
                else:
                    error = WPError(AUTH_ERROR, "Consumer secret is invalid.", 401)
        if key is None:
            key = self._oauth(st, method, {**query, **form}, error)
        if key is not None and method != "OPTIONS":
            need = "read" if method == "GET" else "write"
            if key.permissions not in (need, "read_write"):
                raise WPError(AUTH_ERROR, f"The API key provided does not have {need} permissions.", 401)
        return key

    def _oauth(self, st: Store, method: str, params: dict[str, Any], error: WPError | None) -> ApiKey | None:
        header = request.headers.get("Authorization", "").strip()
        if header.startswith("OAuth "):
            for name, quoted, bare in re.findall(r'(oauth_[a-z_-]*)=(?:"([^"]*)"|([^,]*))', header):
                params[name] = unquote(str(quoted or bare).replace("+", " "))
        names = ("oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method")
        missing = [n for n in names if params.get(n) in (None, "", "0")]
        if len(missing) == len(names):
            if error:
                raise error
            return None
        if missing:
            raise WPError("woocommerce_rest_authentication_missing_parameter",
                          f"Missing OAuth parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}", 401)
        key = st.keys.get(str(params["oauth_consumer_key"]))
        if key is None:
            raise WPError(AUTH_ERROR, "Consumer key is invalid.", 401)
        algorithm = params["oauth_signature_method"]
        if algorithm not in ("HMAC-SHA1", "HMAC-SHA256"):
            raise WPError(AUTH_ERROR, "Invalid signature - signature method is invalid.", 401)
        raw_path = (request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path)
        expected = oauth_signature(method, self.url + raw_path.split("?")[0], params, key.consumer_secret, algorithm)
        if not hmac.compare_digest(expected, unquote(str(params["oauth_signature"]).replace(" ", "+"))):
            raise WPError(AUTH_ERROR, "Invalid signature - provided signature does not match.", 401)
        now, nonce = int(time.time()), str(params["oauth_nonce"])
        try:
            stamp = int(str(params["oauth_timestamp"]))
        except ValueError:
            stamp = 0
        if not now - NONCE_WINDOW <= stamp <= now + NONCE_WINDOW:
            raise WPError(AUTH_ERROR, "Invalid timestamp.", 401)
        if nonce in key.nonces.values():
            raise WPError(AUTH_ERROR, "Invalid nonce - nonce has already been used.", 401)
        key.nonces[stamp] = nonce          # one nonce per timestamp, as WooCommerce stores them
        key.nonces = {t: n for t, n in key.nonces.items() if t >= now - NONCE_WINDOW}
        return key

    @staticmethod
    def _need(key: ApiKey | None, action: str, message: str) -> None:
        if key is None:
            raise WPError(f"woocommerce_rest_cannot_{action}", message, 401)

    def _page(self, st: Store, path: str, rows: list[Any], page: int, per_page: int,
              offset: int | None = None) -> tuple[list[Any], dict[str, Any]]:
        """One page and WordPress's headers; Link URLs repeat the raw query (``add_query_arg``)."""
        total = len(rows)
        pages = math.ceil(total / per_page)
        start = offset if offset is not None else (page - 1) * per_page
        raw = list(php_query(request.query_string.decode()).items())

        def link(n: int, rel: str) -> str:
            items = [(k, n if k == "page" else v) for k, v in raw] + ([] if "page" in dict(raw) else [("page", n)])
            qs = "&".join(f"{k}={v}" if v != "" else k for k, v in _flat(items))
            return f'<{st.api_url}{path}?{qs}>; rel="{rel}"'

        links = ([link(min(page - 1, pages), "prev")] if page > 1 else []) + (
            [link(page + 1, "next")] if pages > page else [])
        return rows[start:start + per_page], {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages), "links": links}

    # -- REST handlers (lock held): (status, payload, headers, jobs to run after the lock) -----------
    def _r_orders(self, st: Store, key: ApiKey | None, method: str, p: _Params) -> tuple:
        page, per_page = p.int("page", 1, 1), p.int("per_page", 10, 1, 100)
        offset, dp, customer = p.int("offset", None, 0), p.int("dp", 2, 0), p.int("customer", None, 0)
        order = p.enum("order", ("asc", "desc"), "desc")
        orderby = p.enum("orderby", ("date", "id", "include", "title", "slug", "modified"), "date")
        statuses = p.enum_list("status", ("any", "trash", *STATUSES), ["any"])
        gmt = p.bool("dates_are_gmt", False)
        bounds = {n: p.date(n) for n in ("after", "before", "modified_after", "modified_before")}
        include, exclude, search = p.ids("include"), p.ids("exclude"), str(p.raw.get("search") or "").lower()
        p.enum("context", ("view", "edit"), "view")
        p.check()
        self._need(key, "view", "Sorry, you cannot list resources.")
        offset_h = timedelta(0) if gmt else timedelta(hours=float(st.gmt_offset))

        def when(name: str) -> datetime | None:
            v = bounds[name]
            return None if v is None else (v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v - offset_h)

        rows = []
        for o in st.orders.values():
            created, modified = o.date_created.replace(tzinfo=None), o.date_modified.replace(tzinfo=None)
            if not (o.status in statuses or ("any" in statuses and o.status != "trash")):
                continue
            checks = [(when("after"), created, 1), (when("before"), created, -1),
                      (when("modified_after"), modified, 1), (when("modified_before"), modified, -1)]
            if any(b is not None and not (v > b if sign_ > 0 else v < b) for b, v, sign_ in checks):
                continue
            if (include and o.id not in include) or o.id in exclude or (customer is not None
                                                                         and o.customer_id != customer):
                continue
            haystack = " ".join([str(o.id), *o.billing.values(), *o.shipping.values(),
                                 *(ln.name for ln in o.line_items)]).lower()
            if search and search not in haystack:
                continue
            rows.append(o)
        sort_key = {"modified": lambda o: (o.date_modified, o.id), "id": lambda o: (o.id,),
                    "include": lambda o: (include.index(o.id) if o.id in include else 0, o.id)
                    }.get(orderby, lambda o: (o.date_created, o.id))
        rows.sort(key=sort_key, reverse=order == "desc")
        chunk, headers = self._page(st, "/orders", rows, page, per_page, offset)
        return 200, [self._render(st, o, dp) for o in chunk], headers, []

    def _r_order(self, st: Store, key: ApiKey | None, method: str, p: _Params, id: str) -> tuple:
        dp = p.int("dp", 2, 0)
        if method == "GET":
            p.check()
            o = self._order(st, int(id), 404)
            self._need(key, "view", "Sorry, you cannot view this resource.")
            return 200, self._render(st, o, dp), {}, []
        if method == "DELETE":
            force = p.bool("force", False)
            p.check()
            o = self._order(st, int(id), 404)
            self._need(key, "delete", "Sorry, you are not allowed to delete this resource.")
            previous = self._render(st, o, dp)
            out = self._delete(st, o, force)
            return 200, previous, {}, [lambda: self._send(out)]
        p.enum("status", STATUSES, None)
        p.bool("set_paid", False)
        for part in ("billing", "shipping"):
            if part in p.raw and not isinstance(p.raw[part], dict):
                p.fail(part, "rest_invalid_type", f"{part} is not of type object.")
            elif part == "billing" and "email" in (p.raw.get(part) or {}) and not _EMAIL.match(
                    str(p.raw[part]["email"] or "")):
                p.fail(part, "rest_invalid_email", "Invalid email address.")
        if "meta_data" in p.raw and not isinstance(p.raw["meta_data"], list):
            p.fail("meta_data", "rest_invalid_type", "meta_data is not of type array.")
        p.check()
        o = self._order(st, int(id), 400)
        self._need(key, "edit", "Sorry, you are not allowed to edit this resource.")
        self._apply(st, o, {**p.raw, "set_paid": p.bool("set_paid", False)})
        out = self._emit(st, "order.updated", o.id)
        return 200, self._render(st, o, dp), {}, [lambda: self._send(out)]

    def _r_notes(self, st: Store, key: ApiKey | None, method: str, p: _Params, order_id: str) -> tuple:
        if method == "GET":
            kind = p.enum("type", ("any", "customer", "internal"), "any")
            p.check()
            self._need(key, "view", "Sorry, you cannot list resources.")
        else:
            if p.raw.get("note") is None:
                raise WPError("rest_missing_callback_param", "Missing parameter(s): note", 400, params=["note"])
            customer, by_user = p.bool("customer_note", False), p.bool("added_by_user", False)
            p.check()
            self._need(key, "create", "Sorry, you are not allowed to create resources.")
        o = st.orders.get(int(order_id))
        if o is None:
            raise WPError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        base = f"{st.api_url}/orders/{o.id}/notes"

        def note_json(n: Note) -> dict[str, Any]:
            return {"id": n.id, "author": n.author, "date_created": wc_date(n.date_created, st.gmt_offset),
                    "date_created_gmt": wc_date(n.date_created), "note": n.note, "customer_note": n.customer_note,
                    "_links": {"self": [{"href": f"{base}/{n.id}"}], "collection": [{"href": base}],
                               "up": [{"href": f"{st.api_url}/orders/{o.id}"}]}}

        if method == "GET":
            notes = [n for n in reversed(o.notes) if kind == "any" or n.customer_note == (kind == "customer")]
            return 200, [note_json(n) for n in notes], {}, []
        if not str(p.raw["note"]).strip():
            raise WPError("woocommerce_api_cannot_create_order_note", "Cannot create order note, please try again.",
                          500)
        note = self._note(st, o, str(p.raw["note"]), customer, "admin" if by_user else "system")
        return 201, note_json(note), {"Location": f"{base}/{note.id}"}, []

    def _r_trackings(self, st: Store, key: ApiKey | None, method: str, p: _Params, order_id: str) -> tuple:
        """The Shipment Tracking extension's list for an order; no such route without the extension."""
        if st.shipment_tracking is None:
            raise WPError("rest_no_route", "No route was found matching the URL and request method.", 404)
        p.check()
        self._need(key, "view", "Sorry, you cannot list resources.")
        if int(order_id) not in st.orders:
            raise WPError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        return 200, [dict(t) for t in st.shipment_tracking.get(int(order_id), [])], {}, []

    def add_tracking(self, store: str, order_id: int, *, provider: str, number: str, shipped: str,
                     url: str | None = None) -> dict[str, Any]:
        """A tracking item added with the Shipment Tracking extension (installed by the first one);
        ``shipped``: the date (YYYY-MM-DD)."""
        with self.lock:
            st = self._store(store)
            items = (st.shipment_tracking if st.shipment_tracking is not None else {}).setdefault(int(order_id), [])
            if st.shipment_tracking is None:
                st.shipment_tracking = {int(order_id): items}
            item = {"tracking_id": secrets.token_hex(16), "tracking_provider": provider, "tracking_number": number,
                    "tracking_link": url or "", "date_shipped": shipped}
            items.append(item)
            return dict(item)

    def _r_refunds(self, st: Store, key: ApiKey | None, method: str, p: _Params, order_id: str) -> tuple:
        page, per_page, dp = p.int("page", 1, 1), p.int("per_page", 10, 1, 100), p.int("dp", 2, 0)
        p.check()
        self._need(key, "view", "Sorry, you cannot list resources.")
        o = st.orders.get(int(order_id))
        rows = list(reversed(o.refunds)) if o else []
        chunk, headers = self._page(st, f"/orders/{order_id}/refunds", rows, page, per_page)
        return 200, [render_refund(o, r, api_url=st.api_url, gmt_offset=st.gmt_offset, dp=dp)
                     for r in chunk] if o else [], headers, []

    def _r_webhooks(self, st: Store, key: ApiKey | None, method: str, p: _Params) -> tuple:
        if method == "GET":
            page, per_page = p.int("page", 1, 1), p.int("per_page", 10, 1, 100)
            status = p.enum("status", ("all", *WEBHOOK_STATUSES), "all")
            p.check()
            self._need(key, "view", "Sorry, you cannot list resources.")
            rows = [w for w in reversed(st.webhooks.values()) if status in ("all", w.status)]
            chunk, headers = self._page(st, "/webhooks", rows, page, per_page)
            return 200, [self._webhook_json(st, w) for w in chunk], headers, []
        status = p.enum("status", WEBHOOK_STATUSES, "active")
        p.check()
        self._need(key, "create", "Sorry, you are not allowed to create resources.")
        if p.raw.get("id"):
            raise WPError("woocommerce_rest_shop_webhook_exists", "Cannot create existing shop_webhook.", 400)
        self._check_webhook(p.raw, creating=True)
        now = self._now()
        secret = str(p.raw.get("secret") or "") or "".join(
            secrets.choice(string.ascii_letters + string.digits + "!@#$%^&*()-_ []{}<>~`+=,.;:/?|") for _ in range(50))
        w = Webhook(st.next_webhook, str(p.raw.get("name") or f"Webhook created on {now:%b %d, %Y @ %I:%M %p}"),
                    status, str(p.raw["topic"]).lower(), str(p.raw["delivery_url"]), secret, now, now, key.user_id)
        st.next_webhook += 1
        st.webhooks[w.id] = w
        return 201, self._webhook_json(st, w), {"Location": f"{st.api_url}/webhooks/{w.id}"}, [
            lambda: self._ping(st, w)]

    def _r_webhook(self, st: Store, key: ApiKey | None, method: str, p: _Params, id: str) -> tuple:
        w = st.webhooks.get(int(id))
        missing = WPError("woocommerce_rest_shop_webhook_invalid_id", "ID is invalid.", 400)
        if method == "DELETE":
            force = p.bool("force", False)
            p.check()
            self._need(key, "delete", "Sorry, you are not allowed to delete this resource.")
            if not force:
                raise WPError("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501)
            if w is None:
                raise WPError("woocommerce_rest_shop_webhook_invalid_id", "Invalid ID.", 404)
            del st.webhooks[w.id]
            return 200, self._webhook_json(st, w), {}, []
        if method == "GET":
            p.check()
            self._need(key, "view", "Sorry, you cannot view this resource.")
            if w is None:
                raise missing
            return 200, self._webhook_json(st, w), {}, []
        status = p.enum("status", WEBHOOK_STATUSES, None)
        p.check()
        self._need(key, "edit", "Sorry, you are not allowed to edit this resource.")
        if w is None:
            raise missing
        self._check_webhook(p.raw, creating=False)
        for name in ("name", "delivery_url", "secret"):
            if p.raw.get(name):
                setattr(w, name, str(p.raw[name]))
        w.topic = str(p.raw.get("topic") or w.topic).lower()
        w.status = status or w.status      # the failure count is kept, as WooCommerce does
        w.date_modified = self._now()
        return 200, self._webhook_json(st, w), {}, []

    @staticmethod
    def _check_webhook(raw: dict[str, Any], *, creating: bool) -> None:
        topic = str(raw.get("topic") or "").lower()
        if (creating or topic) and not _valid_topic(topic):
            raise WPError("woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic is required and must be "
                                                                         "valid.", 400)
        url = str(raw.get("delivery_url") or "")
        if (creating or url) and not (re.match(r"^https?://[^/\s?#]+", url) and " " not in url):
            raise WPError("woocommerce_rest_shop_webhook_invalid_delivery_url",
                          "Webhook delivery URL must be a valid URL starting with http:// or https://.", 400)

    # -- key exchange ---------------------------------------------------------------------------
    def register_routes(self) -> None:
        self.app.add_url_rule("/stores/<store>/wp-json/<path:route>", "rest", self._rest,
                              methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
        self.app.add_url_rule("/stores/<store>/wc-auth/v1/<route>", "wc_auth", self._wc_auth,
                              methods=["GET", "POST"])

    def _auth_validate(self, query: dict[str, str]) -> dict[str, str]:
        data = {}
        for name in ("app_name", "user_id", "return_url", "callback_url", "scope"):
            if not query.get(name):
                raise AuthorizationError(f"Missing parameter {name}")
            data[name] = query[name]
        if data["scope"] not in ("read", "write", "read_write"):
            raise AuthorizationError(f"Invalid scope {data['scope']}")
        for name in ("return_url", "callback_url"):
            url = urlsplit(_formatted_url(data[name]))
            if not url.scheme or not url.netloc:
                raise AuthorizationError(f"The {_formatted_url(data[name])} is not a valid URL")
        if self.require_https_callback and not _formatted_url(data["callback_url"]).lower().startswith("https://"):
            raise AuthorizationError("The callback_url needs to be over SSL")
        return data

    def _grant(self, st: Store, data: dict[str, str]) -> str:
        scope_name = {"read": "Read", "write": "Write", "read_write": "Read/Write"}[data["scope"]]
        now = self._now()
        key, secret = self.add_key(st.name, f"ck_{secrets.token_hex(20)}", f"cs_{secrets.token_hex(20)}",
                                   data["scope"], f"{data['app_name']} - API {scope_name} (created on "
                                                  f"{now:%B %d, %Y} at {now:%I:%M %p}).")
        payload = {"key_id": st.keys[key].key_id, "user_id": data["user_id"], "consumer_key": key,
                   "consumer_secret": secret, "key_permissions": data["scope"]}
        dl = Delivery(st.name, None, "wc-auth", _formatted_url(data["callback_url"]),
                      {"Content-Type": "application/json;charset=UTF-8", "User-Agent": USER_AGENT},
                      php_json(payload), kind="callback")
        self._post(dl, self.delivery_timeout)
        if dl.error or dl.status != 200:
            self.revoke_key(st.name, key)
            raise AuthorizationError(dl.error if dl.error else "An error occurred in the request and at the time "
                                                               "were unable to send the consumer data")
        return _add_query(_formatted_url(data["return_url"]), success="1", user_id=data["user_id"])

    def _wc_auth(self, store: str, route: str) -> Response:
        st = self.stores.get(store)
        if st is None:
            return Response("Not Found", 404, mimetype="text/html")
        query = {k: v for k, v in request.values.items()}
        route = route.lower()
        try:
            data = self._auth_validate(query)
            if route == "login" or (route == "authorize" and not self.auto_approve):
                base = f"{st.url}/wc-auth/v1/access_granted?{urlencode(data)}&wc_auth_nonce={st.auth_nonce}"
                deny = _add_query(_formatted_url(data["return_url"]), success="0", user_id=data["user_id"])
                html = (f"<html><head><title>Application authentication request</title></head><body>"
                        f"<p>{_esc(data['app_name'])} would like to connect to your store.</p>"
                        f'<a class="button-primary wc-auth-approve" href="{_esc(base)}">Approve</a> '
                        f'<a class="button wc-auth-deny" href="{_esc(deny)}">Deny</a></body></html>')
                return Response(html, 200, mimetype="text/html")
            if route == "access_granted" and query.get("wc_auth_nonce") != st.auth_nonce:
                raise AuthorizationError("Invalid nonce verification")
            if route not in ("authorize", "access_granted"):
                raise AuthorizationError("You do not have permission to access this page")
            return Response("", 302, headers={"Location": self._grant(st, data)})
        except AuthorizationError as exc:
            html = (f"<html><head><title>Access denied</title></head><body><p>Error: {_esc(str(exc))}.</p>"
                    f"</body></html>")
            return Response(html, 401, mimetype="text/html")


def _formatted_url(url: str) -> str:
    url = unquote(url)
    return url if "://" in url else f"https://{url}"


def _add_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return parts._replace(query=urlencode(query)).geturl()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


