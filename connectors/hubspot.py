"""HubSpot CRM through hubspot-api-client: contacts upserted by e-mail, in batches of up to 100."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from hubspot import Client
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)

from connectors import redact
from connectors.errors import AuthExpired, Retryable, with_excerpt
from connectors.hubspot_deals import HubSpotDeals, UpsertedDeal, error_from, token_identity
from connectors.hubspot_receivables import ReceivablesCalls

PLATFORM = "hubspot"
API_URL = "https://api.hubapi.com"
BATCH_LIMIT = 100
UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"


@dataclass
class UpsertedContact:
    id: str
    email: str
    created: bool


class HubSpotClient(ReceivablesCalls):
    def __init__(self, access_token: str, *, api_url: str | None = None, timeout: float = 30.0,
                 throttle: Callable[[], object] | None = None) -> None:
        self._throttle = throttle
        self._host = (api_url or API_URL).rstrip("/")
        self._client = Client.create(access_token=access_token, host=self._host)
        self._batch = self._client.crm.contacts.batch_api
        self._timeout = timeout
        self._deals = HubSpotDeals(self._client, self._host, timeout=timeout, throttle=throttle,
                                   identity=token_identity(self._host, access_token))

    # -- deals (connectors.hubspot_deals) ---------------------------------------------------------------
    def deal_pipelines(self) -> list[dict[str, Any]]:
        return self._deals.pipelines()

    def ensure_deal_property(self, name: str, label: str, *, unique: bool = False, number: bool = False) -> None:
        self._deals.ensure_property(name, label, unique=unique, number=number)

    def forget_deal_properties(self) -> None:
        self._deals.forget_properties()

    def upsert_deals(self, key_property: str, deals: list[tuple[str, dict[str, str]]]) -> list[UpsertedDeal]:
        return self._deals.upsert_deals(key_property, deals)

    def line_items_of(self, deal_ids: list[str], properties: list[str]) -> dict[str, list[dict[str, str]]]:
        return self._deals.line_items_of(deal_ids, properties)

    def create_line_items(self, items: list[tuple[str, dict[str, str]]]) -> int:
        return self._deals.create_line_items(items)

    def associate_contacts(self, pairs: list[tuple[str, str]]) -> None:
        self._deals.associate_contacts(pairs)

    def companies_of(self, contact_ids: list[str]) -> dict[str, str]:
        return self._deals.companies_of(contact_ids)

    def associate_companies(self, pairs: list[tuple[str, str]]) -> None:
        self._deals.associate_companies(pairs)

    def upsert_contacts(self, contacts: list[dict[str, str]]) -> list[UpsertedContact]:
        """Create or update contacts by e-mail (each dict holds HubSpot property names)."""
        out: list[UpsertedContact] = []
        for start in range(0, len(contacts), BATCH_LIMIT):
            chunk = contacts[start:start + BATCH_LIMIT]
            body = BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
                SimplePublicObjectBatchInputUpsert(id_property="email", id=c["email"], properties=c)
                for c in chunk])
            if self._throttle:
                self._throttle()
            try:
                result = self._batch.upsert(batch_input_simple_public_object_batch_input_upsert=body,
                                            _request_timeout=self._timeout)
            except ApiException as exc:
                call = redact.excerpt("POST", self._host + UPSERT_PATH, body.to_dict(), exc.status, exc.body)
                raise with_excerpt(_api_error(exc), call) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise Retryable("cannot reach HubSpot", platform=PLATFORM, excerpt=redact.excerpt(
                    "POST", self._host + UPSERT_PATH, body.to_dict(), None, None)) from exc
            for r in result.results:
                props = r.properties or {}
                out.append(UpsertedContact(id=str(r.id), email=(props.get("email") or "").lower(),
                                           created=bool(getattr(r, "new", False))))
        return out


def _api_error(exc: ApiException) -> Exception:
    return error_from(exc.status or 0, exc.headers, exc.body)


@dataclass
class HubSpotTokens:
    access_token: str
    refresh_token: str
    expires_in: int


def refresh_tokens(*, client_id: str, client_secret: str, refresh_token: str,
                   api_url: str | None = None, timeout: float = 30.0) -> HubSpotTokens:
    """``POST /oauth/v1/token`` with grant_type=refresh_token, through the SDK's OAuth API."""
    client = Client.create(host=(api_url or API_URL).rstrip("/"))
    try:
        tokens = client.oauth.tokens_api.create(grant_type="refresh_token", client_id=client_id,
                                                client_secret=client_secret, refresh_token=refresh_token,
                                                _request_timeout=timeout)
    except Exception as exc:  # the OAuth package has its own ApiException class
        status = getattr(exc, "status", 0) or 0
        if status >= 500 or status in (0, 429):
            raise Retryable("HubSpot's token service is unavailable", platform=PLATFORM, status=status) from exc
        raise AuthExpired("HubSpot refused the refresh token: the connection needs reconnecting",
                          platform=PLATFORM, status=status, code="invalid_grant") from exc
    return HubSpotTokens(tokens.access_token, tokens.refresh_token or refresh_token, int(tokens.expires_in or 1800))
