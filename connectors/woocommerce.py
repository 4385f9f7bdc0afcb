"""A WooCommerce store's REST API (wc/v3) through the ``woocommerce`` package.

Over https the package authenticates with HTTP Basic (consumer key and secret); over plain http it
signs each request with one-legged OAuth 1.0a, as WooCommerce requires. Every answer is classified:
401/403 (keys revoked or read-only) → ``AuthExpired``, 404 → ``None`` where a missing object is an
answer, 429/5xx/timeouts/connection errors → ``Retryable``, other 4xx → ``Permanent`` with
WooCommerce's own ``code`` and ``message``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from woocommerce import API

from connectors import jsonmoney, redact, topics
from connectors.errors import AuthExpired, Permanent, Retryable, with_excerpt

PLATFORM = "woocommerce"
PAGE_SIZE = 100          # WooCommerce refuses per_page above 100
ORDER_TOPICS = topics.WOOCOMMERCE_ORDER_TOPICS
log = logging.getLogger("o2c.woocommerce")


def normalise_store_url(url: str) -> str:
    """``https://shop.example.com/`` → ``https://shop.example.com`` (scheme and host required)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not a store URL like https://shop.example.com")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: a store URL has no query or fragment")
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


@dataclass
class OrderPage:
    orders: list[dict[str, Any]]
    page: int
    total_pages: int
    total: int


class WooCommerceClient:
    def __init__(self, url: str, consumer_key: str, consumer_secret: str, *, timeout: float = 30.0,
                 throttle: Callable[[], object] | None = None) -> None:
        self.url = normalise_store_url(url)
        self._api = API(url=self.url, consumer_key=consumer_key, consumer_secret=consumer_secret,
                        version="wc/v3", timeout=timeout)
        self._tracking = API(url=self.url, consumer_key=consumer_key, consumer_secret=consumer_secret,
                             version="wc-shipment-tracking/v3", timeout=timeout)
        self._throttle = throttle

    def shipment_trackings(self, order_id: str | int) -> list[dict[str, Any]] | None:
        """The order's tracking items from the Shipment Tracking extension, or None when the store has no
        such extension (its route does not exist)."""
        response = self._send("GET", f"orders/{int(order_id)}/shipment-trackings", missing_ok=True,
                              api=self._tracking)
        if response.status_code == 404:
            return None
        items = self._json(response)
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    # -- orders ---------------------------------------------------------------------------------
    def fetch_order(self, order_id: str | int) -> dict[str, Any] | None:
        """The order as the API returns it now, or None when it does not exist (or was deleted)."""
        return self._call("GET", f"orders/{int(order_id)}", missing_ok=True)

    def payments_page(self, resource: str, params: dict[str, Any]) -> dict[str, Any]:
        """One page of a WooPayments listing (``deposits``, ``transactions``): ``connectors.woopayments``."""
        return self._call("GET", f"payments/{resource}", params=params) or {}

    def orders_page(self, page: int = 1, *, after: str | None = None, before: str | None = None,
                    modified_after: str | None = None, per_page: int = PAGE_SIZE) -> OrderPage:
        """One page of orders, oldest first (``after``/``before``: ISO 8601 creation bounds)."""
        params: dict[str, Any] = {"page": page, "per_page": min(per_page, PAGE_SIZE), "orderby": "date",
                                  "order": "asc", "status": "any"}
        for key, value in (("after", after), ("before", before), ("modified_after", modified_after)):
            if value:
                params[key] = value
        response = self._send("GET", "orders", params=params)
        orders = self._json(response)
        total_pages = _int_header(response, "X-WP-TotalPages", default=page)
        total = _int_header(response, "X-WP-Total", default=len(orders))
        return OrderPage(orders=orders, page=page, total_pages=total_pages, total=total)

    def iter_orders(self, *, after: str | None = None, before: str | None = None,
                    start_page: int = 1) -> Iterator[OrderPage]:
        """Every page from ``start_page`` on, following ``X-WP-TotalPages``."""
        page = start_page
        while True:
            result = self.orders_page(page, after=after, before=before)
            yield result
            if page >= result.total_pages or not result.orders:
                return
            page += 1

    def update_order(self, order_id: str | int, fields: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", f"orders/{int(order_id)}", data=fields)

    def add_order_note(self, order_id: str | int, note: str, *, customer_note: bool = False) -> dict[str, Any]:
        return self._call("POST", f"orders/{int(order_id)}/notes",
                          data={"note": note, "customer_note": customer_note})

    def order_notes(self, order_id: str | int) -> list[dict[str, Any]]:
        return self._call("GET", f"orders/{int(order_id)}/notes") or []

    # -- webhooks and credentials ---------------------------------------------------------------
    def check_access(self) -> None:
        """Raise unless the keys can read orders (a cheap call: one order)."""
        self._send("GET", "orders", params={"per_page": 1})

    def webhooks(self) -> list[dict[str, Any]]:
        return self._call("GET", "webhooks", params={"per_page": PAGE_SIZE}) or []

    def create_webhook(self, *, topic: str, delivery_url: str, secret: str, name: str) -> dict[str, Any]:
        return self._call("POST", "webhooks", data={"name": name, "topic": topic, "delivery_url": delivery_url,
                                                    "secret": secret, "status": "active"})

    def delete_webhook(self, webhook_id: int) -> None:
        self._call("DELETE", f"webhooks/{int(webhook_id)}", params={"force": "true"}, missing_ok=True)

    # -- transport ------------------------------------------------------------------------------
    def _call(self, method: str, endpoint: str, *, data: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None, missing_ok: bool = False) -> Any:
        response = self._send(method, endpoint, data=data, params=params, missing_ok=missing_ok)
        if response.status_code == 404 and missing_ok:
            return None
        return self._json(response)

    def _send(self, method: str, endpoint: str, *, data: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None, missing_ok: bool = False, api: Any = None) -> requests.Response:
        if self._throttle:
            self._throttle()
        kwargs: dict[str, Any] = {"params": dict(params or {})}
        try:
            if method == "GET":
                response = (api or self._api).get(endpoint, **kwargs)
            elif method == "POST":
                response = self._api.post(endpoint, data, **kwargs)
            elif method == "PUT":
                response = self._api.put(endpoint, data, **kwargs)
            else:
                response = self._api.delete(endpoint, **kwargs)
        except requests.Timeout as exc:
            raise Retryable(f"{self.url} did not answer in time", platform=PLATFORM, code="timeout",
                            excerpt=self._unanswered(method, endpoint, data, params)) from exc
        except requests.RequestException as exc:
            raise Retryable(f"cannot reach {self.url}: {type(exc).__name__}", platform=PLATFORM,
                            code="unreachable", excerpt=self._unanswered(method, endpoint, data, params)) from exc
        if response.status_code < 300 or (response.status_code == 404 and missing_ok):
            return response
        raise with_excerpt(_error(response, self.url), response_excerpt(response))

    def _unanswered(self, method: str, endpoint: str, data: dict[str, Any] | None,
                    params: dict[str, Any] | None) -> dict[str, Any]:
        """The excerpt of a call that got no answer (no signature in it: the URL is rebuilt unsigned)."""
        url = f"{self.url}/wp-json/wc/v3/{endpoint}" + (f"?{urlencode(params)}" if params else "")
        return redact.excerpt(method, url, data, None, None)

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return jsonmoney.loads(response.text)
        except ValueError as exc:
            raise Retryable(f"the store answered HTTP {response.status_code} with a body that is not JSON "
                            "(a caching plugin or maintenance page?)", platform=PLATFORM,
                            code="not_json", status=response.status_code,
                            excerpt=response_excerpt(response)) from exc


def response_excerpt(response: requests.Response) -> dict[str, Any]:
    """The redacted excerpt of the call behind ``response`` (its request as sent: method, URL, body)."""
    sent = response.request
    return redact.excerpt(sent.method if sent else None, sent.url if sent else response.url,
                          sent.body if sent else None, response.status_code, response.content)


def _int_header(response: requests.Response, name: str, *, default: int) -> int:
    try:
        return int(response.headers.get(name, default))
    except (TypeError, ValueError):
        return default


def _error(response: requests.Response, url: str) -> Exception:
    status = response.status_code
    code, message = f"http_{status}", response.reason or ""
    try:
        body = response.json()
        if isinstance(body, dict):
            code = str(body.get("code") or code)
            message = str(body.get("message") or message)
    except ValueError:
        pass
    text = f"WooCommerce at {url} answered HTTP {status} {code}: {message}".strip()
    if status in (401, 403):
        return AuthExpired(text + " (are the API keys revoked or read-only?)", platform=PLATFORM, code=code,
                           status=status)
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After")
        try:
            wait = float(retry_after) if retry_after else None
        except ValueError:
            wait = None
        return Retryable(text, platform=PLATFORM, code=code, status=status, retry_after=wait)
    return Permanent(text, platform=PLATFORM, code=code, status=status)
