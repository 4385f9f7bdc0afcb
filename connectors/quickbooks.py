"""QuickBooks Online: a thin client over python-quickbooks (API calls) and intuit-oauth (tokens).

No business rules here: create, read, update, query, batch; every failure becomes one of the hub's
error kinds (``Retryable``, ``AuthExpired``, ``Permanent``) with Intuit's own message and fault code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests
from quickbooks import QuickBooks
from quickbooks import exceptions as qb_exc

from connectors import jsonmoney, redact
from connectors.errors import AuthExpired, ConnectorError, Permanent, Retryable, with_excerpt
from connectors.quickbooks_receivables import ReceivablesCalls

PLATFORM = "quickbooks"
MINOR_VERSION = 75
API_URL = "https://quickbooks.api.intuit.com/v3"
SANDBOX_API_URL = "https://sandbox-quickbooks.api.intuit.com/v3"

# QuickBooks fault codes the hub acts on (``ConnectorError.code`` holds them as text)
OBJECT_NOT_FOUND = "610"           # the object does not exist (or was deleted)
STALE_SYNC_TOKEN = "5010"          # an update sent an old SyncToken: read the object again
DUPLICATE_DOC_NUMBER = "6140"      # another transaction has this DocNumber
DUPLICATE_NAME = "6240"            # "Duplicate Name Exists": customers, vendors and employees share names
DEFAULT_RETRY_AFTER_429 = 60.0  # Intuit: wait a minute after a throttle


def quote(value: str) -> str:
    """Quote a value for the QuickBooks query language (single quotes, backslash-escaped)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class _BearerSession(requests.Session):
    """What python-quickbooks expects of its OAuth2 session: ``.access_token`` and ``.request``."""

    def __init__(self, access_token: str, timeout: float) -> None:
        super().__init__()
        self.access_token = access_token
        self._timeout = timeout

    def request(self, method, url, **kwargs):  # noqa: ANN001, ANN201
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, **kwargs)


class _HubQuickBooks(QuickBooks):
    """python-quickbooks with HTTP-level failures classified before the SDK parses the body, and the last
    call of each thread kept (unredacted, in memory only) so that a failure can carry its excerpt."""

    _last = threading.local()

    def process_request(self, request_type, url, headers="", params="", data=""):  # noqa: ANN001, ANN201
        full_url = f"{url}?{urlencode(params)}" if params else url
        self._last.call = (request_type, full_url, data, None, None)
        try:
            response = super().process_request(request_type, url, headers=headers, params=params, data=data)
        except requests.Timeout as exc:
            raise Retryable("QuickBooks did not answer in time", platform=PLATFORM,
                            excerpt=self.last_excerpt()) from exc
        except requests.ConnectionError as exc:
            raise Retryable("cannot connect to QuickBooks", platform=PLATFORM, excerpt=self.last_excerpt()) from exc
        self._last.call = (request_type, response.url or full_url, data, response.status_code, response.text)
        status = response.status_code
        if status == 429:
            raise Retryable("QuickBooks rate limit reached", platform=PLATFORM, status=429, code=429,
                            retry_after=_retry_after(response, DEFAULT_RETRY_AFTER_429), excerpt=self.last_excerpt())
        if status >= 500:
            raise Retryable(f"QuickBooks answered HTTP {status}", platform=PLATFORM, status=status,
                            code=status, retry_after=_retry_after(response, None),
                            detail=_fault_message(response), excerpt=self.last_excerpt())
        if status == 403:
            raise Permanent("QuickBooks refused access to this company", platform=PLATFORM, status=403,
                            code=403, detail=_fault_message(response), excerpt=self.last_excerpt())
        return response

    def last_excerpt(self) -> dict[str, Any] | None:
        """The redacted excerpt of this thread's last call (None before any)."""
        call = getattr(self._last, "call", None)
        return redact.excerpt(*call) if call else None

    def forget_last_call(self) -> None:
        self._last.call = None


def _retry_after(response: requests.Response, default: float | None) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def _fault_message(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return (response.text or "")[:200] or None
    fault = body.get("Fault") or body.get("fault") or {}
    errors = fault.get("Error") or fault.get("error") or []
    if errors:
        e = errors[0]
        return e.get("Detail") or e.get("detail") or e.get("Message") or e.get("message")
    return None


@dataclass
class Fault:
    """One fault of a batch item; ``excerpt``: that item's request and answer, redacted (as on errors)."""

    code: str | None
    message: str
    detail: str | None
    excerpt: dict[str, Any] | None = None


class QuickBooksClient(ReceivablesCalls):
    """Calls on one company (realm) with one access token."""

    def __init__(self, realm_id: str, access_token: str, *, api_url: str | None = None,
                 sandbox: bool = False, timeout: float = 30.0,
                 throttle: Callable[[], object] | None = None,
                 in_flight: Callable[[], AbstractContextManager[object]] | None = None) -> None:
        """``throttle()`` before each request (the rate limits); ``in_flight()`` around it (a slot of the
        company's concurrent requests)."""
        self.realm_id = realm_id
        self._throttle = throttle
        self._in_flight = in_flight
        qb = _HubQuickBooks(company_id=realm_id, minorversion=MINOR_VERSION, use_decimal=True)
        qb.api_url_v3 = api_url.rstrip("/") + "/v3" if api_url else API_URL
        qb.sandbox_api_url_v3 = api_url.rstrip("/") + "/v3" if api_url else SANDBOX_API_URL
        qb.sandbox = sandbox
        qb.session = _BearerSession(access_token, timeout)   # plain requests: no oauthlib transport check
        self._qb = qb

    # -- the calls --------------------------------------------------------------------------------
    def query(self, statement: str) -> list[dict[str, Any]]:
        """Run a query; returns the list of entities (possibly empty)."""
        result = self._call(self._qb.query, statement)
        response = result.get("QueryResponse", {})
        return next((v for v in response.values() if isinstance(v, list)), [])

    def find_one(self, entity: str, field: str, value: str) -> dict[str, Any] | None:
        rows = self.query(f"SELECT * FROM {entity} WHERE {field} = {quote(value)} MAXRESULTS 2")
        return rows[0] if rows else None

    def get(self, entity: str, object_id: str) -> dict[str, Any]:
        url = f"{self._qb.api_url}/company/{self.realm_id}/{entity.lower()}/{object_id}"
        return self._call(self._qb.get, url)[entity]

    def create(self, entity: str, payload: dict[str, Any], *, request_id: str,
               params: dict[str, str] | None = None) -> dict[str, Any]:
        """Create with ``requestid``: a replay of the same id returns the original object."""
        body = jsonmoney.dumps(payload)
        result = self._call(self._qb.create_object, entity, body, request_id=request_id, params=params)
        return result[entity]

    def update(self, entity: str, payload: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        body = jsonmoney.dumps(payload)
        result = self._call(self._qb.update_object, entity, body, request_id=request_id)
        return result[entity]

    def void(self, entity: str, object_id: str, sync_token: str, *, request_id: str | None = None) -> dict[str, Any]:
        """Void a transaction (``POST /{entity}?operation=void``): amounts become zero, the document stays."""
        url = f"{self._qb.api_url}/company/{self.realm_id}/{entity.lower()}"
        body = jsonmoney.dumps({"Id": str(object_id), "SyncToken": str(sync_token), "sparse": True})
        params = {"operation": "void"}
        result = self._call(self._qb.post, url, body, params=params, request_id=request_id)
        return result.get(entity) or {}

    def changes_since(self, entities: list[str], since: str) -> dict[str, list[dict[str, Any]]]:
        """Change Data Capture: the objects of ``entities`` changed since ``since`` (ISO 8601, ≤ 30 days back);
        deleted ones come back with ``status: "Deleted"``."""
        result = self._call(self._qb.change_data_capture, ",".join(entities), since)
        out: dict[str, list[dict[str, Any]]] = {e: [] for e in entities}
        for block in result.get("CDCResponse") or []:
            for response in block.get("QueryResponse") or []:
                for name, rows in response.items():
                    if name in out and isinstance(rows, list):
                        out[name].extend(rows)
        return out

    def exchange_rate(self, currency: str, as_of: str) -> Decimal | None:
        """QuickBooks' own rate (home currency per unit of ``currency``) for the day ``as_of`` (YYYY-MM-DD),
        from its ``exchangerate`` entity; None when the company has none for that day."""
        url = f"{self._qb.api_url}/company/{self.realm_id}/exchangerate"
        try:
            found = self._call(self._qb.get, url, params={"sourcecurrencycode": currency.upper(), "asofdate": as_of})
        except Permanent as exc:
            if str(exc.code) == OBJECT_NOT_FOUND:
                return None
            raise
        rate = (found.get("ExchangeRate") or {}).get("Rate")
        return amount(rate) if rate not in (None, "", 0) else None

    def preferences(self) -> dict[str, Any]:
        url = f"{self._qb.api_url}/company/{self.realm_id}/preferences"
        return self._call(self._qb.get, url)["Preferences"]

    def batch(self, items: list[dict[str, Any]]) -> dict[str, dict[str, Any] | Fault]:
        """Run up to 30 batch operations; returns each bId's entity or its own Fault."""
        if len(items) > 30:
            raise ValueError("QuickBooks takes at most 30 operations per batch request")
        body = jsonmoney.dumps({"BatchItemRequest": items})
        result = self._call(self._qb.batch_operation, body)
        url = f"{self._qb.api_url}/company/{self.realm_id}/batch?minorversion={MINOR_VERSION}"
        sent = {item.get("bId"): item for item in items}
        out: dict[str, dict[str, Any] | Fault] = {}
        for item in result.get("BatchItemResponse", []):
            bid = item.get("bId")
            if "Fault" in item:
                err = (item["Fault"].get("Error") or [{}])[0]
                excerpt = redact.excerpt("POST", url, {"BatchItemRequest": [sent.get(bid)]}, 200,
                                         {"BatchItemResponse": [item]})
                out[bid] = Fault(str(err.get("code")) if err.get("code") else None,
                                 err.get("Message", "fault"), err.get("Detail"), excerpt)
            else:
                out[bid] = next(v for k, v in item.items() if k != "bId")
        return out

    # -- error translation ---------------------------------------------------------------------
    def _call(self, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        with self._in_flight() if self._in_flight else nullcontext():
            if self._throttle:
                self._throttle()
            self._qb.forget_last_call()
            try:
                return fn(*args, **kwargs)
            except ConnectorError:
                raise
            except qb_exc.QuickbooksException as exc:
                raise with_excerpt(_translate(exc), self._qb.last_excerpt()) from exc


def _translate(exc: qb_exc.QuickbooksException) -> ConnectorError:
    """python-quickbooks' exception (raised on Intuit's fault body) as one of the hub's kinds."""
    if isinstance(exc, qb_exc.AuthorizationException):
        if exc.error_code == 401 or str(exc.error_code) == "401" or "authentication" in exc.message.lower():
            return AuthExpired("QuickBooks refused the access token", platform=PLATFORM, code=exc.error_code,
                               status=401)
        # codes 1-499 are about the app's access to the company, never about one object: marked 403, so a
        # batch refused for it is not split up in search of a culprit (``sync.narrowing.narrowable``)
        return Permanent(exc.message, platform=PLATFORM, code=exc.error_code, detail=exc.detail, status=403)
    if isinstance(exc, qb_exc.SevereException):
        return Retryable(exc.message, platform=PLATFORM, code=exc.error_code, detail=exc.detail)
    return Permanent(exc.message, platform=PLATFORM, code=exc.error_code, detail=_short(exc.detail))


def _short(detail: Any) -> str | None:
    if detail is None:
        return None
    text = str(detail)
    return text[:500]


def amount(value: Any) -> Decimal:
    """A QuickBooks amount as a Decimal (the client reads numbers as Decimal already)."""
    return Decimal(str(value)) if value is not None else Decimal("0")


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str
    expires_in: int


def intuit_auth_client(client_id: str, client_secret: str, *, oauth_url: str | None = None,
                       environment: str = "production", redirect_uri: str = "", timeout: float = 30.0):  # noqa: ANN201
    """intuit-oauth's ``AuthClient``. With ``oauth_url`` (``O2C_QUICKBOOKS_OAUTH_URL``) every OAuth endpoint
    sits under that base at Intuit's own paths, and no discovery document is fetched."""
    from intuitlib.client import AuthClient

    class _AuthClient(AuthClient):
        def __init__(self) -> None:
            if not oauth_url:
                super().__init__(client_id, client_secret, redirect_uri,
                                 "sandbox" if environment.lower().startswith("sand") else "production")
                return
            requests.Session.__init__(self)
            base = oauth_url.rstrip("/")
            self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
            self.environment, self.state_token = environment, None
            self.auth_endpoint = f"{base}/connect/oauth2"
            self.token_endpoint = f"{base}/oauth2/v1/tokens/bearer"
            self.revoke_endpoint = f"{base}/v2/oauth2/tokens/revoke"
            self.issuer_uri, self.jwks_uri = base, f"{base}/oauth2/v1/keys"
            self.user_info_url = f"{base}/v1/openid_connect/userinfo"
            self.realm_id = self.access_token = self.expires_in = self.refresh_token = None
            self.x_refresh_token_expires_in = self.id_token = None

        def request(self, method, url, **kwargs):  # noqa: ANN001, ANN201 - a timeout on every call
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, **kwargs)

    return _AuthClient()


def refresh_tokens(*, client_id: str, client_secret: str, refresh_token: str,
                   oauth_url: str | None = None, environment: str = "production",
                   timeout: float = 30.0) -> TokenSet:
    """Exchange a refresh token (intuit-oauth). The returned refresh token replaces the old one."""
    from intuitlib.exceptions import AuthClientError

    try:
        auth = intuit_auth_client(client_id, client_secret, oauth_url=oauth_url, environment=environment,
                                  timeout=timeout)
        auth.refresh(refresh_token=refresh_token)
    except AuthClientError as exc:
        status = getattr(exc, "status_code", None) or 0
        if status >= 500 or status == 429:
            raise Retryable("Intuit's token service is unavailable", platform=PLATFORM,
                            status=status, code=status) from exc
        raise AuthExpired("QuickBooks refused the refresh token: the connection needs reconnecting",
                          platform=PLATFORM, status=status, code="invalid_grant") from exc
    except requests.RequestException as exc:
        raise Retryable("cannot reach Intuit's token service", platform=PLATFORM) from exc
    return TokenSet(auth.access_token, auth.refresh_token, int(auth.expires_in or 3600))
