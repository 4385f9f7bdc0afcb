"""A strict local fake of the QuickBooks Online Accounting API v3 and of Intuit's OAuth 2.0 endpoints.

It serves what ``python-quickbooks`` (``client.api_url_v3 = sim.url + "/v3"``) and ``intuit-oauth``
(``AuthClient(..., environment=sim.url + "/.well-known/openid_configuration")``) send, and checks what
the real API checks: bearer tokens per realm, SyncTokens, unique names and document numbers, line
arithmetic (``Amount == Qty x UnitPrice``), references, payment application against open balances,
the query language (no ``OR``), ``requestid`` idempotency, batch and CDC, and the throttles
(500 requests/min, 10 concurrent, 40 batches/min per realm; HTTP 429 + ``Retry-After``).

Beyond the API: Intuit webhooks (``set_webhook``, legacy or CloudEvents, signed, batched, retried;
see ``quickbooks_webhooks``), what a bookkeeper does in QuickBooks itself (``record_payment``, ``void``,
``merge``, ...; see ``quickbooks_controls``), the global tax model of non-US companies (TaxCode/TaxRate;
see ``quickbooks_tax``) and multi-currency companies (``ExchangeRate``, ``HomeTotalAmt``).

Faults come back as the API sends them: HTTP 400 ``{"Fault": {"Error": [{"Message", "Detail",
"code"}], "type": "ValidationFault"}, "time": ...}``. Money is handled with ``Decimal`` and returned as
JSON numbers with two decimals.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

from flask import Response, g, request

from .base import SimulatedPlatform
from .clock import SimClock
from .quickbooks_controls import BookkeeperControls
from .quickbooks_deposits import MAX_DEPOSIT_LINES, DepositRules, check_not_deposited
from .quickbooks_query import (
    CENT,
    COMPANY_TZ,
    COUNTRY,
    DELETABLE,
    ENTITIES,
    HOME_CURRENCY,
    LIST_ENTITIES,
    READ_ONLY,
    SEED_ACCOUNTS,
    Company,
    QBFault,
    QueryError,
    clean,
    dumps,
    not_found,
    now_text,
    parse_datetime,
    parse_query,
    ref_value,
    required,
    run_query,
)
from .quickbooks_receivables import ReceivablesRules
from .quickbooks_rules import EntityRules
from .quickbooks_tax import seed_tax_codes
from .quickbooks_webhooks import WEBHOOK_ENTITIES, Delivery, Event, WebhookControls, sign_webhook

SENDABLE = ("Invoice", "SalesReceipt", "CreditMemo", "RefundReceipt")


@dataclass
class Grant:
    """One app's authorisation of one realm: its access tokens and refresh tokens."""

    realm_id: str
    client_id: str | None          # None: any registered app may use it (test-issued tokens)
    access_tokens: set[str] = field(default_factory=set)
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant: Grant
    used: bool = False                 # has been presented at least once
    successor: str | None = None       # the rotated token handed out for it


@dataclass
class _Drop:
    count: int
    path_contains: str


class QuickBooksSimulator(BookkeeperControls, WebhookControls, DepositRules, ReceivablesRules, EntityRules,
                          SimulatedPlatform):
    """QuickBooks Online v3 + Intuit OAuth 2.0 on 127.0.0.1 (see the module docstring)."""

    name = "quickbooks"
    ACCESS_TOKEN_TTL = 3600
    REFRESH_TOKEN_TTL = 8726400        # 101 days, what Intuit reports in x_refresh_token_expires_in

    def __init__(self, latency: float = 0.0) -> None:
        self._reset_state()
        super().__init__(latency)

    def _reset_state(self) -> None:
        self.companies: dict[str, Company] = {}
        self.apps: dict[str, str] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.auth_codes: dict[str, tuple[str, str | None, str | None]] = {}
        self.refresh_count = 0
        self.requests_per_minute = 500          # per realm
        self.max_concurrent = 10                # requests in flight per realm
        self.batch_requests_per_minute = 40     # per realm
        self.max_batch_items = 30
        self.max_deposit_lines = MAX_DEPOSIT_LINES   # lines one deposit may have (quickbooks_deposits)
        self._drops: list[_Drop] = []
        self._touched: list[str] = []           # invoices whose balance the last write changed
        self.webhook_deliveries: list[Delivery] = []
        self._webhooks = None
        self._webhook_entities = frozenset(WEBHOOK_ENTITIES)
        self.clock = SimClock()                 # the tests move it: report dates, due dates (receivables)

    def reset(self) -> None:
        """Forget everything (companies, apps, tokens, injected faults, calls, the webhook endpoint)
        and restore the default limits, so one running server can serve many tests."""
        self.clear_webhook()
        with self.lock:
            self._reset_state()
            self.tokens.clear()
            self.faults.clear()
            self.calls.clear()
            self.latency = 0.0

    # -- setup and inspection ------------------------------------------------------------------
    def stop(self) -> None:
        self.clear_webhook()
        super().stop()

    def add_company(self, realm_id: str, *, country: str | None = None, currency: str | None = None,
                    automated_sales_tax: bool | None = None, multi_currency: bool = False,
                    multicurrency: bool = False) -> None:
        """A new company. ``country`` (default: the currency's, else US) decides the tax model:
        ``US`` uses Automated Sales Tax (``automated_sales_tax`` defaults to True there) and TAX/NON;
        elsewhere lines need a ``TaxCodeRef`` to one of the TaxCodes seeded for the country.
        ``multi_currency`` (or ``multicurrency``) enables foreign-currency customers."""
        country = (country or COUNTRY.get(currency or "USD", "US")).upper()
        currency = currency or HOME_CURRENCY.get(country, "USD")
        if automated_sales_tax is None:
            automated_sales_tax = country == "US"
        if automated_sales_tax and country != "US":
            raise ValueError("Automated Sales Tax exists only in US companies")
        company = Company(str(realm_id), automated_sales_tax, currency, multi_currency or multicurrency,
                          country)
        with self.lock:
            self.companies[company.realm_id] = company
            seed_tax_codes(company)
            ids = {}
            for name, type_, sub in SEED_ACCOUNTS:
                ids[name] = self._store(company, "Account", self._account(company, {
                    "Name": name, "AccountType": type_, "AccountSubType": sub}))["Id"]
            for name, type_, account in (("Services", "Service", "Services"),
                                         ("Sales", "NonInventory", "Sales of Product Income")):
                self._store(company, "Item", self._item(company, {
                    "Name": name, "Type": type_, "IncomeAccountRef": {"value": ids[account]}}))

    def issue_token(self, account: str, expires_in: float | None = ACCESS_TOKEN_TTL) -> str:
        return super().issue_token(account, expires_in)

    def objects(self, realm_id: str, entity: str) -> list[dict]:
        """Copies of the live objects of one entity (amounts as Decimal), in Id order."""
        with self.lock:
            rows = self.companies[str(realm_id)].objects[entity].values()
            return [copy.deepcopy(o) for o in sorted(
                rows, key=lambda o: (0, int(o["Id"]), "") if o["Id"].isdigit() else (1, 0, o["Id"]))]

    def get_object(self, realm_id: str, entity: str, id_: str | int) -> dict | None:
        with self.lock:
            obj = self.companies[str(realm_id)].objects[entity].get(str(id_))
            return copy.deepcopy(obj) if obj is not None else None

    def drop_response_next(self, count: int = 1, path_contains: str = "") -> None:
        """Carry out the next ``count`` API requests whose path contains ``path_contains``, then
        answer 502 instead of the result (a response lost on the way back)."""
        with self.lock:
            self._drops.append(_Drop(count, path_contains))

    # -- OAuth test controls -------------------------------------------------------------------
    def register_app(self, client_id: str, client_secret: str) -> None:
        with self.lock:
            self.apps[client_id] = client_secret

    def issue_auth_code(self, realm_id: str, client_id: str | None = None,
                        redirect_uri: str | None = None) -> str:
        code = "AB" + secrets.token_urlsafe(30)
        with self.lock:
            self.auth_codes[code] = (str(realm_id), client_id, redirect_uri)
        return code

    def issue_refresh_token(self, realm_id: str, client_id: str | None = None) -> str:
        with self.lock:
            return self._new_refresh(Grant(str(realm_id), client_id))

    def _new_refresh(self, grant: Grant) -> str:
        token = "AB" + secrets.token_urlsafe(36)
        self.refresh_tokens[token] = RefreshToken(token, grant)
        return token

    # -- routes --------------------------------------------------------------------------------
    def register_routes(self) -> None:
        app = self.app
        app.teardown_request(self._teardown)
        app.add_url_rule("/.well-known/openid_configuration", "discovery", self._discovery)
        app.add_url_rule("/.well-known/openid-configuration", "discovery2", self._discovery)
        app.add_url_rule("/connect/oauth2", "authorize", self._authorize)
        app.add_url_rule("/oauth2/v1/tokens/bearer", "token", self._token, methods=["POST"])
        app.add_url_rule("/v2/oauth2/tokens/revoke", "revoke", self._revoke, methods=["POST"])
        app.add_url_rule("/oauth2/v1/keys", "jwks", lambda: {"keys": []})
        app.add_url_rule("/v1/openid_connect/userinfo", "userinfo", self._userinfo)
        app.add_url_rule("/v3/company/<realm>/<path:rest>", "api", self._api, methods=["GET", "POST"])

    def _json(self, payload: Any, status: int = 200, headers: dict | None = None) -> Response:
        return Response(dumps(payload), status=status, headers=headers or {},
                        content_type="application/json")

    def _api_json(self, payload: dict, status: int = 200, headers: dict | None = None) -> Response:
        """An Accounting API answer: the payload plus the ``time`` the API stamps on every reply."""
        stamp = datetime.now(COMPANY_TZ).isoformat(timespec="milliseconds")
        return self._json({**payload, "time": stamp}, status, headers)

    # -- throttling (before the base hook, so injected latency counts as in flight) --------------
    def _before(self) -> Response | None:
        m = re.match(r"/v3/company/([^/]+)/", request.path)
        company = self.companies.get(m.group(1)) if m else None
        if company is not None:
            now = time.monotonic()
            with self.lock:
                for q in (company.recent, company.recent_batches):
                    while q and q[0] <= now - 60:
                        q.popleft()
                is_batch = request.path.rstrip("/").endswith("/batch")
                limit = None
                if company.in_flight >= self.max_concurrent:
                    limit = 1
                elif len(company.recent) >= self.requests_per_minute:
                    limit = company.recent[0] + 60 - now
                elif is_batch and len(company.recent_batches) >= self.batch_requests_per_minute:
                    limit = company.recent_batches[0] + 60 - now
                if limit is not None:
                    fault = QBFault(3001, "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                    "The request limit was reached.  Try again later", status=429,
                                    type_="SERVICE")
                    return self._api_json(fault.body(), 429,
                                      {"Retry-After": str(max(1, math.ceil(limit)))})
                company.recent.append(now)
                if is_batch:
                    company.recent_batches.append(now)
                company.in_flight += 1
                g.qb_company = company
        return super()._before()

    def _teardown(self, exc: BaseException | None) -> None:
        company = g.pop("qb_company", None)
        if company is not None:
            with self.lock:
                company.in_flight -= 1

    # -- OAuth endpoints -----------------------------------------------------------------------
    def _discovery(self) -> Response:
        base = request.host_url.rstrip("/")
        return self._json({
            "issuer": f"{base}/op/v1",
            "authorization_endpoint": f"{base}/connect/oauth2",
            "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
            "jwks_uri": f"{base}/oauth2/v1/keys",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone",
                                 "com.intuit.quickbooks.accounting", "com.intuit.quickbooks.payment"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        })

    def _authorize(self) -> Response:
        """Consent is given at once: redirect with a code for the first (or ``realmId``) company."""
        args = request.args
        if args.get("client_id") not in self.apps or not args.get("redirect_uri"):
            return Response("invalid_client", status=400)
        if args.get("response_type") != "code" or not args.get("scope"):
            return Response("invalid_request", status=400)
        realm = args.get("realmId") or next(iter(self.companies), "")
        code = self.issue_auth_code(realm, args["client_id"], args["redirect_uri"])
        params = {"code": code, "state": args.get("state", ""), "realmId": realm}
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{urlencode(params)}"})

    def _client(self) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            return None
        return client_id if self.apps.get(client_id) == secret and secret else None

    def _oauth_error(self, error: str, status: int = 400) -> Response:
        return Response(json.dumps({"error": error}), status=status, content_type="application/json")

    def _token(self) -> Response:
        client_id = self._client()
        if client_id is None:
            return self._oauth_error("invalid_client", 401)
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        grant_type = form.get("grant_type")
        with self.lock:
            if grant_type == "authorization_code":
                entry = self.auth_codes.pop(form.get("code", ""), None)
                if entry is None or entry[1] not in (None, client_id):
                    return self._oauth_error("invalid_grant")
                if entry[2] is not None and entry[2] != form.get("redirect_uri"):
                    return self._oauth_error("invalid_grant")
                if not form.get("redirect_uri"):
                    return self._oauth_error("invalid_request")
                grant = Grant(entry[0], client_id)
                refresh = self._new_refresh(grant)
            elif grant_type == "refresh_token":
                rt = self.refresh_tokens.get(form.get("refresh_token", ""))
                if rt is None or rt.grant.revoked or rt.grant.client_id not in (None, client_id):
                    return self._oauth_error("invalid_grant")
                if rt.successor is not None and self.refresh_tokens[rt.successor].used:
                    return self._oauth_error("invalid_grant")    # superseded and the new one is in use
                rt.used = True        # from now on, the token rt replaced is dead (check above)
                if rt.successor is None:
                    rt.successor = self._new_refresh(rt.grant)
                grant, refresh = rt.grant, rt.successor
                self.refresh_count += 1
            else:
                return self._oauth_error("unsupported_grant_type")
            access = self.issue_token(grant.realm_id, self.ACCESS_TOKEN_TTL)
            grant.access_tokens.add(access)
        return self._json({"token_type": "bearer", "access_token": access, "refresh_token": refresh,
                           "expires_in": self.ACCESS_TOKEN_TTL,
                           "x_refresh_token_expires_in": self.REFRESH_TOKEN_TTL})

    def _revoke(self) -> Response:
        if self._client() is None:
            return self._oauth_error("invalid_client", 401)
        try:
            token = json.loads(request.get_data(as_text=True) or "{}").get("token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            return self._oauth_error("invalid_request")
        with self.lock:
            grants = [rt.grant for rt in self.refresh_tokens.values() if rt.token == token]
            grants += [rt.grant for rt in self.refresh_tokens.values() if token in rt.grant.access_tokens]
            for grant in grants:
                grant.revoked = True
                for access in grant.access_tokens:
                    self.tokens.pop(access, None)
            self.tokens.pop(token, None)
        return Response(status=200)

    def _userinfo(self) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        realm = self.token_account(token)
        if realm is None:
            return self._oauth_error("invalid_token", 401)
        return self._json({"sub": f"user-{realm}", "email": f"owner-{realm}@example.com",
                           "emailVerified": True, "givenName": "Sim", "familyName": "Owner"})

    # -- the Accounting API --------------------------------------------------------------------
    def _api(self, realm: str, rest: str) -> Response:
        token = request.headers.get("Authorization", "")
        token = token[7:].strip() if token.startswith("Bearer ") else ""
        account = self.token_account(token)
        if account is None or account != realm:
            fault = QBFault(3200, "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                            "Token expired or invalid" if token else "Authorization header missing",
                            status=401, type_="AuthenticationFault")
            return self._api_json(fault.body(), 401, {"WWW-Authenticate": 'Bearer realm="Intuit"'})
        company = self.companies.get(realm)
        if company is None:
            fault = QBFault(3100, "message=ApplicationAuthorizationFailed; errorCode=003100; "
                            "statusCode=403", f"Company {realm} is not known", status=403,
                            type_="AuthorizationFault")
            return self._api_json(fault.body(), 403)
        request_id = request.args.get("requestid")
        is_batch = rest.rstrip("/") == "batch"
        with self.lock:
            if request_id is not None and request.method == "POST":
                if not request_id or len(request_id) > (36 if is_batch else 50):
                    fault = QBFault(2050, "String length is either shorter or longer than supported "
                                    "by specification", f"requestid must have 1 to "
                                    f"{36 if is_batch else 50} characters", element="requestid")
                    return self._api_json(fault.body(), 400)
                stored = company.request_ids.get(request_id)
                if stored is not None:
                    return Response(stored[1], status=stored[0], content_type="application/json")
            try:
                status, payload = 200, self._dispatch(company, rest)
            except QBFault as fault:
                status, payload = fault.status, fault.body()
            response = self._api_json(payload, status)
            if request_id and request.method == "POST":
                company.request_ids[request_id] = (status, response.get_data(as_text=True))
            for drop in self._drops:
                if drop.count > 0 and drop.path_contains in request.path:
                    drop.count -= 1
                    return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", status=502,
                                    content_type="text/html")
        return response

    def _body(self) -> dict:
        try:
            body = json.loads(request.get_data(as_text=True) or "null", parse_float=Decimal)
        except ValueError:
            raise QBFault(2010, "Request has invalid or unsupported property",
                          "Unable to parse the request body as JSON") from None
        if not isinstance(body, dict):
            raise QBFault(2010, "Request has invalid or unsupported property",
                          "The request body must be a JSON object")
        return clean(body)

    def _dispatch(self, company: Company, rest: str) -> dict:
        parts = [p for p in rest.split("/") if p]
        head = parts[0].lower() if parts else ""
        method = request.method
        if head == "query" and len(parts) == 1:
            text = request.get_data(as_text=True) if method == "POST" else ""
            text = text or request.args.get("query", "")
            return {"QueryResponse": self._query(company, text or "")}
        if head == "batch" and method == "POST":
            return self._batch(company, self._body())
        if head == "cdc" and method == "GET":
            return self._cdc(company)
        if head == "preferences" and method == "GET":
            return {"Preferences": self._preferences(company)}
        if head == "reports" and method == "GET" and len(parts) == 2:
            return self._report(company, parts[1])
        if head == "exchangerate" and method == "GET" and len(parts) == 1:
            return {"ExchangeRate": self._exchange_rate_of(company)}
        if head == "companyinfo" and method == "GET":
            if len(parts) != 2 or parts[1] != company.realm_id:
                raise not_found("CompanyInfo", parts[1] if len(parts) > 1 else "")
            return {"CompanyInfo": self._company_info(company)}
        entity = ENTITIES.get(head)
        if entity is None:
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"Unsupported resource: {parts[0] if parts else ''}", status=400)
        if method == "GET" and len(parts) == 2:
            obj = company.objects[entity].get(parts[1])
            if obj is None:
                raise not_found(entity, parts[1])
            return {entity: obj}
        if method == "POST" and len(parts) == 3 and parts[2] == "send" and entity in SENDABLE:
            return {entity: self._send(company, entity, parts[1])}
        if method == "POST" and len(parts) == 1:
            operation = request.args.get("operation", "")
            include = request.args.get("include", "")
            if operation == "update" and "void" in include.split(","):
                operation = "void"
            return {entity: self._write(company, entity, operation or "", self._body())}
        raise QBFault(2010, "Request has invalid or unsupported property",
                      f"Unsupported operation {method} /{rest}")

    # -- writes --------------------------------------------------------------------------------
    def _write(self, company: Company, entity: str, operation: str, body: dict) -> dict:
        """create / update / delete / void one object and notify the webhook; returns what the API
        answers under ``<Entity>``."""
        self._touched = []
        result = self._apply(company, entity, operation, body)
        kind = ("Create" if operation in ("", "create") and "Id" not in body else
                {"delete": "Delete", "void": "Void"}.get(operation, "Update"))
        events = [self._event(company, entity, result["Id"], kind)]
        events += [self._event(company, "Invoice", id_, "Update") for id_ in dict.fromkeys(self._touched)
                   if (entity, id_) != ("Invoice", result["Id"])]
        self._notify(events)
        return result

    def _event(self, company: Company, entity: str, id_: str, operation: str,
               deleted_id: str | None = None) -> Event:
        obj = company.objects[entity].get(id_) or company.deleted[entity][id_]
        return Event(company.realm_id, entity, id_, operation, obj["MetaData"]["LastUpdatedTime"], deleted_id)

    def _apply(self, company: Company, entity: str, operation: str, body: dict) -> dict:
        if operation not in ("", "create", "update", "delete", "void"):
            raise QBFault(500, "Unsupported Operation", f"Operation {operation} is not supported.")
        if entity in READ_ONLY:
            raise QBFault(500, "Unsupported Operation",
                          f"Operation {(operation or 'create').title()} is not supported for {entity}; "
                          "tax codes and rates are created through TaxService/Taxcode")
        if operation in ("", "create") and "Id" not in body:
            return self._store(company, entity, self._validate(company, entity, body, None))
        if "Id" not in body:
            raise required("Id")
        current = company.objects[entity].get(str(body["Id"]))
        if current is None:
            raise not_found(entity, body["Id"])
        if "SyncToken" not in body:
            raise required("SyncToken")
        if str(body["SyncToken"]) != current["SyncToken"]:
            raise QBFault(5010, "Stale Object Error",
                          "Stale Object Error : You and another user were working on the same thing. "
                          "The other user finished before you did, so your work was not saved.")
        check_not_deposited(company, entity, current, operation)   # a deposited payment is locked
        if operation in ("delete", "void"):
            if entity not in DELETABLE or (operation == "void" and entity not in (
                    "Invoice", "Payment", "SalesReceipt")):
                raise QBFault(500, "Unsupported Operation",
                              f"Operation {operation.title()} is not supported for {entity}.")
            if operation == "delete":
                del company.objects[entity][current["Id"]]
                company.deleted[entity][current["Id"]] = {
                    "Id": current["Id"], "status": "Deleted", "domain": "QBO",
                    "MetaData": {"LastUpdatedTime": now_text()}}
                self._recompute(company)
                return {"Id": current["Id"], "status": "Deleted", "domain": "QBO"}
            return self._void(company, entity, current)
        merged = copy.deepcopy({**current, **body} if body.get("sparse") is True else body)
        new = self._validate(company, entity, merged, current)
        new.update(Id=current["Id"], SyncToken=str(int(current["SyncToken"]) + 1), domain="QBO",
                   sparse=False, MetaData={"CreateTime": current["MetaData"]["CreateTime"],
                                           "LastUpdatedTime": now_text()})
        company.objects[entity][current["Id"]] = new
        self._recompute(company)
        return new

    def _send(self, company: Company, entity: str, id_: str) -> dict:
        """``POST /<entity>/<id>/send[?sendTo=]``: e-mail the form; a webhook ``Emailed`` event."""
        current = company.objects[entity].get(id_)
        if current is None:
            raise not_found(entity, id_)
        address = request.args.get("sendTo") or (current.get("BillEmail") or {}).get("Address")
        if not address:
            raise required("BillEmail")
        if not re.fullmatch(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+", address):
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"Property Name:sendTo specified is unsupported or invalid: {address}")
        stamp = now_text()
        current.update(BillEmail={"Address": address}, EmailStatus="EmailSent",
                       DeliveryInfo={"DeliveryType": "Email", "DeliveryTime": stamp},
                       SyncToken=str(int(current["SyncToken"]) + 1),
                       MetaData={**current["MetaData"], "LastUpdatedTime": stamp})
        self._notify([self._event(company, entity, id_, "Emailed")])
        return current

    def _store(self, company: Company, entity: str, obj: dict) -> dict:
        stamp = now_text()
        obj.update(Id=company.new_id(), SyncToken="0", domain="QBO", sparse=False,
                   MetaData={"CreateTime": stamp, "LastUpdatedTime": stamp})
        company.objects[entity][obj["Id"]] = obj
        self._created(company, entity, obj)
        return obj

    def _created(self, company: Company, entity: str, obj: dict) -> None:
        """What ``_recompute`` would change after a create, changed directly (a create touches only the new
        object, the invoices a new payment pays and their customers): the same balances, links and
        touched invoices, without going over every object of the company on each create."""
        if entity == "Customer":
            obj["Balance"] = obj["BalanceWithJobs"] = Decimal("0.00")
            return
        if entity == "Invoice":   # nothing can pay an invoice that did not exist
            balance = (obj["TotalAmt"] - obj.get("Deposit", Decimal(0))).quantize(CENT)
            if balance != obj["Balance"] or obj.get("LinkedTxn", []) != []:
                self._touched.append(obj["Id"])
                obj["Balance"], obj["LinkedTxn"] = balance, []
                obj["MetaData"]["LastUpdatedTime"] = now_text()
            self._add_to_customer(company, obj, balance)
            return
        if entity != "Payment":
            return
        for line in obj.get("Line", []):
            for link in line.get("LinkedTxn", []):
                inv = company.objects["Invoice"].get(link["TxnId"]) if link.get("TxnType") == "Invoice" else None
                if inv is None:
                    continue
                balance = (inv["Balance"] - line["Amount"]).quantize(CENT)
                self._touched.append(inv["Id"])
                inv["Balance"] = balance
                inv["LinkedTxn"] = [*inv.get("LinkedTxn", []), {"TxnId": obj["Id"], "TxnType": "Payment"}]
                inv["MetaData"]["LastUpdatedTime"] = now_text()
                self._add_to_customer(company, inv, -line["Amount"])

    @staticmethod
    def _add_to_customer(company: Company, invoice: dict, amount: Decimal) -> None:
        cust = company.objects["Customer"].get(ref_value(invoice.get("CustomerRef")) or "")
        if cust is not None:
            cust["Balance"] = (cust.get("Balance", Decimal(0)) + amount).quantize(CENT)
            cust["BalanceWithJobs"] = cust["Balance"]

    def _void(self, company: Company, entity: str, current: dict) -> dict:
        new = copy.deepcopy(current)
        for line in new.get("Line", []):
            line["Amount"] = Decimal("0.00")
        for key in ("TotalAmt", "Balance", "UnappliedAmt", "HomeTotalAmt", "HomeBalance"):
            if key in new:
                new[key] = Decimal("0.00")
        if "TxnTaxDetail" in new:
            new["TxnTaxDetail"]["TotalTax"] = Decimal("0.00")
        note = new.get("PrivateNote", "")
        new["PrivateNote"] = f"Voided - {note}" if note and not note.startswith("Voided") else "Voided"
        new["SyncToken"] = str(int(current["SyncToken"]) + 1)
        new["MetaData"] = {**current["MetaData"], "LastUpdatedTime": now_text()}
        company.objects[entity][current["Id"]] = new
        self._recompute(company)
        return new

    def _recompute(self, company: Company) -> None:
        """Invoice balances from the payments applied to them; customer balances from invoices."""
        paid: dict[str, Decimal] = {}
        links: dict[str, list[dict]] = {}
        for payment in company.objects["Payment"].values():
            for line in payment.get("Line", []):
                for link in line.get("LinkedTxn", []):
                    if link.get("TxnType") == "Invoice":
                        paid[link["TxnId"]] = paid.get(link["TxnId"], Decimal(0)) + line["Amount"]
                        links.setdefault(link["TxnId"], []).append(
                            {"TxnId": payment["Id"], "TxnType": "Payment"})
        balances: dict[str, Decimal] = {}
        for inv in company.objects["Invoice"].values():
            balance = (inv["TotalAmt"] - inv.get("Deposit", Decimal(0)) - paid.get(inv["Id"], Decimal(0))
                       ).quantize(CENT)
            if balance != inv["Balance"] or inv.get("LinkedTxn", []) != links.get(inv["Id"], []):
                self._touched.append(inv["Id"])
                inv["Balance"] = balance
                inv["LinkedTxn"] = links.get(inv["Id"], [])
                inv["MetaData"]["LastUpdatedTime"] = now_text()
            cust = ref_value(inv.get("CustomerRef"))
            if cust is not None:
                balances[cust] = balances.get(cust, Decimal(0)) + balance
        for cust in company.objects["Customer"].values():
            cust["Balance"] = balances.get(cust["Id"], Decimal("0.00")).quantize(CENT)
            cust["BalanceWithJobs"] = cust["Balance"]

    # -- company info and preferences ----------------------------------------------------------
    def _company_info(self, company: Company) -> dict:
        country = company.country
        return {"Id": "1", "SyncToken": "0", "domain": "QBO", "sparse": False,
                "CompanyName": f"Sandbox Company {company.realm_id}",
                "LegalName": f"Sandbox Company {company.realm_id}", "Country": country,
                "CompanyAddr": {"Country": country}, "SupportedLanguages": "en",
                "FiscalYearStartMonth": "January", "CompanyStartDate": company.created[:10],
                "Email": {"Address": f"owner-{company.realm_id}@example.com"},
                "MetaData": {"CreateTime": company.created, "LastUpdatedTime": company.created},
                "NameValue": [{"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}]}

    def _exchange_rate_of(self, company: Company) -> dict:
        """``GET /exchangerate?sourcecurrencycode=EUR&asofdate=YYYY-MM-DD`` (as_of defaults to today)."""
        source = (request.args.get("sourcecurrencycode") or "").upper()
        day = request.args.get("asofdate") or date.today().isoformat()
        if not company.multicurrency:
            raise QBFault(6000, "A business validation error has occurred while processing your request",
                          "Business Validation Error: Multicurrency is not enabled for this company", status=400)
        if len(source) != 3 or not source.isalpha():
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"Property Name:sourcecurrencycode specified is unsupported or invalid: {source}",
                          status=400)
        try:
            date.fromisoformat(day)
        except ValueError:
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"Property Name:asofdate specified is unsupported or invalid: {day}", status=400) from None
        rate = Decimal(1) if source == company.currency else company.rate_on(source, day)
        if rate is None:
            raise not_found("ExchangeRate", f"{source} {day}")
        return {"SourceCurrencyCode": source, "TargetCurrencyCode": company.currency, "Rate": rate,
                "AsOfDate": day, "MetaData": {"LastUpdatedTime": f"{day}T00:00:00-08:00"}}

    def _preferences(self, company: Company) -> dict:
        return {"Id": "1", "SyncToken": "0", "domain": "QBO", "sparse": False,
                "SalesFormsPrefs": {"CustomTxnNumbers": False, "AllowDiscount": True,
                                    "AllowDeposit": True, "AllowShipping": company.allow_shipping,
                                    "AllowServiceDate": False, "AllowEstimates": True,
                                    "IPNSupportEnabled": False, "ETransactionEnabledStatus": "NotApplicable",
                                    "DefaultTerms": {"value": "3"}},
                "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": company.automated_sales_tax},
                "CurrencyPrefs": {"MultiCurrencyEnabled": company.multicurrency,
                                  "HomeCurrency": {"value": company.currency}},
                "AccountingInfoPrefs": {"TrackDepartments": False, "ClassTrackingPerTxn": False},
                "MetaData": {"CreateTime": company.created, "LastUpdatedTime": company.created}}

    # -- query, batch, CDC ---------------------------------------------------------------------
    def _query(self, company: Company, text: str) -> dict:
        try:
            query = parse_query(text)
            special = {"companyinfo": "CompanyInfo", "preferences": "Preferences"}
            entity = ENTITIES.get(query.entity.lower()) or special.get(query.entity.lower())
            if entity is None:
                raise QueryError(f"QueryValidationError: Unable to identify the entity {query.entity}",
                                 parse=False)
            query.entity = entity
            if entity == "CompanyInfo":
                rows = [self._company_info(company)]
            elif entity == "Preferences":
                rows = [self._preferences(company)]
            else:
                rows = list(company.objects[entity].values())
            return run_query(query, rows, COMPANY_TZ, active_only=entity in LIST_ENTITIES)
        except QueryError as exc:
            raise QBFault(exc.code, exc.message, exc.detail) from None

    def _batch(self, company: Company, body: dict) -> dict:
        items = body.get("BatchItemRequest")
        if not isinstance(items, list) or not items:
            raise required("BatchItemRequest")
        if len(items) > self.max_batch_items:
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"Batch request size {len(items)} exceeds the maximum of "
                          f"{self.max_batch_items} BatchItemRequest items")
        out = []
        for item in items:
            if not isinstance(item, dict) or not item.get("bId"):
                raise required("BatchItemRequest.bId")
            result: dict[str, Any] = {"bId": item["bId"]}
            try:
                if "Query" in item:
                    result["QueryResponse"] = self._query(company, str(item["Query"]))
                else:
                    keys = [k for k in item if k in ENTITIES.values()]
                    if len(keys) != 1 or not isinstance(item[keys[0]], dict):
                        raise QBFault(2010, "Request has invalid or unsupported property",
                                      "A batch item needs one entity object or a Query")
                    result[keys[0]] = self._write(company, keys[0], item.get("operation", "create"),
                                                  clean(item[keys[0]]))
            except QBFault as fault:
                result["Fault"] = fault.body()["Fault"]
            out.append(result)
        return {"BatchItemResponse": out}

    def _cdc(self, company: Company) -> dict:
        entities = [e.strip() for e in request.args.get("entities", "").split(",") if e.strip()]
        since_text = request.args.get("changedSince", "")
        if not entities:
            raise required("entities")
        if not since_text:
            raise required("changedSince")
        since = parse_datetime(since_text, COMPANY_TZ)
        if since is None:
            raise QBFault(2010, "Request has invalid or unsupported property",
                          f"changedSince {since_text} is not a valid date-time")
        if since < datetime.now(UTC) - timedelta(days=30):
            raise QBFault(2010, "Request has invalid or unsupported property",
                          "changedSince cannot be more than 30 days in the past")
        responses, total = [], 0
        for name in entities:
            entity = ENTITIES.get(name.lower())
            if entity is None:
                raise QBFault(2010, "Request has invalid or unsupported property",
                              f"Unsupported entity in CDC: {name}")
            rows = [o for o in [*company.objects[entity].values(), *company.deleted[entity].values()]
                    if datetime.fromisoformat(o["MetaData"]["LastUpdatedTime"]) >= since]
            rows.sort(key=lambda o: o["MetaData"]["LastUpdatedTime"])
            total += len(rows)
            responses.append({entity: rows, "startPosition": 1, "maxResults": len(rows)} if rows else {})
        if total > 1000:
            raise QBFault(2010, "Request has invalid or unsupported property",
                          "The CDC response would exceed 1000 objects; use a later changedSince")
        return {"CDCResponse": [{"QueryResponse": responses}]}


__all__ = ["Delivery", "QBFault", "QuickBooksSimulator", "dumps", "sign_webhook"]
