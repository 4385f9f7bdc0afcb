"""HubSpot deals, their line items, pipelines and associations, through hubspot-api-client's generic
``api_request`` (the SDK's typed deal and association models add nothing here but conversions). Batches of
up to 100; every error is one of the hub's kinds, with the failing call redacted on it."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from hubspot import Client

from connectors import redact
from connectors.errors import AuthExpired, Permanent, Retryable, with_excerpt

PLATFORM = "hubspot"
BATCH_LIMIT = 100
DEAL_TO_CONTACT, LINE_ITEM_TO_DEAL = 3, 20
# a deal property found (or made) with one token is not looked up again for this long, in this process
PROPERTY_CHECK_SECONDS = 600.0
_properties_checked: dict[tuple[str, str, bool, bool], float] = {}
_properties_lock = threading.Lock()


def token_identity(host: str, access_token: str) -> str:
    """Who a client acts as, for the property cache: a digest of the API host and the token (a new token,
    a reconnect or another portal checks again)."""
    return hashlib.sha256(f"{host}\0{access_token}".encode()).hexdigest()[:24]


@dataclass
class UpsertedDeal:
    id: str
    key: str
    new: bool


class HubSpotDeals:
    def __init__(self, client: Client, host: str, *, timeout: float = 30.0,
                 throttle: Callable[[], object] | None = None, identity: str = "") -> None:
        self._client, self._host, self._timeout, self._throttle = client, host, timeout, throttle
        self._identity = identity

    def _call(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        if self._throttle:
            self._throttle()
        options: dict[str, Any] = {"method": method, "path": path, "base_url": self._host}
        if body is not None:
            options["body"] = body
        url = self._host + path
        try:
            response = self._client.api_request(options)
        except requests.RequestException as exc:
            raise Retryable("cannot reach HubSpot", platform=PLATFORM,
                            excerpt=redact.excerpt(method, url, body, None, None)) from exc
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise with_excerpt(_error(response), redact.excerpt(method, url, body, response.status_code,
                                                                 response.text))
        return response.json() if response.content else {}

    # -- pipelines and properties ---------------------------------------------------------------------
    def pipelines(self) -> list[dict[str, Any]]:
        return list((self._call("GET", "/crm/v3/pipelines/deals") or {}).get("results") or [])

    def ensure_property(self, name: str, label: str, *, unique: bool = False, number: bool = False) -> None:
        """A custom deal property, created when missing; ``unique``: with unique values (the key deals are
        upserted by). Checked once per ``PROPERTY_CHECK_SECONDS`` and token, not on every order; a failed
        deal upsert checks again."""
        key = (self._identity, name, unique, number)
        with _properties_lock:
            if self._identity and time.monotonic() - _properties_checked.get(key, float("-inf")) \
                    < PROPERTY_CHECK_SECONDS:
                return
        self._ensure_property(name, label, unique=unique, number=number)
        with _properties_lock:
            _properties_checked[key] = time.monotonic()

    def _ensure_property(self, name: str, label: str, *, unique: bool, number: bool) -> None:
        found = self._call("GET", f"/crm/v3/properties/deals/{name}", missing_ok=True)
        if found is not None:
            if unique and not found.get("hasUniqueValue"):
                raise Permanent(f"the HubSpot deal property {name} exists but does not require unique values; "
                                "delete it or make it unique, so that deals can be found again by it",
                                platform=PLATFORM, code="property_not_unique")
            return
        try:
            self._call("POST", "/crm/v3/properties/deals", {
                "name": name, "label": label, "type": "number" if number else "string",
                "fieldType": "number" if number else "text", "groupName": "dealinformation",
                "hasUniqueValue": unique})
        except Permanent as exc:
            if exc.status != 409:   # created by another worker meanwhile: fine
                raise

    def forget_properties(self) -> None:
        """Look the properties up again next time (one may have been deleted since it was checked)."""
        with _properties_lock:
            for key in [k for k in _properties_checked if k[0] == self._identity]:
                del _properties_checked[key]

    # -- deals and line items -------------------------------------------------------------------------
    def upsert_deals(self, key_property: str, deals: list[tuple[str, dict[str, str]]]) -> list[UpsertedDeal]:
        """Create or update deals by ``key_property`` (``(key, properties)`` each)."""
        out = []
        for start in range(0, len(deals), BATCH_LIMIT):
            chunk = deals[start:start + BATCH_LIMIT]
            answer = self._call("POST", "/crm/v3/objects/deals/batch/upsert", {"inputs": [
                {"idProperty": key_property, "id": key, "properties": props} for key, props in chunk]})
            for r in answer.get("results") or []:
                out.append(UpsertedDeal(str(r["id"]), str((r.get("properties") or {}).get(key_property) or ""),
                                        bool(r.get("new"))))
        return out

    def line_items_of(self, deal_ids: list[str], properties: list[str]) -> dict[str, list[dict[str, str]]]:
        """deal id → the ``properties`` of each of its line items (what a crashed pass already created)."""
        out: dict[str, list[dict[str, str]]] = {d: [] for d in deal_ids}
        for start in range(0, len(deal_ids), BATCH_LIMIT):
            answer = self._call("POST", "/crm/v4/associations/deals/line_items/batch/read",
                                {"inputs": [{"id": d} for d in deal_ids[start:start + BATCH_LIMIT]]})
            by_item = {str(t["toObjectId"]): str(r["from"]["id"]) for r in answer.get("results") or []
                       for t in r.get("to") or []}
            items = list(by_item)
            for s in range(0, len(items), BATCH_LIMIT):
                read = self._call("POST", "/crm/v3/objects/line_items/batch/read", {
                    "inputs": [{"id": i} for i in items[s:s + BATCH_LIMIT]], "properties": properties})
                for r in read.get("results") or []:
                    out[by_item[str(r["id"])]].append({k: str(v) for k, v in (r.get("properties") or {}).items()
                                                       if v is not None})
        return out

    def create_line_items(self, items: list[tuple[str, dict[str, str]]]) -> int:
        """Line items, each associated with its deal (``(deal id, properties)`` each); the count created."""
        created = 0
        for start in range(0, len(items), BATCH_LIMIT):
            answer = self._call("POST", "/crm/v3/objects/line_items/batch/create", {"inputs": [
                {"properties": props, "associations": [{"to": {"id": deal}, "types": [
                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": LINE_ITEM_TO_DEAL}]}]}
                for deal, props in items[start:start + BATCH_LIMIT]]})
            created += len(answer.get("results") or [])
        return created

    def companies_of(self, contact_ids: list[str]) -> dict[str, str]:
        """contact id → its company (the first associated), for the contacts that have one."""
        out: dict[str, str] = {}
        for start in range(0, len(contact_ids), BATCH_LIMIT):
            answer = self._call("POST", "/crm/v4/associations/contacts/companies/batch/read",
                                {"inputs": [{"id": c} for c in contact_ids[start:start + BATCH_LIMIT]]})
            for r in answer.get("results") or []:
                if r.get("to"):
                    out[str(r["from"]["id"])] = str(r["to"][0]["toObjectId"])
        return out

    def associate_companies(self, pairs: list[tuple[str, str]]) -> None:
        """Deal → company associations (HubSpot's default type)."""
        for start in range(0, len(pairs), BATCH_LIMIT):
            self._call("POST", "/crm/v4/associations/deals/companies/batch/associate/default", {"inputs": [
                {"from": {"id": deal}, "to": {"id": company}} for deal, company in pairs[start:start + BATCH_LIMIT]]})

    def associate_contacts(self, pairs: list[tuple[str, str]]) -> None:
        """Deal → contact associations (HubSpot's default type; associating twice changes nothing)."""
        for start in range(0, len(pairs), BATCH_LIMIT):
            self._call("POST", "/crm/v4/associations/deals/contacts/batch/associate/default", {"inputs": [
                {"from": {"id": deal}, "to": {"id": contact}} for deal, contact in pairs[start:start + BATCH_LIMIT]]})


def _error(response: requests.Response) -> Exception:
    return error_from(response.status_code, response.headers, response.text)


def error_from(status: int, headers: Any, body: Any) -> Exception:
    """A HubSpot error answer (status, headers, JSON body text) as one of the hub's kinds."""
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    headers = headers or {}
    message, category = data.get("message"), data.get("category") or data.get("errorType")
    if status == 429:
        interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        retry_after = headers.get("Retry-After")
        wait = float(retry_after) if retry_after else (float(interval) / 1000 if interval else 10.0)
        return Retryable("HubSpot rate limit reached", platform=PLATFORM, status=429, code=category or 429,
                         retry_after=wait)
    if status >= 500 or status == 0:
        return Retryable(f"HubSpot answered HTTP {status}", platform=PLATFORM, status=status, code=status)
    if status == 401:
        return AuthExpired("HubSpot refused the access token", platform=PLATFORM, status=401, code=category or 401)
    return Permanent(message or f"HubSpot answered HTTP {status}", platform=PLATFORM, status=status,
                     code=category or status)
