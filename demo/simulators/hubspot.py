"""A strict fake of HubSpot's CRM contacts API (v3) and its OAuth token endpoint.

Served paths (as ``hubspot-api-client`` 12 calls them): ``POST /crm/v3/objects/contacts`` (409
``CONFLICT`` on an existing e-mail), ``GET|PATCH /crm/v3/objects/contacts/{id}`` (``?idProperty=email``),
``POST /crm/v3/objects/contacts/batch/upsert|read``, ``POST /crm/v3/objects/contacts/search`` (sees a
contact only ``search_delay`` seconds after it was created, like HubSpot's lagging index) and
``POST /oauth/v1/token`` (form; ``refresh_token`` and ``authorization_code`` grants; HubSpot refresh
tokens do not rotate), ``GET /oauth/v1/access-tokens/{token}`` (the token's hub id) and
``DELETE /oauth/v1/refresh-tokens/{token}``.

Bearer tokens come from the base-class registry (``sim.issue_token(hub_id, expires_in=1800)``). Each
account (portal) has a rolling rate limit (``rate_limit`` requests per ``rate_interval`` seconds, 100
per 10 s by default) reported in ``X-HubSpot-RateLimit-*`` headers; over it → 429 ``RATE_LIMIT``. Search
requests (``…/search``) count towards it and have their own limit too, ``search_rate_limit`` a second per
account (5: HubSpot's "five requests per second"), over which they get a 429 of their own (``SECONDLY``).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from flask import Response, request

from demo.simulators.base import SimulatedPlatform
from demo.simulators.hubspot_crm import HubSpotCrmObjects
from demo.simulators.hubspot_deals import DealsMixin

BATCH_LIMIT = 100
SEARCH_LIMIT = 200
DEFAULT_PROPERTIES = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HubSpotError(Exception):
    def __init__(self, status: int, message: str, category: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                     "category": category, **extra}


class HubSpotSimulator(DealsMixin, HubSpotCrmObjects, SimulatedPlatform):
    """Portals (hub ids) with contacts, deals and line items (``hubspot_deals``), custom contact properties
    and tasks (``hubspot_crm``), OAuth apps and per-account rate limits."""

    name = "hubspot"

    def __init__(self, latency: float = 0.0, *, rate_limit: int = 100, rate_interval: float = 10.0,
                 search_delay: float = 2.0) -> None:
        self.rate_limit = rate_limit
        self.rate_interval = rate_interval
        self.search_delay = search_delay
        self._initial_limits = (rate_limit, rate_interval, search_delay)
        self.accounts: dict[str, dict[str, dict[str, Any]]] = {}   # hub id → contact id → contact
        self.crm: dict[str, dict[str, Any]] = {}                    # hub id → deals, line items, … (DealsMixin)
        self.apps: dict[str, str] = {}                              # client id → secret
        self.refresh_tokens: dict[str, tuple[str, str | None]] = {}  # token → (hub id, client id)
        self.auth_codes: dict[str, tuple[str, str | None]] = {}
        self.access_token_lifetime = 1800
        self._windows: dict[str, deque[float]] = {}
        self.search_rate_limit = 5                                    # search requests per second per account
        self._search_windows: dict[str, deque[float]] = {}
        self._next_id = 1001
        self._reset_crm()
        super().__init__(latency)

    # -- test controls -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget accounts, contacts, apps, tokens, rate windows, faults and calls; restore the
        limits given at construction (one server for many tests)."""
        with self.lock:
            for store in (self.accounts, self.apps, self.refresh_tokens, self.auth_codes, self._windows,
                          self._search_windows, self.tokens, self.crm):
                store.clear()
            self.faults.clear()
            self.calls.clear()
            self.rate_limit, self.rate_interval, self.search_delay = self._initial_limits
            self._reset_crm()

    def add_account(self, hub_id: str | int) -> str:
        hub = str(hub_id)
        with self.lock:
            self.accounts.setdefault(hub, {})
        return hub

    def register_app(self, client_id: str, secret: str) -> None:
        with self.lock:
            self.apps[client_id] = secret

    def issue_refresh_token(self, hub_id: str | int, client_id: str | None = None) -> str:
        token = str(uuid.uuid4())
        with self.lock:
            self.add_account(hub_id)
            self.refresh_tokens[token] = (str(hub_id), client_id)
        return token

    def issue_auth_code(self, hub_id: str | int, client_id: str | None = None) -> str:
        code = str(uuid.uuid4())
        with self.lock:
            self.add_account(hub_id)
            self.auth_codes[code] = (str(hub_id), client_id)
        return code

    def revoke_refresh_token(self, token: str) -> None:
        with self.lock:
            self.refresh_tokens.pop(token, None)

    def issue_token(self, account: str, expires_in: float | None = 1800) -> str:  # type: ignore[override]
        self.add_account(account)
        return super().issue_token(str(account), expires_in)

    def contacts(self, hub_id: str | int) -> list[dict[str, Any]]:
        """Every contact of a portal (copies), oldest first."""
        with self.lock:
            return [self._public(c) for c in self.accounts.get(str(hub_id), {}).values()]

    def add_contact(self, hub_id: str | int, properties: dict[str, str], *, indexed: bool = True) -> dict:
        """Seed a contact directly (``indexed``: already visible to search)."""
        with self.lock:
            contact = self._create(self.add_account(hub_id), properties)
            if indexed:
                contact["_mono"] -= self.search_delay
            return self._public(contact)

    # -- routes --------------------------------------------------------------------------------
    def register_routes(self) -> None:
        base = "/crm/v3/objects/contacts"
        rules = [
            (base, "create", self._r_create, ["POST"]),
            (f"{base}/batch/upsert", "batch_upsert", self._r_batch_upsert, ["POST"]),
            (f"{base}/batch/read", "batch_read", self._r_batch_read, ["POST"]),
            (f"{base}/search", "search", self._r_search, ["POST"]),
            (f"{base}/<contact_id>", "one", self._r_one, ["GET", "PATCH"]),
            *self.crm_routes(),      # contact properties, batch update, tasks (hubspot_crm)
        ]
        for path, endpoint, view, methods in rules:
            self.app.add_url_rule(path, endpoint, self._guarded(view), methods=methods)
        self.register_deal_routes()
        self.app.add_url_rule("/oauth/v1/token", "token", self._r_token, methods=["POST"])
        self.app.add_url_rule("/oauth/v1/access-tokens/<token>", "token_info", self._r_token_info)
        self.app.add_url_rule("/oauth/v1/refresh-tokens/<token>", "refresh_token_delete",
                              self._r_refresh_delete, methods=["DELETE"])

    def _json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers or {})

    def _guarded(self, view):
        """Bearer auth, the per-account rate limit and HubSpot-shaped errors around a view."""

        def wrapper(**kwargs: Any) -> Response:
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else None
            hub = self.token_account(token)
            if hub is None:
                known = token is not None and token in self.tokens
                if known:
                    body = HubSpotError(401, "The OAuth token used to make this call expired.",
                                        "EXPIRED_AUTHENTICATION").body
                else:
                    body = HubSpotError(
                        401, "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                             "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                             "oauth-overview", "EXPIRED_AUTHENTICATION" if token else "INVALID_AUTHENTICATION").body
                return self._json(body, 401)
            limited, headers = self._rate(hub)
            if not limited and request.path.rstrip("/").endswith("/search") and self._search_limited(hub):
                return self._json({"status": "error", "message": "You have reached your secondly limit.",
                                   "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                                   "policyName": "SECONDLY"}, 429, headers)
            if limited:
                return self._json({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                                   "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                                   "policyName": "TEN_SECONDLY_ROLLING"}, 429, headers)
            try:
                body = request.get_json(silent=True) if request.method in ("POST", "PATCH") else None
                if request.method in ("POST", "PATCH") and not isinstance(body, dict):
                    raise HubSpotError(400, "Invalid input JSON on line 1, column 1: Cannot build, body is not "
                                            "an object", "VALIDATION_ERROR")
                with self.lock:
                    status, payload = view(hub, body, **kwargs)
            except HubSpotError as exc:
                return self._json(exc.body, exc.status, headers)
            return self._json(payload, status, headers)

        wrapper.__name__ = view.__name__
        return wrapper

    def _search_limited(self, hub: str) -> bool:
        now = time.monotonic()
        with self.lock:
            window = self._search_windows.setdefault(hub, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.search_rate_limit:
                return True
            window.append(now)
            return False

    def _rate(self, hub: str) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        with self.lock:
            window = self._windows.setdefault(hub, deque())
            while window and window[0] <= now - self.rate_interval:
                window.popleft()
            limited = len(window) >= self.rate_limit
            if not limited:
                window.append(now)
            remaining = max(self.rate_limit - len(window), 0)
        headers = {"X-HubSpot-RateLimit-Max": str(self.rate_limit),
                   "X-HubSpot-RateLimit-Remaining": str(remaining),
                   "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.rate_interval * 1000))}
        return limited, headers

    # -- storage -------------------------------------------------------------------------------
    def _public(self, c: dict[str, Any], properties: list[str] | None = None) -> dict[str, Any]:
        props = c["properties"]
        if properties:
            shown = {k: props.get(k) for k in properties}
            shown["hs_object_id"] = c["id"]
            shown.setdefault("createdate", props["createdate"])
            shown.setdefault("lastmodifieddate", props["lastmodifieddate"])
        else:
            shown = {k: props.get(k) for k in DEFAULT_PROPERTIES}
        return {"id": c["id"], "properties": shown, "createdAt": c["createdAt"], "updatedAt": c["updatedAt"],
                "archived": False}

    def _validate(self, properties: Any, where: str = "") -> dict[str, str]:
        if not isinstance(properties, dict):
            raise HubSpotError(400, f"Invalid input JSON{where}: properties must be an object", "VALIDATION_ERROR")
        clean = {str(k): (None if v is None else str(v)) for k, v in properties.items()}
        email = clean.get("email")
        if email is not None and email != "" and not _EMAIL.match(email):
            detail = json.dumps([{"isValid": False, "message": f"Email address {email} is invalid",
                                  "error": "INVALID_EMAIL", "name": "email", "localizedErrorMessage":
                                  f"Email address {email} is invalid"}])
            raise HubSpotError(400, f"Property values were not valid: {detail}", "VALIDATION_ERROR")
        if email:
            clean["email"] = email.strip().lower()
        return clean

    def _by_email(self, hub: str, email: str | None) -> dict[str, Any] | None:
        if not email:
            return None
        email = email.strip().lower()
        for c in self.accounts[hub].values():
            if (c["properties"].get("email") or "").lower() == email:
                return c
        return None

    def _create(self, hub: str, properties: dict[str, str]) -> dict[str, Any]:
        cid = str(self._next_id)
        self._next_id += 1
        now = _now_iso()
        props = {k: v for k, v in properties.items() if v is not None}
        props.update({"createdate": now, "lastmodifieddate": now, "hs_object_id": cid})
        contact = {"id": cid, "properties": props, "createdAt": now, "updatedAt": now, "_mono": time.monotonic()}
        self.accounts[hub][cid] = contact
        return contact

    def _update(self, contact: dict[str, Any], properties: dict[str, str]) -> None:
        now = _now_iso()
        for k, v in properties.items():
            if k in ("hs_object_id", "createdate"):
                continue
            if v is None or v == "":
                contact["properties"].pop(k, None)
            else:
                contact["properties"][k] = v
        contact["properties"]["lastmodifieddate"] = now
        contact["updatedAt"] = now

    def _find(self, hub: str, key: str, id_property: str | None) -> dict[str, Any]:
        if id_property in (None, "", "hs_object_id"):
            contact = self.accounts[hub].get(key)
        elif id_property == "email":
            contact = self._by_email(hub, key)
        else:
            contact = next((c for c in self.accounts[hub].values() if c["properties"].get(id_property) == key),
                           None)
        if contact is None:
            raise HubSpotError(404, "resource not found", "OBJECT_NOT_FOUND")
        return contact

    # -- views (called with the lock held) -----------------------------------------------------
    def _r_create(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        props = self._validate(body.get("properties", {}))
        self.check_properties(hub, props)
        existing = self._by_email(hub, props.get("email"))
        if existing is not None:
            raise HubSpotError(409, f"Contact already exists. Existing ID: {existing['id']}", "CONFLICT")
        return 201, self._public(self._create(hub, props))

    def _r_one(self, hub: str, body: dict[str, Any] | None, contact_id: str) -> tuple[int, Any]:
        id_property = request.args.get("idProperty")
        contact = self._find(hub, contact_id, id_property)
        if request.method == "PATCH":
            props = self._validate(body.get("properties", {}))
            self.check_properties(hub, props)
            other = self._by_email(hub, props.get("email"))
            if other is not None and other is not contact:
                raise HubSpotError(409, f"Contact already exists. Existing ID: {other['id']}", "CONFLICT")
            self._update(contact, props)
            return 200, self._public(contact)
        wanted = [p for p in request.args.get("properties", "").split(",") if p]
        wanted += request.args.getlist("properties")[1:]
        return 200, self._public(contact, wanted or None)

    def _r_batch_upsert(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        started = _now_iso()
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise HubSpotError(400, "Invalid input JSON: inputs is required", "VALIDATION_ERROR")
        if len(inputs) > BATCH_LIMIT:
            raise HubSpotError(400, f"Batch input size of {len(inputs)} exceeds the limit of {BATCH_LIMIT}",
                               "VALIDATION_ERROR", context={"size": [str(len(inputs))]})
        prepared = []
        seen: set[str] = set()
        for i, item in enumerate(inputs):
            if not isinstance(item, dict) or item.get("idProperty") != "email" or not item.get("id"):
                raise HubSpotError(400, f"inputs[{i}]: upsert needs idProperty \"email\" and an id",
                                   "VALIDATION_ERROR")
            key = str(item["id"]).strip().lower()
            props = self._validate({**(item.get("properties") or {}), "email": key}, f" in inputs[{i}]")
            self.check_properties(hub, props)
            if key in seen:
                raise HubSpotError(400, f"Duplicate IDs found in batch input: [{key}]. IDs must be unique",
                                   "VALIDATION_ERROR")
            seen.add(key)
            prepared.append((key, props))
        results = []
        for key, props in prepared:
            contact = self._by_email(hub, key)
            new = contact is None
            if new:
                contact = self._create(hub, props)
            else:
                self._update(contact, props)
            out = self._public(contact, sorted(set(DEFAULT_PROPERTIES) | set(props)))
            out["new"] = new
            results.append(out)
        return 200, {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now_iso()}

    def _r_batch_read(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        started = _now_iso()
        inputs = body.get("inputs") or []
        if len(inputs) > BATCH_LIMIT:
            raise HubSpotError(400, f"Batch input size of {len(inputs)} exceeds the limit of {BATCH_LIMIT}",
                               "VALIDATION_ERROR")
        id_property = body.get("idProperty")
        wanted = body.get("properties") or None
        results, missing = [], []
        for item in inputs:
            key = str((item or {}).get("id", ""))
            try:
                results.append(self._public(self._find(hub, key, id_property), wanted))
            except HubSpotError:
                missing.append(key)
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                               "completedAt": _now_iso()}
        if missing:
            out["numErrors"] = 1
            out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                              "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
                              "context": {"ids": missing}}]
            return 207, out
        return 200, out

    def _r_search(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        limit = int(body.get("limit") or 10)
        if limit > SEARCH_LIMIT:
            raise HubSpotError(400, f"limit must be at most {SEARCH_LIMIT}", "VALIDATION_ERROR")
        after = int(body.get("after") or 0)
        cutoff = time.monotonic() - self.search_delay
        visible = [c for c in self.accounts[hub].values() if c["_mono"] <= cutoff]
        groups = body.get("filterGroups") or []
        if groups:
            visible = [c for c in visible if any(all(_filter(c, f) for f in g.get("filters") or [])
                                                 for g in groups)]
        text = (body.get("query") or "").lower()
        if text:
            visible = [c for c in visible if any(text in (c["properties"].get(p) or "").lower()
                                                 for p in ("email", "firstname", "lastname", "phone", "company"))]
        page = visible[after:after + limit]
        out: dict[str, Any] = {"total": len(visible),
                               "results": [self._public(c, body.get("properties") or None) for c in page]}
        if after + limit < len(visible):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return 200, out

    def _r_token(self) -> Response:
        form = request.form
        client_id, secret = form.get("client_id"), form.get("client_secret")
        grant = form.get("grant_type")

        def bad(status: str, message: str) -> Response:
            return self._json({"status": status, "message": message, "correlationId": str(uuid.uuid4())}, 400)

        with self.lock:
            if client_id not in self.apps or not secrets.compare_digest(self.apps[client_id], secret or ""):
                return bad("BAD_CLIENT_ID" if client_id not in self.apps else "BAD_CLIENT_SECRET",
                           "missing or invalid client_id/client_secret")
            if grant == "refresh_token":
                refresh = form.get("refresh_token", "")
                entry = self.refresh_tokens.get(refresh)
                if entry is None or entry[1] not in (None, client_id):
                    return bad("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
                hub = entry[0]
            elif grant == "authorization_code":
                entry = self.auth_codes.pop(form.get("code", ""), None)
                if entry is None or entry[1] not in (None, client_id):
                    return bad("BAD_AUTH_CODE", "missing or unknown auth code")
                hub = entry[0]
                refresh = self.issue_refresh_token(hub, client_id)
            else:
                return bad("BAD_GRANT_TYPE", "grant_type must be refresh_token or authorization_code")
        access = self.issue_token(hub, self.access_token_lifetime)
        return self._json({"token_type": "bearer", "refresh_token": refresh, "access_token": access,
                           "expires_in": int(self.access_token_lifetime)})


    def _r_token_info(self, token: str) -> Response:
        """``GET /oauth/v1/access-tokens/{token}``: which account (hub id) and app a live token is for."""
        with self.lock:
            entry = self.tokens.get(token)
            hub = self.token_account(token)
        if entry is None or hub is None:
            return self._json({"status": "error", "message": "The access token is invalid or has expired",
                               "correlationId": str(uuid.uuid4()), "category": "EXPIRED_AUTHENTICATION"}, 401)
        left = 0 if entry.expires_at is None else max(0, int(entry.expires_at - time.monotonic()))
        return self._json({"token": token, "user": f"owner@{hub}.example.com", "hub_domain": f"{hub}.example.com",
                           "scopes": ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write"],
                           "hub_id": int(hub) if hub.isdigit() else hub, "app_id": 1000, "expires_in": left,
                           "user_id": 1, "token_type": "access"})

    def _r_refresh_delete(self, token: str) -> Response:
        """``DELETE /oauth/v1/refresh-tokens/{token}``: the refresh token stops working (204)."""
        with self.lock:
            if self.refresh_tokens.pop(token, None) is None:
                return self._json({"status": "error", "message": "refresh token not found",
                                   "correlationId": str(uuid.uuid4())}, 404)
        return Response(status=204)


def _filter(contact: dict[str, Any], f: dict[str, Any]) -> bool:
    value = contact["properties"].get(f.get("propertyName", ""))
    if f.get("propertyName") == "hs_object_id":
        value = contact["id"]
    op, target = f.get("operator", "EQ"), f.get("value")
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if value is None:
        return op == "NEQ"
    v, t = value.lower(), str(target).lower()
    if op == "EQ":
        return v == t
    if op == "NEQ":
        return v != t
    if op == "IN":
        return v in [str(x).lower() for x in f.get("values") or []]
    if op == "CONTAINS_TOKEN":
        return t.strip("*") in v
    try:
        a, b = float(value), float(target)
    except (TypeError, ValueError):
        a, b = v, t  # type: ignore[assignment]
    return {"GT": a > b, "GTE": a >= b, "LT": a < b, "LTE": a <= b}.get(op, False)
